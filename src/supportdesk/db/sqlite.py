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

Group commit: the write transactions of one process that come while one SQLite transaction is
open share it, each in a savepoint of its own (`GroupCommit`). A request whose block raises
rolls back to its savepoint alone; the others commit together, and each is told it succeeded
only once that COMMIT has returned. The COMMIT runs in a thread, so the event loop goes on
serving meanwhile and the writes that arrive gather for the next transaction. A dozen requests
then pay for one BEGIN, one COMMIT, one turn of the writers' flock, and for the pages they all
touch (index roots, row counters, full-text segments) written to the WAL once instead of each.
Writes and reads use separate connections: a read never sees a write whose COMMIT has not
returned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import mmap
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
    Compiled,
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
WAL_LIMIT_BYTES = 64 * 1024 * 1024
RESTART_WAIT_MS = 250
RESTART_BACKOFF_S = 10.0
CATCH_UP_FRAMES = 256  # 1 MiB to copy back in the writers' turn
CATCH_UP_ROUNDS = 8
CACHE_KIB = 32 * 1024
GIVE_WAY_S = 0.02  # how long a writer lets another process that waits take the flock first
WRITER_CACHE_KIB = 8 * 1024


# the column names of each statement's rows, by its SQL text (bounded: cleared when full)
_NAMES: dict[str, tuple[str, ...]] = {}
_NAMES_KEPT = 4096
_Rows = tuple[sqlite3.Cursor, tuple[str, ...]]


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class WriterLock:
    """The queue of writers: an asyncio lock among this process's coroutines, then an
    exclusive `flock` of `<database>-writer` among processes.

    The flock alone is not fair: a process that gives it up and wants it again at once (its
    next batch gathered while it committed) took it straight back before the other process's
    waiting thread had even woken, and kept a worker waiting for hundreds of milliseconds
    (write p99 of 470 ms, one worker at 3% CPU). So a process waiting for the flock raises
    its flag, one byte of a page shared through the same file, and a process that finds a
    flag raised does not take the flock at once: it waits in its turn, after giving the
    waiter a moment to take it. A flag left by a process killed while it waited only costs
    the others that moment."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < mmap.PAGESIZE:
            os.ftruncate(self._fd, mmap.PAGESIZE)
        self._flags = mmap.mmap(self._fd, mmap.PAGESIZE)
        self._flag = os.getpid() % mmap.PAGESIZE
        self._local = asyncio.Lock()
        self._waiter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flock")

    def _others_wait(self) -> bool:
        return self._flags.find(b"\x01") >= 0

    async def acquire(self) -> None:
        await self._local.acquire()
        if not self._others_wait():
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass  # another process writes: wait for it below
            except BaseException:
                self._local.release()
                raise
        await self._wait()

    def _wait_in_turn(self) -> None:
        """In the waiting thread: let a process that was waiting first take the flock (its
        flag drops once it has it), then wait for the flock with the flag raised."""
        deadline = time.monotonic() + GIVE_WAY_S
        while self._others_wait() and time.monotonic() < deadline:
            time.sleep(0.0001)
        self._flags[self._flag] = 1
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        finally:
            self._flags[self._flag] = 0

    async def _wait(self) -> None:
        """Wait for the flock in a thread. If the wait is cancelled, the thread may still get
        the flock later: it is then given back at once, not held for nobody."""
        waiting = self._waiter.submit(self._wait_in_turn)
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
        self._flags.close()
        os.close(self._fd)


class Checkpointer(threading.Thread):
    """Moves WAL checkpoints off the request path: the server's connections turn automatic
    checkpoints off (a commit that runs one stalls for its fsync), and this thread copies the
    WAL back into the database twice a second.

    PASSIVE checkpoints never block readers or writers, but they never start the WAL over
    either while writes keep coming: under a steady load the WAL grew by 100 MB a second, its
    index got longer to search on every page read, and it would have filled the disk. So each
    round runs PASSIVE checkpoints until one finds few new frames, then takes its turn as a
    writer (the writers' flock, on its own file description) and RESTARTs the WAL: what is
    left to copy then is a moment's work, and the next writer writes from the WAL's start
    again, over blocks the file already has. It used to TRUNCATE: cutting the file to nothing
    freed its blocks on a disk mounted with `discard`, 18 ms more in the writers' turn for
    15 MB, and every later write grew the file again (truncation holds of 20 to 100 ms under
    create message, the p99 of writes). A WAL that grew past `WAL_LIMIT_BYTES` while the
    writers outpaced the copying is cut back to that when it starts over
    (`journal_size_limit`, set on every connection). Readers that outlast `RESTART_WAIT_MS`
    (a backup, a long export) put the next restart off by `RESTART_BACKOFF_S` rather than
    holding the writers up each round; the WAL only grows meanwhile."""

    def __init__(self, path: str, interval: float = 0.5) -> None:
        super().__init__(name="sqlite-checkpointer", daemon=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
        self._writers = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        self._page_bytes: int = self._conn.execute("PRAGMA page_size").fetchone()[0]
        self._interval = interval
        self._stopped = threading.Event()
        self._next_restart = 0.0
        # the WAL's frames at the last restart: it keeps counting them until the next write
        self._restarted_at = 0

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                caught_up, frames = self._copy_back()
                if time.monotonic() >= self._next_restart and (
                    caught_up or frames * self._page_bytes > WAL_LIMIT_BYTES
                ):
                    self._restart()
            except (sqlite3.Error, OSError):
                continue

    def _copy_back(self) -> tuple[bool, int]:
        """PASSIVE checkpoints while the writers go on, and the WAL's frames: caught up once
        a round finds at most `CATCH_UP_FRAMES` new ones; not if the writers outpace it.
        Nothing (False, 0) if nothing was written since the last restart: the WAL keeps its
        old frame count until the next write, and it must not be restarted again."""
        seen = 0
        for _ in range(CATCH_UP_ROUNDS):
            _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames <= 0 or frames == self._restarted_at:
                return False, 0
            if frames - seen <= CATCH_UP_FRAMES:
                return True, frames
            seen = frames
        return False, seen

    def _restart(self) -> None:
        """Restart the WAL in the writers' turn, waited for like any writer's."""
        fcntl.flock(self._writers, fcntl.LOCK_EX)
        try:
            busy, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            fcntl.flock(self._writers, fcntl.LOCK_UN)
        if busy:
            self._next_restart = time.monotonic() + RESTART_BACKOFF_S
        else:
            self._restarted_at = frames

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


def connect(path: str, cache_kib: int = CACHE_KIB) -> sqlite3.Connection:
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
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
    conn.execute("PRAGMA foreign_keys = ON")
    # 32 MiB of page cache (the default is 2 MiB): a search at a million tickets reads a few
    # hundred scattered message rows, three times faster from this cache than through the
    # OS's (measured: 1.4 ms -> 0.45 ms); it keeps a worker well under 150 MB resident.
    conn.execute(f"PRAGMA cache_size = -{cache_kib}")
    conn.row_factory = _dict_row
    return conn


class _SQLiteConn(Conn):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, statements: StatementCache) -> None:
        self._conn = conn
        self._statements = statements

    def _run(self, statement: ClauseElement, params: Params | None) -> sqlite3.Cursor:
        return self._execute(self._statements.get(statement), params)

    def _execute(self, compiled: Compiled, params: Params | None) -> sqlite3.Cursor:
        values = {**compiled.defaults, **params} if params else compiled.defaults
        try:
            return self._conn.execute(compiled.sql, values)
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc) or "disk" in str(exc):
                raise DatabaseUnavailable("The database is busy; try again.") from exc
            raise

    def _rows(self, statement: ClauseElement, params: Params | None) -> _Rows:
        """The statement's cursor, yielding plain tuples, and its column names: a row becomes a
        dict in C (`dict(zip(...))`), where the connection's `_dict_row` walks every column
        in Python (a tenth of a retrieve's bytecodes)."""
        compiled = self._statements.get(statement)
        cursor = self._execute(compiled, params)
        cursor.row_factory = None
        names = _NAMES.get(compiled.sql)
        if names is None:
            if len(_NAMES) >= _NAMES_KEPT:
                _NAMES.clear()
            names = _NAMES[compiled.sql] = tuple(c[0] for c in cursor.description or ())
        return cursor, names

    async def fetch_all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        cursor, names = self._rows(statement, params)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def fetch_one(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        cursor, names = self._rows(statement, params)
        row = cursor.fetchone()
        return None if row is None else dict(zip(names, row, strict=True))

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


class _Read:
    """A read transaction on the reader connection (`SQLiteDatabase.read`). A class rather
    than an `asynccontextmanager`: entering and leaving a generator's context manager cost a
    cheap read more than its BEGIN and COMMIT."""

    __slots__ = ("_conn", "_handle", "_lock")

    def __init__(self, conn: sqlite3.Connection, handle: Conn, lock: asyncio.Lock) -> None:
        self._conn, self._handle, self._lock = conn, handle, lock

    async def __aenter__(self) -> Conn:
        await self._lock.acquire()
        try:
            self._conn.execute("BEGIN DEFERRED")
        except BaseException:
            self._lock.release()
            raise
        return self._handle

    async def __aexit__(self, *exc: object) -> None:
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # or every later BEGIN would fail
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._lock.release()


class _Batch:
    """One SQLite transaction shared by the write transactions that gathered for it."""

    __slots__ = ("begun", "committed", "error", "idle", "pending", "ready")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.begun = False  # its turn came: later writes gather for the next batch
        self.ready: asyncio.Future[None] = loop.create_future()  # BEGIN IMMEDIATE has run
        self.idle: asyncio.Future[None] = loop.create_future()  # every member has left
        self.committed: asyncio.Future[None] = loop.create_future()  # COMMIT has returned
        self.error: BaseException | None = None  # why the transaction is lost, if it is
        self.pending = 0  # members that joined and have not left


class GroupCommit:
    """The write transactions of one process on its writer connection (see the module's
    docstring). The first write that finds no batch gathering starts one: a task waits for
    the writers' turn for it (the batch before committing, another process writing) while
    the writes that come meanwhile join it. When the turn comes the batch takes no one else
    in, begins the transaction, its members run their blocks one after the other, each in a
    savepoint, and it commits once the last has left. A batch thus holds the writers' lock
    for its members' own work only: letting in the writes that arrive while it runs kept
    the lock for as long as the event loop stayed busy, and the other process waiting.
    `commits` and `writes` count what was committed, for tests and benchmarks."""

    def __init__(self, conn: sqlite3.Connection, handle: Conn, writer_lock: WriterLock) -> None:
        self._conn = conn
        self._handle = handle
        self._writer_lock = writer_lock
        self._turn = asyncio.Lock()  # one member's block at a time, should a block ever await
        self._batch: _Batch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="commit")
        self.commits = 0
        self.writes = 0

    def _join(self) -> _Batch:
        batch = self._batch
        if batch is None or batch.begun:
            batch = self._batch = _Batch(asyncio.get_running_loop())
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        batch.pending += 1
        return batch

    def _leave(self, batch: _Batch) -> None:
        batch.pending -= 1
        if batch.pending == 0 and batch.ready.done():
            batch.idle.set_result(None)

    async def _run(self, batch: _Batch) -> None:
        """Begin the batch's transaction in the writers' turn, wait for its members, commit."""
        conn = self._conn
        try:
            await self._writer_lock.acquire()
        except BaseException as exc:
            batch.error = exc
            batch.begun = True
            batch.ready.set_result(None)
            batch.committed.set_result(None)
            raise
        batch.begun = True
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                batch.error = DatabaseUnavailable("The database is busy; try again.")
                batch.error.__cause__ = exc
                return
            finally:
                batch.ready.set_result(None)
            if batch.pending > 0:  # else every member was cancelled before it began
                await batch.idle
            if batch.error is None:
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self._committer, conn.execute, "COMMIT"
                    )
                    self.commits += 1
                except sqlite3.Error as exc:
                    batch.error = DatabaseUnavailable("The database could not commit; try again.")
                    batch.error.__cause__ = exc
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._writer_lock.release()
            if not batch.committed.done():
                batch.committed.set_result(None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        conn = self._conn
        batch = self._join()
        try:
            await asyncio.shield(batch.ready)
            async with self._turn:
                if batch.error is not None:
                    raise batch.error
                conn.execute("SAVEPOINT write")
                try:
                    yield self._handle
                except BaseException as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK TO write")
                        conn.execute("RELEASE write")
                    else:  # SQLite gave up the whole transaction (disk full, I/O error)
                        batch.error = DatabaseUnavailable("The database lost a write; try again.")
                        batch.error.__cause__ = exc
                    raise
                conn.execute("RELEASE write")
        finally:
            self._leave(batch)
        await asyncio.shield(batch.committed)
        if batch.error is not None:
            raise batch.error
        self.writes += 1

    async def close(self) -> None:
        """Wait for the batch in progress, then stop the committing thread."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._committer.shutdown(wait=True)


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str, *, background_checkpoints: bool = False) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._handle: _SQLiteConn | None = None
        self._lock = asyncio.Lock()
        self._writer_lock: WriterLock | None = None
        self.writes: GroupCommit | None = None
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
            self._writer = connect(self.path, WRITER_CACHE_KIB)
            self._reader = connect(self.path)
            self._writer_lock = WriterLock(self.path)
            if self._background_checkpoints:
                self._writer.execute("PRAGMA wal_autocheckpoint = 0")
                self._checkpointer = Checkpointer(self.path)
                self._checkpointer.start()
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseConfigError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._handle = _SQLiteConn(self._reader, self._statements)
        self.writes = GroupCommit(
            self._writer, _SQLiteConn(self._writer, self._statements), self._writer_lock
        )

    async def close(self) -> None:
        if self.writes is not None:
            await self.writes.close()
            self.writes = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None
        self._handle = None
        if self._writer_lock is not None:
            self._writer_lock.close()
            self._writer_lock = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    def read(self) -> AbstractAsyncContextManager[Conn]:
        if self._reader is None or self._handle is None:
            raise DatabaseUnavailable("The database is not connected.")
        return _Read(self._reader, self._handle, self._lock)

    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        if self.writes is None:
            raise DatabaseUnavailable("The database is not connected.")
        return self.writes.transaction()
