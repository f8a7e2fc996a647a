"""Named values kept in the database's `meta` table: cursors and secrets that every process of
every instance shares."""

from __future__ import annotations

import secrets

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert

from supportdesk.db.base import Conn, Database
from supportdesk.tables import meta

_GET = select(meta.c.value).where(meta.c.key == bindparam("key"))
# INSERT ... ON CONFLICT: PostgreSQL's construct, which SQLite (3.24+) reads the same way
_PUT = insert(meta).values(key=bindparam("key"), value=bindparam("value"))
_SET = _PUT.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": _PUT.excluded.value})
_ADD = _PUT.on_conflict_do_nothing(index_elements=[meta.c.key])


async def get(conn: Conn, key: str) -> str | None:
    value: str | None = await conn.fetch_value(_GET, {"key": key})
    return value


async def put(conn: Conn, key: str, value: str) -> None:
    await conn.execute(_SET, {"key": key, "value": value})


async def add(conn: Conn, key: str, value: str) -> None:
    """Set `key` unless it is set already (the first of racing writers wins)."""
    await conn.execute(_ADD, {"key": key, "value": value})


async def secret(db: Database, key: str) -> str:
    """The random secret stored under `key`, made on first use; the first of racing processes
    wins, so every process of every instance uses the same one."""
    async with db.read() as conn:
        stored = await get(conn, key)
    if stored is not None:
        return stored
    async with db.transaction() as conn:
        await add(conn, key, secrets.token_hex(32))
        stored = await get(conn, key)
    assert stored is not None
    return stored
