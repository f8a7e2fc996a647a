"""Group commit on SQLite (issue 13): the write transactions of one process that come together
share one SQLite transaction, a savepoint each; one that fails rolls back alone, and none is
told it succeeded before the shared COMMIT has returned."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from supportdesk.db.base import IntegrityViolation
from supportdesk.db.sqlite import GroupCommit, SQLiteDatabase
from supportdesk.errors import DatabaseUnavailable

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String))
ADD = insert(items)
ALL = select(items.c.id).order_by(items.c.id)


class Refused(Exception):
    pass


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    database = SQLiteDatabase(str(path))
    await database.connect()
    yield database
    await database.close()


def writes_of(db: SQLiteDatabase) -> GroupCommit:
    assert db.writes is not None
    return db.writes


def committed(db: SQLiteDatabase) -> list[int]:
    """The ids another connection sees: what has been committed."""
    with sqlite3.connect(db.path) as other:
        return [row[0] for row in other.execute("SELECT id FROM items ORDER BY id")]


async def add(db: SQLiteDatabase, item: int, fail: bool = False) -> None:
    async with db.transaction() as conn:
        await conn.execute(ADD, {"id": item, "name": f"item {item}"})
        if fail:
            raise Refused(item)


async def test_writes_that_come_together_share_one_commit(db: SQLiteDatabase) -> None:
    await asyncio.gather(*(add(db, item) for item in range(1, 11)))
    assert committed(db) == list(range(1, 11))
    assert (writes_of(db).commits, writes_of(db).writes) == (1, 10)
    await add(db, 11)  # alone, it commits alone
    assert (writes_of(db).commits, writes_of(db).writes) == (2, 11)


async def test_a_failing_write_rolls_back_alone(db: SQLiteDatabase) -> None:
    results = await asyncio.gather(
        *(add(db, item, fail=item == 3) for item in range(1, 6)), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["Refused"] + ["NoneType"] * 2
    assert committed(db) == [1, 2, 4, 5]
    assert writes_of(db).commits == 1


async def test_a_refused_statement_rolls_back_its_write_alone(db: SQLiteDatabase) -> None:
    async def duplicate() -> None:
        async with db.transaction() as conn:
            await conn.execute(ADD, {"id": 100, "name": "first part of the write"})
            await conn.execute(ADD, {"id": 1, "name": "taken"})

    results = await asyncio.gather(add(db, 1), duplicate(), add(db, 2), return_exceptions=True)
    assert isinstance(results[1], IntegrityViolation)
    assert committed(db) == [1, 2]  # nothing of the failed write, not even its first row


async def test_no_write_is_acknowledged_or_read_before_its_commit(db: SQLiteDatabase) -> None:
    seen_inside: list[list[int]] = []
    acknowledged: list[list[int]] = []

    async def first() -> None:
        await add(db, 1)
        acknowledged.append(committed(db))

    async def second() -> None:
        async with db.transaction() as conn:
            await conn.execute(ADD, {"id": 2, "name": "two"})
            # item 1 is written in this transaction but not committed: readers do not see it
            async with db.read() as reader:
                seen_inside.append([row["id"] for row in await reader.fetch_all(ALL)])
            seen_inside.append(committed(db))
        acknowledged.append(committed(db))

    await asyncio.gather(first(), second())
    assert seen_inside == [[], []]
    assert acknowledged == [[1, 2], [1, 2]]


async def test_a_lost_transaction_fails_every_write_in_it(db: SQLiteDatabase) -> None:
    """When SQLite gives a whole transaction up (a full disk, an I/O error), the writes that
    had already finished their blocks in it are not acknowledged: they fail too."""

    async def breaks() -> None:
        async with db.transaction() as conn:
            await conn.execute(ADD, {"id": 2, "name": "two"})
            conn._conn.execute("ROLLBACK")  # type: ignore[attr-defined]  # as SQLite would
            raise Refused("lost")

    results = await asyncio.gather(add(db, 1), breaks(), add(db, 3), return_exceptions=True)
    assert [type(r).__name__ for r in results] == [
        "DatabaseUnavailable",
        "Refused",
        "DatabaseUnavailable",
    ]
    assert committed(db) == []
    await add(db, 4)  # the next batch is a new transaction
    assert committed(db) == [4]


async def test_a_cancelled_write_leaves_the_others_to_commit(db: SQLiteDatabase) -> None:
    tasks = [asyncio.ensure_future(add(db, item)) for item in range(1, 4)]
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert committed(db) == [1, 3]


async def test_a_busy_database_fails_the_batch_with_a_clear_error(db: SQLiteDatabase) -> None:
    """Another writer that does not queue on the flock holds the database past the busy
    timeout: BEGIN IMMEDIATE fails, and every write of the batch says so."""
    writes_of(db)._conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        results = await asyncio.gather(add(db, 1), add(db, 2), return_exceptions=True)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert all(isinstance(r, DatabaseUnavailable) for r in results), results
    await add(db, 3)
    assert committed(db) == [3]
