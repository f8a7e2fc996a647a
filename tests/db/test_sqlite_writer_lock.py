"""The SQLite writers' queue (`db.sqlite.WriterLock`) across processes, and the checkpointer
that queues on it to truncate the WAL: another open file description of the lock file stands
in for another process."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import struct
from pathlib import Path

import pytest
from sqlalchemy import text

from supportdesk.db import sqlite
from supportdesk.db.sqlite import WriterLock


def _free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


async def test_a_writer_waits_for_another_process_then_gets_the_lock(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "x.db"))
    other = os.open(tmp_path / "x.db-writer", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        waiting = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        fcntl.flock(other, fcntl.LOCK_UN)
        await asyncio.wait_for(waiting, 5)
        assert not _free(str(tmp_path / "x.db-writer"))
        lock.release()
        assert _free(str(tmp_path / "x.db-writer"))
    finally:
        os.close(other)
        lock.close()


async def test_a_cancelled_wait_gives_the_lock_back_when_it_comes(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "x.db"))
    other = os.open(tmp_path / "x.db-writer", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        waiting = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0.2)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        fcntl.flock(other, fcntl.LOCK_UN)  # the waiting thread now takes the lock...
        for _ in range(50):  # ...and gives it straight back
            await asyncio.sleep(0.02)
            if _free(str(tmp_path / "x.db-writer")):
                break
        assert _free(str(tmp_path / "x.db-writer")), "the cancelled writer kept the lock"
        await asyncio.wait_for(lock.acquire(), 5)  # and this process can still write
        lock.release()
    finally:
        os.close(other)
        lock.close()


async def test_the_checkpointer_restarts_a_long_wal_in_its_turn_as_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 256 * 1024
    monkeypatch.setattr(sqlite, "WAL_LIMIT_BYTES", limit)
    path = str(tmp_path / "x.db")
    wal = Path(f"{path}-wal")
    writer, reader = sqlite.connect(path), sqlite.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE t (b BLOB)")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # an old snapshot holds the WAL
    for _ in range(100):
        writer.execute("INSERT INTO t VALUES (?)", (os.urandom(8192),))
    reader.execute("COMMIT")
    assert wal.stat().st_size > limit
    other = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT)
    checkpointer = sqlite.Checkpointer(path, interval=0.05)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process is writing
        checkpointer.start()
        await asyncio.sleep(0.5)
        assert checkpointer._restarted_at == 0, "restarted without waiting for the writers' lock"
        fcntl.flock(other, fcntl.LOCK_UN)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if checkpointer._restarted_at:
                break
        assert checkpointer._restarted_at > 0
        # the next write starts the WAL over, cut back to the limit
        writer.execute("INSERT INTO t VALUES (?)", (os.urandom(8192),))
        assert wal.stat().st_size <= limit
        assert writer.execute("SELECT count(*) FROM t").fetchone()["count(*)"] == 101
    finally:
        os.close(other)
        checkpointer.stop()
        writer.close()
        reader.close()


async def test_readers_that_hold_the_wal_put_the_restart_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "WAL_LIMIT_BYTES", 64 * 1024)
    path = str(tmp_path / "x.db")
    writer, reader = sqlite.connect(path), sqlite.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE t (b BLOB)")
    for _ in range(20):
        writer.execute("INSERT INTO t VALUES (?)", (os.urandom(8192),))
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # a long read: a backup, an export
    checkpointer = sqlite.Checkpointer(path, interval=0.05)
    checkpointer.start()
    try:
        free = 0
        for _ in range(40):
            await asyncio.sleep(0.025)
            free += _free(f"{path}-writer")
        # one try held the writers up for RESTART_WAIT_MS; then it waits RESTART_BACKOFF_S
        assert free >= 25, free
    finally:
        checkpointer.stop()
        reader.execute("COMMIT")
        writer.close()
        reader.close()


async def test_a_writer_gives_way_to_another_process_that_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flock is free, but another process has raised its flag (it waits for the flock):
    this process does not take it at once, but lets the other go first, for GIVE_WAY_S at
    most."""
    monkeypatch.setattr(sqlite, "GIVE_WAY_S", 2.0)
    lock = WriterLock(str(tmp_path / "x.db"))
    flags = mmap.mmap(os.open(tmp_path / "x.db-writer", os.O_RDWR), mmap.PAGESIZE)
    other = (os.getpid() + 1) % mmap.PAGESIZE
    try:
        flags[other] = 1
        waiting = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0.3)
        assert not waiting.done(), "took the flock before the process that was waiting"
        flags[other] = 0  # the other process has the flock now, and then gives it back
        await asyncio.wait_for(waiting, 1.0)
        lock.release()
        monkeypatch.setattr(sqlite, "GIVE_WAY_S", 0.2)
        flags[other] = 1  # a flag left by a process killed while it waited costs a moment
        await asyncio.wait_for(lock.acquire(), 1.0)
        lock.release()
    finally:
        flags.close()
        lock.close()


async def test_the_wal_stays_small_under_writes_that_never_pause(tmp_path: Path) -> None:
    """Each round (half a second) copies the WAL back while the writers go on, then
    restarts it in their turn: the next writes go over the WAL's start again, so it holds
    about a round's writes, not all of them."""
    path = str(tmp_path / "x.db")
    setup = sqlite.connect(path)
    setup.execute("CREATE TABLE t (b BLOB)")
    setup.close()
    database = sqlite.SQLiteDatabase(path, background_checkpoints=True)
    await database.connect()
    written, frames, restarts = 0, 0, 0
    shm = Path(f"{path}-shm")
    try:
        deadline = asyncio.get_running_loop().time() + 4.0
        while asyncio.get_running_loop().time() < deadline:
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO t VALUES (randomblob(8192))"))
            written += 8192
            now = _wal_frames(shm)
            restarts += now < frames
            frames = now
    finally:
        await database.close()
    # about once a round: without it the WAL would have grown to all that was written
    assert restarts >= 4, f"{restarts} restarts while {written >> 20} MB were written"


def _wal_frames(shm: Path) -> int:
    """The frames in the WAL now: `mxFrame` of the WAL index header, at byte 16 of the shm
    file, in the machine's byte order (sqlite.org/walformat.html)."""
    with shm.open("rb") as index:
        header = index.read(20)
    return int(struct.unpack_from("=I", header, 16)[0])


async def test_an_idle_wal_is_not_restarted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart the WAL keeps its old frame count until the next write: a WAL past
    the limit must not be restarted (the writers held up) every round while nothing is
    written."""
    monkeypatch.setattr(sqlite, "WAL_LIMIT_BYTES", 64 * 1024)
    path = str(tmp_path / "x.db")
    writer = sqlite.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE t (b BLOB)")
    for _ in range(50):
        writer.execute("INSERT INTO t VALUES (?)", (os.urandom(8192),))
    checkpointer = sqlite.Checkpointer(path, interval=0.02)
    restarts: list[int] = []
    restart = checkpointer._restart

    def counted() -> None:
        restarts.append(1)
        restart()

    monkeypatch.setattr(checkpointer, "_restart", counted)
    checkpointer.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if checkpointer._restarted_at:
                break
        await asyncio.sleep(0.5)  # 25 rounds with nothing written
        assert len(restarts) == 1, len(restarts)
    finally:
        checkpointer.stop()
        writer.close()
