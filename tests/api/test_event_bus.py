"""The per-process bus: it reads new events once, keeps a bounded buffer of rendered frames,
and feeds streams from it; streams end when the server stops."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from supportdesk.events import log, service
from supportdesk.events.bus import Bus
from tests import factories


async def test_the_bus_buffers_what_it_read_and_knows_how_far_back(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    bus = Bus(app.state.db, poll_interval=0.02, buffer_size=2)
    await bus.start()
    try:
        start = bus.cursor
        for i in range(3):
            await factories.ticket(client, owner["id"], subject=f"b{i}")
        deadline = asyncio.get_running_loop().time() + 5
        while bus.cursor < start + 3:
            assert await bus.changed(1) or asyncio.get_running_loop().time() < deadline
        assert bus.buffered_after(start) is None  # three events, room for two
        kept = bus.buffered_after(start + 1)
        assert kept is not None
        assert [item.id for item in kept] == [start + 2, start + 3]
        assert kept[-1].frame.startswith(b"id: %d\nevent: ticket.created\ndata: {" % (start + 3))
        assert bus.buffered_after(bus.cursor) == []
    finally:
        await bus.stop()


class CountingBus(Bus):
    reads = 0

    async def _read(self) -> None:
        self.reads += 1
        await super()._read()


async def test_a_burst_of_commits_is_read_in_few_reads(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    bus = CountingBus(app.state.db, poll_interval=0.01, min_gap=0.1)
    await bus.start()
    try:
        loop = asyncio.get_running_loop()
        started, reads = loop.time(), bus.reads
        for i in range(40):  # each commit notifies on PostgreSQL; SQLite polls every 10 ms
            await factories.ticket(client, owner["id"], subject=f"b{i}")
        async with app.state.db.read() as conn:
            newest = await log.newest_id(conn)
        while bus.cursor < newest:
            assert await bus.changed(5), "the bus did not read the burst"
        elapsed = loop.time() - started
        assert bus.reads - reads <= elapsed / 0.1 + 2, (bus.reads - reads, elapsed)
    finally:
        await bus.stop()


async def test_a_stream_catches_up_filters_and_ends_when_the_server_stops(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    first = await factories.ticket(client, owner["id"], subject="before")
    bus = Bus(app.state.db, poll_interval=0.02, heartbeat=0.2)
    await bus.start()
    selection = log.Selection(names=("ticket.created",))
    frames = service.stream(app.state.db, bus, 0, selection)
    assert await anext(frames) == service.RETRY
    caught_up = await asyncio.wait_for(anext(frames), 5)
    assert caught_up.count(b"event: ticket.created") == 1
    assert b'"subject":"before"' in caught_up

    await factories.post_message(client, first["id"], owner["id"])  # filtered out
    await factories.ticket(client, owner["id"], subject="after")
    live = await asyncio.wait_for(anext(frames), 5)
    while live == service.KEEP_ALIVE:
        live = await asyncio.wait_for(anext(frames), 5)
    assert b'"subject":"after"' in live and b"ticket_message" not in live
    assert await asyncio.wait_for(anext(frames), 5) == service.KEEP_ALIVE

    await bus.stop()
    rest = [frame async for frame in frames]
    assert rest == []
