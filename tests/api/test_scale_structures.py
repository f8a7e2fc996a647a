"""The structures that keep lists fast at scale stay exact: trigger-kept totals and the stored
sort ranks."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from supportdesk.config import Settings
from supportdesk.db import counts
from supportdesk.tables import ticket_messages, tickets, users
from supportdesk.tickets.service import autoclose, sync_ranks
from tests import factories


async def real_counts(app: FastAPI) -> tuple[int, int, int]:
    async with app.state.db.read() as conn:
        return tuple(  # type: ignore[return-value]
            [
                await conn.fetch_value(select(func.count()).select_from(t))
                for t in (tickets, users, ticket_messages)
            ]
        )


async def test_unfiltered_totals_follow_every_write(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    other = await factories.user(client)
    made = [await factories.ticket(client, owner["id"]) for _ in range(3)]
    await factories.ticket(client, other["id"])
    await factories.post_message(client, made[0]["id"], owner["id"])
    await factories.post_message(client, made[0]["id"], other["id"])

    async def totals() -> tuple[int, int, int]:
        return tuple(  # type: ignore[return-value]
            [
                (await client.get(path)).json()["meta"]["total"]
                for path in ("/tickets", "/users", "/ticket-messages")
            ]
        )

    assert await totals() == await real_counts(app) == (4, 2, 2)
    await client.delete(f"/tickets/{made[0]['id']}")  # cascades to its two messages
    assert await totals() == await real_counts(app) == (3, 2, 0)
    await client.delete(f"/users/{owner['id']}", params={"force": "true"})  # cascades to tickets
    assert await totals() == await real_counts(app) == (1, 1, 0)


async def status_counts(app: FastAPI) -> dict[str, int]:
    async with app.state.db.read() as conn:
        rows = await conn.fetch_all(
            select(tickets.c.status, func.count()).group_by(tickets.c.status)
        )
    return {row["status"]: row["count_1"] for row in rows}


async def test_status_totals_follow_every_write(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    """A list filtered by status alone takes its total from the trigger-kept counts per status
    (`supportdesk.db.counts`), pending deltas and folded alike: each write below moves them."""
    owner = await factories.user(client)
    agent = await factories.staff(client)
    statuses = settings.statuses

    async def check(expected: dict[str, int]) -> None:
        for fold in (False, True):
            if fold:
                async with app.state.db.transaction() as conn:
                    await counts.fold(conn)
            real = await status_counts(app)
            assert {s: n for s, n in real.items() if n} == expected
            for status in statuses:
                got = await client.get("/tickets", params={"filter[status]": status})
                assert got.json()["meta"]["total"] == real.get(status, 0), status
            pair = {"filter[status]": "open,customer-reply"}
            got = await client.get("/tickets", params=pair)
            assert got.json()["meta"]["total"] == real.get("open", 0) + real.get(
                "customer-reply", 0
            )

    ids = [(await factories.ticket(client, owner["id"]))["id"] for _ in range(4)]
    await factories.ticket(client, owner["id"], status="on-hold")
    await check({"open": 4, "on-hold": 1})
    await factories.post_message(client, ids[0], agent["id"])  # staff reply: replied
    await factories.post_message(client, ids[1], agent["id"])
    await factories.post_message(client, ids[1], owner["id"])  # customer reply
    await check({"open": 2, "replied": 1, "customer-reply": 1, "on-hold": 1})
    await client.patch(f"/tickets/{ids[2]}", json={"subject": "No status change"})
    await client.patch(f"/tickets/{ids[2]}", json={"status": "closed"})
    await check({"open": 1, "replied": 1, "customer-reply": 1, "on-hold": 1, "closed": 1})
    bulk = await client.patch("/tickets", json={"ids": ids[:3], "changes": {"status": "open"}})
    assert bulk.status_code == 200, bulk.text
    await check({"open": 4, "on-hold": 1})
    body = {"source_ids": [ids[1]], "user_id": agent["id"]}
    merged = await client.post(f"/tickets/{ids[0]}/merge", json=body)
    assert merged.status_code == 200, merged.text
    await check({"open": 3, "closed": 1, "on-hold": 1})
    await factories.post_message(client, ids[2], agent["id"])
    closed = await autoclose(app.state.db, settings, "2999-01-01T00:00:00.000000Z")
    assert [row["id"] for row in closed] == [int(ids[2])]
    await check({"open": 2, "closed": 2, "on-hold": 1})
    await client.delete(f"/tickets/{ids[3]}")
    await check({"open": 1, "closed": 2, "on-hold": 1})
    await client.delete(f"/users/{owner['id']}", params={"force": "true"})
    await check({})


async def test_ranks_follow_the_configured_order(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await factories.user(client)
    low = await factories.ticket(client, owner["id"], priority="low")
    urgent = await factories.ticket(client, owner["id"], priority="urgent")
    medium = await factories.ticket(client, owner["id"], priority="medium")

    async def order() -> list[str]:
        return [
            d["id"]
            for d in (await client.get("/tickets", params={"sort": "priority"})).json()["data"]
        ]

    assert await order() == [low["id"], medium["id"], urgent["id"]]
    await client.patch(f"/tickets/{low['id']}", json={"priority": "high"})
    assert await order() == [medium["id"], low["id"], urgent["id"]]

    settings: Settings = app.state.settings
    reversed_order = settings.model_copy(update={"priorities": ("urgent", "high", "medium", "low")})
    assert await sync_ranks(app.state.db, settings) is False  # first sync records the order
    assert await sync_ranks(app.state.db, reversed_order) is True
    assert await order() == [urgent["id"], low["id"], medium["id"]]
    assert await sync_ranks(app.state.db, reversed_order) is False


async def test_deep_pages_read_through_the_deferred_join_agree(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    from supportdesk.db.listing import DEFERRED_JOIN_FROM
    from supportdesk.seed import Plan, seed

    await seed(
        app.state.db,
        app.state.settings,
        Plan(tickets=1100, messages_per_ticket=0, users=20),
        lambda *_: None,
    )
    for sort, key in (
        ("-priority", lambda t: (-t["rank"], -t["id"])),
        ("id", lambda t: (t["id"],)),
    ):
        pages = []
        for page in range(1, 12):
            response = await client.get(
                "/tickets",
                params={
                    "per_page": "100",
                    "page": str(page),
                    "sort": sort,
                    "fields[tickets]": "priority",
                },
            )
            pages.extend(response.json()["data"])
        assert DEFERRED_JOIN_FROM <= (11 - 1) * 100  # the last page is a deep one
        ranks = {"low": 0, "medium": 1, "high": 2, "urgent": 3}
        rows = [{"id": int(d["id"]), "rank": ranks[d["attributes"]["priority"]]} for d in pages]
        assert len(rows) == 1100 and len({r["id"] for r in rows}) == 1100
        assert rows == sorted(rows, key=key)
