"""The SQLite writers' queue (`db.sqlite.WriterLock`) across processes, and the checkpointer
that queues on it to truncate the WAL: another open file description of the lock file stands
in for another process."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

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


async def test_the_checkpointer_truncates_a_long_wal_in_its_turn_as_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 256 * 1024
    monkeypatch.setattr(sqlite, "WAL_TRUNCATE_BYTES", limit)
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
        assert wal.stat().st_size > limit, "truncated without waiting for the writers' lock"
        fcntl.flock(other, fcntl.LOCK_UN)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if wal.stat().st_size == 0:
                break
        assert wal.stat().st_size == 0
        assert writer.execute("SELECT count(*) FROM t").fetchone()["count(*)"] == 100
    finally:
        os.close(other)
        checkpointer.stop()
        writer.close()
        reader.close()


async def test_readers_that_hold_the_wal_put_the_truncation_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "WAL_TRUNCATE_BYTES", 64 * 1024)
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
        # one try held the writers up for TRUNCATE_WAIT_MS; then it waits TRUNCATE_BACKOFF_S
        assert free >= 25, free
    finally:
        checkpointer.stop()
        reader.execute("COMMIT")
        writer.close()
        reader.close()
