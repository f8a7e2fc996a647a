"""Wake-ups across workers and instances, and one in-memory fan-out per worker.

The feed is the truth; notifications only say "look again". One `Bus` per process reads the
events after its own cursor whenever it is woken (PostgreSQL `NOTIFY` from the events table's
trigger, reaching every instance on the database) or its poll interval passes (the only
wake-up on SQLite, whose writers are this host's processes; a cheap indexed read). What it
read stays in a bounded buffer, each event already rendered as an SSE frame, so a thousand
stream clients cost one read per batch, not one each. Reads are at least `min_gap` apart:
under load every commit notifies, and one read per commit per process (each waking the
webhook dispatcher for a step of a dozen statements) doubled PostgreSQL's statements per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from supportdesk.db import Database, Row
from supportdesk.errors import DatabaseUnavailable
from supportdesk.events import log
from supportdesk.events.resource import EVENTS
from supportdesk.jsonapi.document import sse_event

CHANNEL = "supportdesk_events"
BATCH = 1000
logger = logging.getLogger("supportdesk.events")


@dataclass(frozen=True, slots=True)
class Buffered:
    id: int
    row: Row
    frame: bytes  # the event as one SSE message


class Bus:
    def __init__(
        self,
        db: Database,
        poll_interval: float,
        heartbeat: float = 15.0,
        buffer_size: int = 2000,
        fallback_interval: float = 1.0,
        min_gap: float = 0.02,
    ) -> None:
        self.db = db
        self._min_gap = min_gap
        self._heartbeat = heartbeat
        self.beats = 0  # heartbeats so far: streams send a comment line on each
        self._poll = poll_interval
        self._fallback = fallback_interval
        # the newest events read, oldest first, with their ids alongside for bisection: every
        # stream client looks its position up on every batch
        self._buffer: list[Buffered] = []
        self._ids: list[int] = []
        self._size = buffer_size
        self.cursor = 0  # the newest event this bus has read
        self._floor = 0  # the buffer holds every event after this id
        self._tick = asyncio.Event()
        self._wake = asyncio.Event()
        self.closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._beating: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        async with self.db.read() as conn:
            self.cursor = self._floor = await log.newest_id(conn)
        self._task = asyncio.create_task(self._run(), name="event-bus")
        self._beating = asyncio.create_task(self._beat(), name="event-bus-heartbeat")

    async def stop(self) -> None:
        self.close_streams()
        for task in (self._task, self._beating):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._beating = None
        await self._stop_listening()

    async def _beat(self) -> None:
        """One heartbeat for all streams: a timer per stream and wait cost a fifth of the
        worker's time at a thousand streams (bench/events.py, py-spy)."""
        while True:
            await asyncio.sleep(self._heartbeat)
            self.beats += 1
            self._notify()

    def close_streams(self) -> None:
        """Tell every open stream and long poll to finish (the server is stopping)."""
        self.closing.set()
        self._notify()
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self) -> bool:
        """Subscribe to the database's notifications if it has them; True while subscribed."""
        if self._unlisten is None:
            try:
                self._unlisten = await self.db.listen(CHANNEL, self.wake, self._lost)
            except DatabaseUnavailable:
                return False
            except Exception:  # never let the bus die: poll until the database takes LISTEN
                logger.exception("event bus: cannot listen for notifications; polling")
                return False
        return self._unlisten is not None

    def _lost(self) -> None:
        self._unlisten = None
        self.wake()

    async def _stop_listening(self) -> None:
        unlisten, self._unlisten = self._unlisten, None
        if unlisten is not None:
            with contextlib.suppress(Exception):
                await unlisten()

    async def _run(self) -> None:
        """Until `close_streams`: wait for a wake-up or the interval, then read. The loop ends
        on the closing flag, not only by cancellation: Python 3.11's `wait_for` can swallow a
        cancellation that arrives as its wait completes (a test teardown hung on it)."""
        loop = asyncio.get_running_loop()
        last = -self._min_gap
        while not self.closing.is_set():
            interval = self._fallback if await self._listen() else self._poll
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            # the commits of the next `min_gap` join this read
            await asyncio.sleep(max(0.0, last + self._min_gap - loop.time()))
            self._wake.clear()
            last = loop.time()
            try:
                await self._read()
            except DatabaseUnavailable:
                continue
            except Exception:
                logger.exception("event bus: reading the feed failed")

    async def _read(self) -> None:
        while True:
            async with self.db.read() as conn:
                rows = await log.read(conn, self.cursor, BATCH, log.Selection())
            if not rows:
                return
            self._buffer.extend(Buffered(row["id"], row, sse_event(EVENTS, row)) for row in rows)
            self._ids.extend(row["id"] for row in rows)
            self.cursor = rows[-1]["id"]
            excess = len(self._buffer) - self._size
            if excess > 0:
                self._floor = self._ids[excess - 1]
                del self._buffer[:excess], self._ids[:excess]
            self._notify()
            if len(rows) < BATCH:
                return

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def buffered_after(self, cursor: int) -> list[Buffered] | None:
        """The buffered events after `cursor`, or None when the buffer no longer reaches back
        that far (read the database instead)."""
        if cursor < self._floor:
            return None
        if cursor >= self.cursor:
            return []
        return self._buffer[bisect_right(self._ids, cursor) :]

    async def tick(self) -> None:
        """Wait for the next batch of events, heartbeat or shutdown."""
        await self._tick.wait()

    async def changed(self, seconds: float) -> bool:
        """Wait until this bus reads new events (True) or `seconds` pass (False)."""
        tick = self._tick
        if self.closing.is_set():
            return False
        try:
            async with asyncio.timeout(seconds):  # no task per waiter, unlike wait_for
                await tick.wait()
        except TimeoutError:
            return False
        return not self.closing.is_set()
