"""trigger-kept counts per ticket status, and counts that never serialize writers on PostgreSQL

The Needs-attention queue (`filter[status]=open,customer-reply`) counted its total through the
status index: 121 ms of a 132 ms page at 10M tickets (bench/README.md change 12). Its total is
now the sum of two trigger-kept counts, `tickets.status:open` and `tickets.status:customer-reply`
in `row_counts`, kept beside the per-table counts of revision 0003.

On PostgreSQL the triggers of revision 0003 updated one `row_counts` row per table, which every
writing transaction then held locked until its commit: concurrent message creates waited for
each other (233 ms mean per INSERT under load). The triggers now append their changes to
`row_count_deltas`, which locks nothing, and readers add the deltas not yet folded into
`row_counts`; the `counts` job folds them every second (`supportdesk.jobs.counts`). SQLite has
one writer at a time, so its triggers still update `row_counts` in place.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = ("users", "tickets", "ticket_messages")
STATUS = "'tickets.status:' || "  # the name of a status's count, before the status


def _postgres_functions(table: str) -> list[str]:
    """Statement-level (one delta per statement and status, however many rows it touched);
    TRUNCATE forgets the table's counts and deltas."""
    by_status = table == "tickets"

    def deltas(sign: str) -> str:
        rows = f"SELECT '{table}', {sign}count(*) FROM changed HAVING count(*) > 0"
        if by_status:
            rows += f" UNION ALL SELECT {STATUS}status, {sign}count(*) FROM changed GROUP BY status"
        return f"INSERT INTO row_count_deltas (name, delta) {rows};"

    forget = f"name = '{table}'" + (" OR name LIKE 'tickets.status:%'" if by_status else "")
    return [
        f"CREATE OR REPLACE FUNCTION {table}_count_zero() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN DELETE FROM row_count_deltas WHERE {forget}; "
        f"UPDATE row_counts SET count = 0 WHERE {forget}; RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {table}_count_ins() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {deltas('')} RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {table}_count_del() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {deltas('-')} RETURN NULL; END $$",
    ]


# A status change moves one ticket between two counts: a row trigger that fires only then (a
# statement trigger with transition tables would run on every update of a ticket).
POSTGRES_STATUS_MOVE = [
    "CREATE FUNCTION tickets_status_count_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"INSERT INTO row_count_deltas (name, delta) VALUES ({STATUS}OLD.status, -1), "
    f"({STATUS}NEW.status, 1); RETURN NULL; END $$",
    "CREATE TRIGGER tickets_status_count_au AFTER UPDATE OF status ON tickets FOR EACH ROW "
    "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION tickets_status_count_upd()",
]


def _sqlite_add(status: str) -> str:
    return (
        f"INSERT INTO row_counts (name, count) VALUES ({STATUS}{status}, 1) "
        "ON CONFLICT (name) DO UPDATE SET count = count + 1;"
    )


def _sqlite_remove(status: str) -> str:
    return f"UPDATE row_counts SET count = count - 1 WHERE name = {STATUS}{status};"


SQLITE_STATUS = [
    f"CREATE TRIGGER tickets_status_count_ai AFTER INSERT ON tickets BEGIN "
    f"{_sqlite_add('new.status')} END",
    f"CREATE TRIGGER tickets_status_count_ad AFTER DELETE ON tickets BEGIN "
    f"{_sqlite_remove('old.status')} END",
    "CREATE TRIGGER tickets_status_count_au AFTER UPDATE OF status ON tickets "
    f"WHEN old.status IS NOT new.status BEGIN {_sqlite_remove('old.status')} "
    f"{_sqlite_add('new.status')} END",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # no key: rows are only ever appended, summed by name and folded away all at once
    op.create_table(
        "row_count_deltas",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
    )
    op.execute(
        f"INSERT INTO row_counts (name, count) SELECT {STATUS}status, count(*) FROM tickets "
        "GROUP BY status"
    )
    if sqlite:
        for statement in SQLITE_STATUS:
            op.execute(statement)
    else:
        for table in COUNTED:
            for statement in _postgres_functions(table):
                op.execute(statement)
        for statement in POSTGRES_STATUS_MOVE:
            op.execute(statement)


def _postgres_0003_functions(table: str) -> list[str]:
    """Revision 0003's functions, which update the table's one counter row."""
    return [
        f"CREATE OR REPLACE FUNCTION {table}_count_zero() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN UPDATE row_counts SET count = 0 WHERE name = '{table}'; RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {table}_count_ins() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE row_counts SET count = count + (SELECT count(*) FROM changed) "
        f"WHERE name = '{table}'; RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {table}_count_del() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE row_counts SET count = count - (SELECT count(*) FROM changed) "
        f"WHERE name = '{table}'; RETURN NULL; END $$",
    ]


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER tickets_status_count_{suffix}")
    else:
        op.execute("DROP TRIGGER tickets_status_count_au ON tickets")
        op.execute("DROP FUNCTION tickets_status_count_upd()")
        for table in COUNTED:
            for statement in _postgres_0003_functions(table):
                op.execute(statement)
        op.execute(
            "UPDATE row_counts SET count = count + d.delta FROM (SELECT name, sum(delta) AS delta "
            "FROM row_count_deltas GROUP BY name) AS d WHERE row_counts.name = d.name"
        )
    op.execute("DELETE FROM row_counts WHERE name LIKE 'tickets.status:%'")
    op.drop_table("row_count_deltas")
