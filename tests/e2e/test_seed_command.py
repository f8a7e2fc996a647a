"""`supportdesk seed` fills a database with a realistic spread, on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from supportdesk.db import open_database
from supportdesk.tables import ticket_messages, tickets, users
from supportdesk.tables.tickets import METRIC_TIMESTAMPS
from supportdesk.tickets import repository as tickets_repository
from tests.e2e.conftest import run_cli


async def census(url: str) -> dict[str, object]:
    db = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            counts = {
                name: await conn.fetch_value(select(func.count()).select_from(table))
                for name, table in (
                    ("users", users),
                    ("tickets", tickets),
                    ("messages", ticket_messages),
                )
            }
            spread = {
                column: len(await conn.fetch_all(select(getattr(tickets.c, column)).distinct()))
                for column in ("status", "priority", "department", "user_id", "assigned_to")
            }
            staff = await conn.fetch_value(
                select(func.count()).select_from(users).where(users.c.role_id.is_not(None))
            )
            lengths = await conn.fetch_all(select(func.length(ticket_messages.c.message)))
            order = await conn.fetch_value(
                select(func.count())
                .select_from(tickets)
                .where(tickets.c.updated_at < tickets.c.created_at)
            )
        metrics = select(
            tickets.c.id, *(tickets.c[n] for n in (*METRIC_TIMESTAMPS, "message_count"))
        )
        async with db.read() as conn:
            seeded = await conn.fetch_all(metrics.order_by(tickets.c.id))
        async with db.transaction() as conn:
            await tickets_repository.recompute_metrics(conn, [row["id"] for row in seeded])
            recomputed = await conn.fetch_all(metrics.order_by(tickets.c.id))
        return {
            **counts,
            **spread,
            "metrics_drift": sum(a != b for a, b in zip(seeded, recomputed, strict=True)),
            "answered": sum(row["first_response_at"] is not None for row in seeded),
            "staff": staff,
            "lengths": {r[next(iter(r.keys()))] for r in lengths},
            "backwards": order,
        }
    finally:
        await db.close()


def test_seed(empty_database_url: str) -> None:
    result = run_cli(
        "seed",
        "--tickets",
        "600",
        "--messages-per-ticket",
        "3",
        "--users",
        "50",
        "--database-url",
        empty_database_url,
    )
    assert "seeded 50 users, 600 tickets and 1800 messages" in result.stdout
    assert "tickets (+3 messages each)" in result.stdout
    facts = asyncio.run(census(empty_database_url))
    assert (facts["users"], facts["tickets"], facts["messages"]) == (50, 600, 1800)
    assert facts["staff"] == 5
    assert facts["status"] >= 4 and facts["priority"] == 4 and facts["department"] == 4
    assert facts["user_id"] > 30 and facts["assigned_to"] == 6  # 5 staff and unassigned
    assert len(facts["lengths"]) > 100  # type: ignore[arg-type]
    assert facts["backwards"] == 0
    # the metrics seeded are those the service keeps (resolved_at aside: it is not derived
    # from messages)
    assert facts["metrics_drift"] == 0
    assert 300 < facts["answered"] < 600  # type: ignore[operator]
    # seeding again adds to what is there, and the API can still create rows after it
    run_cli("seed", "--tickets", "10", "--users", "5", "--database-url", empty_database_url)
    assert asyncio.run(census(empty_database_url))["tickets"] == 610
    created = run_cli(
        "users", "create", "--email", "after-seed@example.com", "--database-url", empty_database_url
    )
    assert int(created.stdout.strip()) == 56
