"""No gaps (SPEC 9, DESIGN "the feed is the truth"): a reader that resumes from a cursor never
misses an event that commits later with a smaller id, on both databases."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.events import log
from tests import factories


async def read_all(client: httpx.AsyncClient, cursor: str) -> tuple[list[int], str]:
    ids: list[int] = []
    while True:
        body = (await client.get("/events", params={"after": cursor, "limit": 1000})).json()
        if not body["data"]:
            return ids, cursor
        ids.extend(int(item["id"]) for item in body["data"])
        cursor = body["meta"]["cursor"]


# PostgreSQL only: it draws sequence values before commit. SQLite has one writer at a time per
# database, and one connection per process here, so a transaction held open in the test's own
# process would block its reads too.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_transaction_held_open_keeps_later_commits_out_of_the_feed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    cursor = (await client.get("/events")).json()["meta"]["cursor"]
    held = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> None:
        async with app.state.db.transaction() as conn:
            event = log.Event("user.updated", "users", int(owner["id"]), {"note": "held"})
            await log.record(conn, log.SYSTEM, [event])
            held.set()
            await release.wait()

    holder = asyncio.create_task(slow_writer())
    await held.wait()
    writers = [
        asyncio.create_task(factories.ticket(client, owner["id"], subject=f"t{i}"))
        for i in range(5)
    ]
    await asyncio.sleep(0.5)
    # the held transaction drew the next id first: nothing after it may show yet
    seen, _ = await read_all(client, cursor)
    assert seen == []
    assert not any(writer.done() for writer in writers)

    release.set()
    await holder
    await asyncio.gather(*writers)
    seen, _ = await read_all(client, cursor)
    assert len(seen) == 6
    assert seen == sorted(seen)
    first = (await client.get("/events", params={"after": cursor, "limit": 1})).json()
    assert first["data"][0]["attributes"]["data"] == {"note": "held"}


async def test_a_reader_following_concurrent_writers_sees_every_event_once_in_order(
    client: httpx.AsyncClient,
) -> None:
    owner = await factories.user(client)
    start = (await client.get("/events")).json()["meta"]["cursor"]
    done = asyncio.Event()
    collected: list[int] = []

    async def follow() -> None:
        cursor = start
        while True:
            finished = done.is_set()
            ids, cursor = await read_all(client, cursor)
            collected.extend(ids)
            if finished:
                return
            await asyncio.sleep(0)

    async def write(i: int) -> None:
        ticket = await factories.ticket(client, owner["id"], subject=f"storm {i}")
        await factories.post_message(client, ticket["id"], owner["id"], f"m{i}")

    reader = asyncio.create_task(follow())
    await asyncio.gather(*(write(i) for i in range(30)))
    done.set()
    await reader
    everything, _ = await read_all(client, start)
    assert len(everything) == 30 * 3  # ticket.created, ticket_message.created, ticket.updated
    assert collected == everything
    assert collected == sorted(set(collected))
