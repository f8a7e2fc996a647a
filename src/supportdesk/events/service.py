"""The changes feed: pages after a cursor with long polling, the live stream, and pruning."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from supportdesk import timestamps
from supportdesk.db import Database, Row
from supportdesk.events import log
from supportdesk.events.bus import Bus
from supportdesk.events.resource import EVENTS
from supportdesk.jsonapi.document import sse_event

CATCH_UP_BATCH = 1000
# sent first: how long an EventSource waits before reconnecting (with Last-Event-ID)
RETRY = b"retry: 1000\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
PRUNE_BATCH = 5000


async def feed(
    db: Database, bus: Bus, cursor: int, limit: int, selection: log.Selection, wait: float
) -> tuple[list[Row], int]:
    """Up to `limit` events after `cursor`; when there are none, wait up to `wait` seconds for
    the next matching one. Returns the events and the cursor to resume from."""
    deadline = time.monotonic() + wait
    while True:
        async with db.read() as conn:
            rows = await log.read(conn, cursor, limit, selection)
        remaining = deadline - time.monotonic()
        if rows or remaining <= 0:
            return rows, (rows[-1]["id"] if rows else cursor)
        if not await bus.changed(remaining) and bus.closing.is_set():
            return rows, cursor


async def stream(
    db: Database,
    bus: Bus,
    cursor: int | None,
    selection: log.Selection,
    frame: Callable[[Row], bytes] | None = None,
) -> AsyncIterator[bytes]:
    """Server-sent events after `cursor` (None: from now on) until the client leaves or the
    server stops; a comment line on each of the bus's heartbeats. Catching up reads the
    database; once level with the bus, events come from its buffer, rendered once. `frame`
    renders an event otherwise than as the `events` resource (the browser's pages)."""
    if cursor is None:
        async with db.read() as conn:
            cursor = await log.newest_id(conn)
    position = cursor
    yield RETRY
    while not bus.closing.is_set():
        buffered = bus.buffered_after(position)
        if buffered is None:
            async with db.read() as conn:
                rows = await log.read(conn, position, CATCH_UP_BATCH, log.Selection())
            if rows:
                position = rows[-1]["id"]
                render = frame or functools.partial(sse_event, EVENTS)
                frames = [render(row) for row in rows if selection.matches(row)]
                if frames:
                    yield b"".join(frames)
                continue
        elif buffered:
            position = buffered[-1].id
            frames = [
                item.frame if frame is None else frame(item.row)
                for item in buffered
                if selection.matches(item.row)
            ]
            if frames:
                yield b"".join(frames)
            continue
        beats = bus.beats
        await bus.tick()
        if bus.closing.is_set():
            return
        if bus.beats != beats:
            yield KEEP_ALIVE


async def prune(db: Database, older_than: timedelta) -> int:
    """Delete the events that occurred more than `older_than` ago; returns how many. In
    batches of `PRUNE_BATCH`; safe beside a running server and repeatable."""
    cutoff = timestamps.ago(older_than)
    return await db.delete_in_batches(
        lambda conn, limit: log.prune(conn, cutoff, limit), PRUNE_BATCH
    )
