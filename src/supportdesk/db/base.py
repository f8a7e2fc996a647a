"""The backend-neutral part of the database layer: the interfaces and the statement cache."""

from __future__ import annotations

import abc
import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, Table, bindparam, insert, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

Row = Mapping[str, Any]
Params = Mapping[str, Any]


class DatabaseConfigError(Exception):
    """The database URL cannot be used (bad scheme, bad path, unreachable server)."""


class IntegrityViolation(Exception):
    """A constraint (unique, foreign key, not null) refused a write."""


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    defaults: dict[str, Any]
    positions: tuple[str, ...] | None


class StatementCache:
    """Compiles each Core statement object once per dialect.

    Keyed by object identity: static statements are module constants and dynamic ones come from
    the repositories' shape caches, so the same object comes back for the same shape. Bounded,
    least recently used first out; each entry holds its statement so an id is never reused while
    cached.
    """

    def __init__(self, dialect: Dialect, size: int = 4096) -> None:
        self._dialect = dialect
        self._size = size
        self._entries: OrderedDict[int, tuple[ClauseElement, Compiled]] = OrderedDict()

    def get(self, statement: ClauseElement) -> Compiled:
        key = id(statement)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is statement:
            self._entries.move_to_end(key)
            return entry[1]
        compiled = statement.compile(dialect=self._dialect)
        positions = getattr(compiled, "positiontup", None)
        result = Compiled(
            sql=str(compiled),
            defaults={k: v for k, v in compiled.params.items() if v is not None},
            positions=tuple(positions) if positions is not None else None,
        )
        self._entries[key] = (statement, result)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return result


@functools.cache
def _inserts(table: Table, columns: tuple[str, ...]) -> Insert:
    return insert(table).values({name: bindparam(name) for name in columns})


class Conn(abc.ABC):
    """One connection inside a read or a write transaction."""

    dialect: str  # "sqlite" or "postgresql", as `Database.dialect`

    @abc.abstractmethod
    async def fetch_all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        """All rows, as mappings from column label to value."""

    @abc.abstractmethod
    async def fetch_one(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        """The first row or None."""

    async def fetch_value(self, statement: ClauseElement, params: Params | None = None) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetch_one(statement, params)
        return None if row is None else next(iter(row.values()))

    @abc.abstractmethod
    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        """Run a write; return the number of rows it touched."""

    @abc.abstractmethod
    async def explain(self, statement: ClauseElement, params: Params | None = None) -> list[str]:
        """The database's query plan for the statement, one line per node."""

    @abc.abstractmethod
    async def execute_many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        """Run one write for each parameter set (bulk loads)."""

    async def maintain(self, sql: str) -> None:
        """A maintenance statement (an index build, VACUUM, ANALYZE) that may take minutes on
        a large database: free of the time limit of a request's statements."""
        await self.execute(text(sql))

    async def load(self, table: Table, rows: Sequence[Params]) -> None:
        """Insert rows that all name the same columns, as fast as the database takes them:
        one prepared INSERT for them all here, COPY on PostgreSQL."""
        if rows:
            await self.execute_many(_inserts(table, tuple(rows[0])), rows)


# A check a service runs inside its write transaction on the current row of the resource it is
# about to change, right after reading it locked (FOR UPDATE on PostgreSQL; SQLite's write
# transaction excludes every other writer). It raises to refuse the write, which then rolls
# back with nothing written. The routers build them (conditional requests, SPEC section 12);
# services only call them, so they stay free of the wire format.
Precondition = Callable[[Conn, Row], Awaitable[None]]


class Database(abc.ABC):
    """A pool of connections to one database, for one process."""

    dialect: str  # "sqlite" or "postgresql"

    @abc.abstractmethod
    def read(self) -> AbstractAsyncContextManager[Conn]:
        """A connection for reads (a read transaction on SQLite, where it costs nothing)."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connections; DatabaseConfigError if the database cannot be reached."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection."""

    async def delete_in_batches(
        self, remove: Callable[[Conn, int], Awaitable[int]], batch: int
    ) -> int:
        """Call `remove(conn, batch)` (which deletes up to `batch` rows and says how many),
        each call its own transaction, until it removes fewer than `batch`; returns the total.
        Writers beside it wait for one batch at most, never for a whole backlog."""
        removed = 0
        while True:
            async with self.transaction() as conn:
                done = await remove(conn, batch)
            removed += done
            if done < batch:
                return removed

    async def listen(
        self, channel: str, notified: Callable[[], None], lost: Callable[[], None]
    ) -> Callable[[], Awaitable[None]] | None:
        """Call `notified` on each notification on `channel` (and `lost` if the subscription
        breaks); returns the coroutine function that unsubscribes. None: this database has no
        notifications (SQLite), and callers poll."""
        return None
