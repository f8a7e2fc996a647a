"""What keeps big lists fast on PostgreSQL: the trigger-kept counts (revision 0013), where
writers append deltas instead of updating one counter row, so concurrent writers of a table
never wait for each other's commit and the counts job's fold keeps every count as it was; and
the search settings (no parallel workers, short GIN pending lists)."""

from __future__ import annotations

import asyncio

import asyncpg

from supportdesk.db import open_database
from supportdesk.db.counts import fold, table_total, total, value_count
from supportdesk.tables import row_count_deltas
from tests.conftest import _truncate

_USER = (
    "INSERT INTO users (email, first_name, created_at, updated_at) "
    "VALUES ($1, 'T', now(), now()) RETURNING id"
)
_TICKET = (
    "INSERT INTO tickets (user_id, subject, status, priority, created_at, updated_at) "
    "VALUES ($1, 'S', $2, 'low', now(), now())"
)


async def _counts(url: str) -> tuple[int, int, int, int]:
    """users, tickets, open tickets, pending deltas."""
    from sqlalchemy import String, func, literal, select

    db = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            open_count = total([value_count("tickets", "status", literal("open", String))])
            return (
                await conn.fetch_value(table_total("users")),
                await conn.fetch_value(table_total("tickets")),
                await conn.fetch_value(open_count),
                await conn.fetch_value(select(func.count()).select_from(row_count_deltas)),
            )
    finally:
        await db.close()


async def _fold(url: str) -> int:
    db = open_database(url)
    await db.connect()
    try:
        async with db.transaction() as conn:
            return await fold(conn)
    finally:
        await db.close()


async def _concurrent_writers(url: str) -> None:
    first = await asyncpg.connect(url, timeout=5)
    second = await asyncpg.connect(url, timeout=5)
    try:
        owner = await first.fetchval(_USER, "owner@example.com")
        # the first writer's transaction stays open, its counts written but not committed
        held = first.transaction()
        await held.start()
        await first.execute(_TICKET, owner, "open")
        await first.fetchval(_USER, "first@example.com")
        # the second would wait for it until the lock timeout if both updated one counter row
        async with second.transaction():
            await second.execute("SET LOCAL lock_timeout = '2s'")
            await second.execute(_TICKET, owner, "open")
            await second.execute(_TICKET, owner, "closed")
            await second.fetchval(_USER, "second@example.com")
        await held.commit()
    finally:
        await first.close()
        await second.close()


def test_concurrent_writers_never_wait_for_each_others_counts(postgres_database: str) -> None:
    url = postgres_database
    asyncio.run(_truncate(url))
    asyncio.run(_concurrent_writers(url))
    users, tickets, open_tickets, pending = asyncio.run(_counts(url))
    assert (users, tickets, open_tickets) == (3, 3, 2)
    assert pending > 0
    assert asyncio.run(_fold(url)) == 4  # users, tickets, and the open and closed counts
    assert asyncio.run(_counts(url)) == (3, 3, 2, 0)
    assert asyncio.run(_fold(url)) == 0


async def _settings(url: str) -> tuple[str, list[str]]:
    from sqlalchemy import text

    db = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            workers = await conn.fetch_value(text("SHOW max_parallel_workers_per_gather"))
            options = await conn.fetch_all(
                text(
                    "SELECT c.relname AS name, array_to_string(c.reloptions, ',') AS options "
                    "FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                    "WHERE a.amname = 'gin' ORDER BY c.relname"
                )
            )
        return workers, [f"{r['name']}: {r['options']}" for r in options]
    finally:
        await db.close()


def test_searches_read_short_pending_lists_without_parallel_workers(
    postgres_database: str,
) -> None:
    """The app's connections start no parallel workers, and every GIN index of search keeps a
    short pending list (revision 0014; bench/README.md, change 14)."""
    workers, options = asyncio.run(_settings(postgres_database))
    assert workers == "0"
    assert options == [
        "ix_ticket_messages_message_search: gin_pending_list_limit=256",
        "ix_tickets_subject_search: gin_pending_list_limit=256",
        "ix_tickets_subject_trgm: gin_pending_list_limit=256",
    ]
