"""INSERT, UPDATE and DELETE by id for any table, one cached statement per set of columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Delete, Insert, Table, Update, bindparam, delete, insert, update

from supportdesk.db.base import Conn


class Writer:
    def __init__(self, table: Table) -> None:
        self.table = table
        self._inserts: dict[tuple[str, ...], Insert] = {}
        self._updates: dict[tuple[str, ...], Update] = {}
        self._delete: Delete = delete(table).where(table.c.id == bindparam("row_id"))

    def insert_statement(self, names: tuple[str, ...]) -> Insert:
        """`INSERT ... RETURNING id` of these (sorted) columns, bound as `v_<name>`."""
        statement = self._inserts.get(names)
        if statement is None:
            statement = self._inserts[names] = (
                insert(self.table)
                .values({name: bindparam(f"v_{name}") for name in names})
                .returning(self.table.c.id)
            )
        return statement

    def update_statement(self, names: tuple[str, ...]) -> Update:
        """`UPDATE ... WHERE id = :row_id` of these (sorted) columns, bound as `v_<name>`."""
        statement = self._updates.get(names)
        if statement is None:
            statement = self._updates[names] = (
                update(self.table)
                .where(self.table.c.id == bindparam("row_id"))
                .values({name: bindparam(f"v_{name}") for name in names})
            )
        return statement

    async def insert(self, conn: Conn, values: Mapping[str, Any]) -> int:
        """Insert a row; return its id."""
        statement = self.insert_statement(tuple(sorted(values)))
        new_id: int = await conn.fetch_value(statement, {f"v_{k}": v for k, v in values.items()})
        return new_id

    async def update(self, conn: Conn, row_id: int, values: Mapping[str, Any]) -> bool:
        """Set these columns of one row; False if there is no such row."""
        statement = self.update_statement(tuple(sorted(values)))
        params = {f"v_{k}": v for k, v in values.items()}
        return await conn.execute(statement, {**params, "row_id": row_id}) > 0

    async def delete(self, conn: Conn, row_id: int) -> bool:
        return await conn.execute(self._delete, {"row_id": row_id}) > 0
