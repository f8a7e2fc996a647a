"""`supportdesk seed` on PostgreSQL loads a large seed with the secondary indexes of tickets and
messages dropped and builds them again at the end, all in one transaction (`seed._bulk`): the
indexes come back exactly as they were, and a seed that fails part way leaves the database as
it was, indexes included."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from supportdesk.config import Settings
from supportdesk.db import DatabaseUrl, open_database
from supportdesk.db import migrate as migrations
from supportdesk.seed import _SECONDARY_INDEXES, Plan, seed
from supportdesk.tables import ticket_messages, tickets, users
from tests.conftest import TEST_DATABASE, _recreate_database, postgres_url


@pytest.fixture
def url(postgres_database: str) -> str:
    name = f"{TEST_DATABASE}_seed_bulk"
    asyncio.run(_recreate_database(name))
    migrated = postgres_url(name)
    migrations.upgrade(DatabaseUrl.parse(migrated))
    return migrated


async def _state(url: str) -> tuple[list[tuple[str, str]], int, int, int]:
    db = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            indexes = [
                (r["name"], r["definition"]) for r in await conn.fetch_all(_SECONDARY_INDEXES)
            ]
            count = select(func.count())
            return (
                indexes,
                await conn.fetch_value(count.select_from(users)),
                await conn.fetch_value(count.select_from(tickets)),
                await conn.fetch_value(count.select_from(ticket_messages)),
            )
    finally:
        await db.close()


async def _seed(url: str, plan: Plan, fail_at: str | None = None) -> list[str]:
    """Seeds `plan`; with `fail_at`, raises at the first progress report of that step."""
    steps: list[str] = []

    def progress(what: str, count: int) -> None:
        steps.append(what)
        if what == fail_at:
            raise RuntimeError(f"stopped at {what}")

    db = open_database(url)
    await db.connect()
    try:
        await seed(db, Settings(), plan, progress)
    finally:
        await db.close()
    return steps


def test_the_indexes_come_back_as_they_were(url: str) -> None:
    before, *_ = asyncio.run(_state(url))
    assert len(before) > 20  # every filter and sort key, and the full-text indexes
    steps = asyncio.run(_seed(url, Plan(tickets=300, users=20)))
    assert steps.count("indexes") == len(before)  # dropped and built again, each reported
    assert asyncio.run(_state(url)) == (before, 20, 300, 900)
    # a seed that adds less than there is loads around the indexes, batch by batch
    assert "indexes" not in asyncio.run(_seed(url, Plan(tickets=100, users=5)))
    assert asyncio.run(_state(url)) == (before, 25, 400, 1200)


@pytest.mark.parametrize("fail_at", ["tickets", "indexes"])
def test_a_seed_that_fails_leaves_the_database_as_it_was(url: str, fail_at: str) -> None:
    """Failing after the first batch, or while the indexes are being built again: nothing
    loaded stays (users included), and no index is missing."""
    before = asyncio.run(_state(url))
    with pytest.raises(RuntimeError, match=f"stopped at {fail_at}"):
        asyncio.run(_seed(url, Plan(tickets=300, users=20), fail_at=fail_at))
    assert asyncio.run(_state(url)) == before
