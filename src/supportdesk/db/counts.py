"""The trigger-kept counts of `supportdesk.tables.meta`: reading them, and folding PostgreSQL's
deltas into them.

A count is named by its table (`tickets`) or by a table, column and value (`tickets.status:open`,
see `value_count`). Its value is its `row_counts` row plus its rows in `row_count_deltas`, read
in one statement, so it is exact in any snapshot whether or not the deltas were folded yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)

from supportdesk.db.base import Conn
from supportdesk.tables.meta import row_count_deltas, row_counts

# `row_count_deltas` has no key to delete by: the fold takes every row there is, in one
# statement, so a delta appended meanwhile (not in its snapshot) waits for the next fold.
_FOLD = text(
    "WITH folded AS (DELETE FROM row_count_deltas RETURNING name, delta) "
    "INSERT INTO row_counts (name, count) SELECT name, sum(delta) FROM folded GROUP BY name "
    "ON CONFLICT (name) DO UPDATE SET count = row_counts.count + excluded.count"
)


def value_count(table: str, column: str, value: ColumnElement[Any]) -> ColumnElement[str]:
    """The name of the count of a table's rows with this value in this column (kept for ticket
    status only, by revision 0013's triggers)."""
    return literal_column(f"'{table}.{column}:'", String) + value


def total(names: Sequence[ColumnElement[str]]) -> Select[Any]:
    """The sum of these counts."""
    kept = select(row_counts.c.count.label("n")).where(row_counts.c.name.in_(names))
    pending = select(row_count_deltas.c.delta.label("n")).where(row_count_deltas.c.name.in_(names))
    both = union_all(kept, pending).subquery()
    return select(cast(func.coalesce(func.sum(both.c.n), 0), BigInteger))


def table_total(table: str) -> Select[Any]:
    """A whole table's row count."""
    return total([literal(table, String)])


async def fold(conn: Conn) -> int:
    """Add PostgreSQL's pending deltas into `row_counts`; the number of counts changed."""
    if conn.dialect != "postgresql":
        return 0
    return await conn.execute(_FOLD)
