"""PostgreSQL backend: an asyncpg pool; network I/O never blocks the event loop.

Timestamps cross the driver as text in the wire format (see `supportdesk.timestamps`), through
a codec installed on every connection, so repositories see the same values as on SQLite.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

from supportdesk.db.base import (
    Conn,
    Database,
    DatabaseConfigError,
    IntegrityViolation,
    Params,
    Row,
    StatementCache,
)
from supportdesk.db.url import DatabaseUrl
from supportdesk.errors import DatabaseUnavailable

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 30.0
MAINTENANCE_TIMEOUT_S = 6 * 3600.0  # `Conn.maintain`: index builds, VACUUM
# Session settings of every connection: UTC for the timestamp codec; no JIT, whose compile
# time (tens of ms) would land on whichever request first crosses its cost threshold.
# No parallel workers: many requests at once already keep the cores busy, and a search of a
# rare word at 10M tickets, misjudged as a big one, spent more time starting and gathering two
# workers than on the search (41 -> 12 ms alone, 176 ms p50 at 8 connections; bench/README.md,
# change 14).
SERVER_SETTINGS = {
    "timezone": "UTC",
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "application_name": "supportdesk",
}

_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    # the server shutting down or restarting: 57P01..57P03
    asyncpg.exceptions.OperatorInterventionError,
)


def decode_timestamp(text: str) -> str:
    """`2024-01-15 10:30:00.5+00` (PostgreSQL's ISO output in UTC) -> the wire format."""
    clock = text[11:].removesuffix("+00")
    seconds, _, fraction = clock.partition(".")
    return f"{text[:10]}T{seconds}.{fraction.ljust(6, '0')}Z"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=str,
        decoder=decode_timestamp,
        format="text",
    )


class _PostgresConn(Conn):
    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection, statements: StatementCache) -> None:
        self._conn = conn
        self._statements = statements

    def _args(self, statement: ClauseElement, params: Params | None) -> tuple[str, list[Any]]:
        compiled = self._statements.get(statement)
        values = {**compiled.defaults, **params} if params else compiled.defaults
        return compiled.sql, [values[name] for name in compiled.positions or ()]

    async def fetch_all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        sql, args = self._args(statement, params)
        with _translated():
            rows: list[Row] = await self._conn.fetch(sql, *args)
        return rows

    async def fetch_one(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        sql, args = self._args(statement, params)
        with _translated():
            row: Row | None = await self._conn.fetchrow(sql, *args)
        return row

    async def explain(self, statement: ClauseElement, params: Params | None = None) -> list[str]:
        sql, args = self._args(statement, params)
        with _translated():
            rows = await self._conn.fetch(f"EXPLAIN {sql}", *args)
        return [str(row[0]) for row in rows]

    async def execute_many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        compiled = self._statements.get(statement)
        names = compiled.positions or ()
        args = [[{**compiled.defaults, **row}[name] for name in names] for row in rows]
        with _translated():
            await self._conn.executemany(compiled.sql, args)

    async def load(self, table: Table, rows: Sequence[Params]) -> None:
        """COPY in PostgreSQL's text format: every value goes as the text the INSERTs would
        send (timestamps included), None as `\\N`."""
        if not rows:
            return
        columns = list(rows[0])
        lines = "".join(
            "\t".join(_copy_field(row[name]) for name in columns) + "\n" for row in rows
        )
        with _translated():
            await self._conn.copy_to_table(
                table.name, source=io.BytesIO(lines.encode()), columns=columns, format="text"
            )

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        sql, args = self._args(statement, params)
        with _translated():
            status: str = await self._conn.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def maintain(self, sql: str) -> None:
        with _translated():
            await self._conn.execute(sql, timeout=MAINTENANCE_TIMEOUT_S)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One value as a field of COPY's text format."""
    return "\\N" if value is None else str(value).translate(_COPY_ESCAPES)


class _translated:
    """Turns driver errors into the layer's own: constraint -> IntegrityViolation, lost
    connection -> DatabaseUnavailable (503)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if exc is None:
            return
        if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
            raise IntegrityViolation(str(exc)) from exc
        if isinstance(exc, _UNAVAILABLE):
            raise DatabaseUnavailable("The database is unavailable; try again.") from exc


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: DatabaseUrl, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._min_size = min_size
        self._max_size = max_size
        self._statements = StatementCache(asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url.postgres_dsn(),
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
                statement_cache_size=1024,
                server_settings=SERVER_SETTINGS,
                init=_init_connection,
            )
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseConfigError(
                f"cannot connect to PostgreSQL at {self.url.masked}: {reason}"
            ) from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def listen(
        self, channel: str, notified: Callable[[], None], lost: Callable[[], None]
    ) -> Callable[[], Awaitable[None]] | None:
        """`LISTEN` on a dedicated connection, outside the pool."""
        with _translated():
            conn = await asyncpg.connect(
                self.url.postgres_dsn(),
                timeout=CONNECT_TIMEOUT_S,
                server_settings=SERVER_SETTINGS,
            )
        conn.add_termination_listener(lambda _conn: lost())
        try:
            with _translated():
                await conn.add_listener(channel, lambda *_args: notified())
        except BaseException:
            conn.terminate()
            raise

        async def unlisten() -> None:
            await conn.close(timeout=CONNECT_TIMEOUT_S)

        return unlisten

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise DatabaseUnavailable("The database is not connected.")
        with _translated():
            conn = await self._pool.acquire(timeout=CONNECT_TIMEOUT_S)
        try:
            yield conn
        finally:
            await self._pool.release(conn)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        async with self._connection() as conn:
            yield _PostgresConn(conn, self._statements)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        async with self._connection() as conn:
            transaction = conn.transaction()
            with _translated():
                await transaction.start()
            try:
                yield _PostgresConn(conn, self._statements)
            except BaseException:
                with _translated():
                    await transaction.rollback()
                raise
            with _translated():
                await transaction.commit()

    def read(self) -> AbstractAsyncContextManager[Conn]:
        """Reads on one pooled connection, each statement in its own snapshot: a transaction
        around them costs two more round trips a request, and a page and its total read a
        moment apart differ only under concurrent writes, as any later read would."""
        return self._read()

    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        return self._write()
