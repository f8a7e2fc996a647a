"""SQLite backend: one stdlib `sqlite3` connection per process, called inline on the event loop.

An indexed read takes tens of microseconds, less than a hop to a thread and back, so statements
run inline. A transaction holds `_lock` and never awaits anything that suspends, so coroutines
never interleave inside one. Writes use `BEGIN IMMEDIATE`: the write lock is taken up front and
other processes wait for it instead of failing half-way with "database is locked".

Writers of every process (server workers, CLI commands) queue on an exclusive `flock` of
`<database>-writer` before `BEGIN IMMEDIATE`. The kernel hands the lock over the moment it is
released, where SQLite's own busy handler polls with sleeps of up to 100 ms: with two workers
writing, that polling was the whole tail of write latency. A writer that finds the flock taken
waits for it in a thread, so its event loop keeps serving reads meanwhile (blocking the loop
made two workers write no faster than one). The busy timeout stays as the guard against
writers that do not take the flock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect
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
from supportdesk.errors import DatabaseUnavailable

BUSY_TIMEOUT_MS = 10_000
WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
TRUNCATE_WAIT_MS = 250
TRUNCATE_BACKOFF_S = 10.0
CACHE_KIB = 32 * 1024


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class WriterLock:
    """The queue of writers: an asyncio lock among this process's coroutines, then an
    exclusive `flock` of `<database>-writer` among processes."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        self._local = asyncio.Lock()
        self._waiter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flock")

    async def acquire(self) -> None:
        await self._local.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass  # another process writes: wait for it below
        except BaseException:
            self._local.release()
            raise
        await self._wait()

    async def _wait(self) -> None:
        """Wait for the flock in a thread. If the wait is cancelled, the thread may still get
        the flock later: it is then given back at once, not held for nobody."""
        waiting = self._waiter.submit(fcntl.flock, self._fd, fcntl.LOCK_EX)
        try:
            await asyncio.wrap_future(waiting)
        except BaseException:
            waiting.add_done_callback(self._give_back)
            self._local.release()
            raise

    def _give_back(self, waited: concurrent.futures.Future[None]) -> None:
        if not waited.cancelled() and waited.exception() is None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def close(self) -> None:
        self._waiter.shutdown(wait=False, cancel_futures=True)
        os.close(self._fd)


class Checkpointer(threading.Thread):
    """Moves WAL checkpoints off the request path: the server's connections turn automatic
    checkpoints off (a commit that runs one stalls for its fsync), and this thread runs a
    PASSIVE checkpoint, which never blocks readers or writers, twice a second.

    A PASSIVE checkpoint never restarts the WAL while readers keep coming, and a restart would
    not shrink the file: under a steady load the WAL grew by 100 MB a second (5.8 GB after a
    minute of the events benchmark), its index got longer to search on every page read, and
    it would have filled the disk. Past `WAL_TRUNCATE_BYTES` the checkpointer queues as a
    writer (the writers' flock, on its own file description) and truncates the WAL, waiting
    for readers `TRUNCATE_WAIT_MS` at most."""

    def __init__(self, path: str, interval: float = 0.5) -> None:
        super().__init__(name="sqlite-checkpointer", daemon=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}")
        self._wal = f"{path}-wal"
        self._writers = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        self._interval = interval
        self._stopped = threading.Event()
        self._next_truncate = 0.0

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if time.monotonic() >= self._next_truncate and (
                    os.path.getsize(self._wal) > WAL_TRUNCATE_BYTES
                ):
                    self._truncate()
            except (sqlite3.Error, OSError):
                continue

    def _truncate(self) -> None:
        """Truncate in the writers' queue. The flock is polled, not waited for, so `stop()`
        is never held up by a writer; readers that outlast `TRUNCATE_WAIT_MS` (a backup, a
        long export) put the next try off by `TRUNCATE_BACKOFF_S` rather than holding the
        writers up every half second."""
        while True:
            try:
                fcntl.flock(self._writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self._stopped.wait(0.01):
                    return
        try:
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            fcntl.flock(self._writers, fcntl.LOCK_UN)
        if busy:
            self._next_truncate = time.monotonic() + TRUNCATE_BACKOFF_S

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)
        self._conn.close()
        os.close(self._writers)


def _boolean(value: bytes) -> bool:
    return value != b"0"


# Columns declared BOOLEAN read back as True and False, as on PostgreSQL, not as 1 and 0 (the
# conversion applies to table columns read as they are; an expression keeps its integer).
sqlite3.register_converter("BOOLEAN", _boolean)


def connect(path: str) -> sqlite3.Connection:
    """A connection with the pragmas every supportdesk SQLite connection uses."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=1024,
        detect_types=sqlite3.PARSE_DECLTYPES,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # 32 MiB of page cache (the default is 2 MiB): a search at a million tickets reads a few
    # hundred scattered message rows, three times faster from this cache than through the
    # OS's (measured: 1.4 ms -> 0.45 ms); it keeps a worker well under 150 MB resident.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.row_factory = _dict_row
    return conn


class _SQLiteConn(Conn):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, statements: StatementCache) -> None:
        self._conn = conn
        self._statements = statements

    def _run(self, statement: ClauseElement, params: Params | None) -> sqlite3.Cursor:
        compiled = self._statements.get(statement)
        values = {**compiled.defaults, **params} if params else compiled.defaults
        try:
            return self._conn.execute(compiled.sql, values)
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc) or "disk" in str(exc):
                raise DatabaseUnavailable("The database is busy; try again.") from exc
            raise

    async def fetch_all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        return self._run(statement, params).fetchall()

    async def fetch_one(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        row: Row | None = self._run(statement, params).fetchone()
        return row

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        return self._run(statement, params).rowcount

    async def explain(self, statement: ClauseElement, params: Params | None = None) -> list[str]:
        compiled = self._statements.get(statement)
        values = {**compiled.defaults, **(params or {})}
        rows = self._conn.execute(f"EXPLAIN QUERY PLAN {compiled.sql}", values).fetchall()
        return [str(row["detail"]) for row in rows]

    async def execute_many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        compiled = self._statements.get(statement)
        try:
            self._conn.executemany(compiled.sql, ({**compiled.defaults, **row} for row in rows))
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str, *, background_checkpoints: bool = False) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._handle: _SQLiteConn | None = None
        self._lock = asyncio.Lock()
        self._writer_lock: WriterLock | None = None
        self._background_checkpoints = background_checkpoints
        self._checkpointer: Checkpointer | None = None
        self._statements = StatementCache(sqlite_dialect.dialect(paramstyle="named"))

    async def connect(self) -> None:
        # Inline on purpose, like every SQLite call here: opening a local file is quick.
        self._open()

    def _open(self) -> None:
        parent = Path(self.path).resolve().parent
        if not parent.is_dir():
            raise DatabaseConfigError(
                f"cannot open SQLite database {self.path}: no folder {parent}"
            )
        try:
            self._conn = connect(self.path)
            self._writer_lock = WriterLock(self.path)
            if self._background_checkpoints:
                self._conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._checkpointer = Checkpointer(self.path)
                self._checkpointer.start()
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseConfigError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._handle = _SQLiteConn(self._conn, self._statements)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._handle = None
        if self._writer_lock is not None:
            self._writer_lock.close()
            self._writer_lock = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    @asynccontextmanager
    async def _begin(self, write: bool) -> AsyncIterator[Conn]:
        if self._conn is None or self._handle is None or self._writer_lock is None:
            raise DatabaseUnavailable("The database is not connected.")
        conn, writer_lock = self._conn, self._writer_lock
        if write:
            await writer_lock.acquire()
        try:
            async with self._lock:
                try:
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                except sqlite3.OperationalError as exc:
                    raise DatabaseUnavailable("The database is busy; try again.") from exc
                try:
                    yield self._handle
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        finally:
            if write:
                writer_lock.release()

    def read(self) -> AbstractAsyncContextManager[Conn]:
        return self._begin(write=False)

    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        return self._begin(write=True)
