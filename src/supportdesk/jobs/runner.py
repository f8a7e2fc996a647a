"""The job runner: each job runs in one place at a time across workers and instances.

A `Runner` competes for every job's lease (a row in `job_leases`, see `repository`): every
`renew_s` seconds it takes the lease when it is free or expired, or renews it when it is its
own, for `lease_s` seconds. While it holds a lease it runs the job's step every `interval`
seconds (and, for `wake_on_events` jobs, as soon as the event bus reads new events). When a
renewal finds that another process took the lease, the job's steps stop here, a step in
progress included; when a holder dies, another process takes over once the lease expires.

A step is one idempotent pass of work: a takeover may repeat part of a pass, never lose one.
A step that raises is logged and recorded on the lease row (`last_error`), and the job goes on
at its next interval; a successful one records `last_success_at`. `stop()` cancels the steps
and releases the leases, so another process takes over at once rather than after `lease_s`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import inf

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Database
from supportdesk.events.bus import Bus
from supportdesk.jobs import repository

# A holder may die just after renewing: its lease then lasts LEASE_S more, and the others
# notice it expired at their next try, up to RENEW_S later. SPEC 11 takes a dead holder's job
# over within 30 s, so LEASE_S + RENEW_S stays well under that (25 s).
LEASE_S = 20.0  # a lease lasts this long unless renewed
RENEW_S = 5.0  # how often a runner renews its leases and tries to take the others
ERROR_CHARS = 1000  # the longest `last_error` kept
logger = logging.getLogger("supportdesk.jobs")


class StepFailed(Exception):
    """A step's expected failure (a mail server down, a wrong password): one warning line in
    the log and the job's `last_error`, without a traceback."""


@dataclass
class JobContext:
    """What a step works with: this process's database, settings and event bus, and the
    runner's holder id."""

    db: Database
    settings: Settings
    bus: Bus
    holder: str


@dataclass(frozen=True)
class Job:
    """A background job. Its step bounds its own waits (network timeouts): the lease stays
    held while a step runs, so a step that never ends stops the job everywhere."""

    name: str  # the lease row's name
    interval: float  # seconds between steps while held
    step: Callable[[JobContext], Awaitable[None]]  # one idempotent pass of work
    wake_on_events: bool = False  # also step as soon as the event bus sees new events
    close: Callable[[], None] | None = None  # frees what the steps keep, once they have ended


def new_holder() -> str:
    """`hostname:pid:random`: unique to one runner, and says where it runs."""
    return f"{socket.gethostname()[:96]}:{os.getpid()}:{secrets.token_hex(4)}"


class Runner:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        bus: Bus,
        jobs: Sequence[Job],
        holder: str | None = None,
        *,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
    ) -> None:
        if not 0 < renew_s < lease_s:
            raise ValueError("renew_s must be positive and shorter than lease_s")
        self.holder = holder or new_holder()
        self.jobs = tuple(jobs)
        self._context = JobContext(db, settings, bus, self.holder)
        self._lease_s = lease_s
        self._renew_s = renew_s
        self._tasks: list[asyncio.Task[None]] = []
        self._succeeded: dict[str, float] = {}  # job -> loop time of its last recorded success

    async def start(self) -> None:
        """Start competing for the leases; returns at once."""
        self._tasks = [
            asyncio.create_task(self._hold(job), name=f"lease-{job.name}") for job in self.jobs
        ]

    async def stop(self) -> None:
        """Cancel the steps and lease renewals, then release this runner's leases."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            async with self._context.db.transaction() as conn:
                await repository.release(conn, self.holder)
        except Exception:
            logger.warning("jobs: releasing the leases of %s failed", self.holder, exc_info=True)

    async def _hold(self, job: Job) -> None:
        """Take or renew the job's lease every `renew_s`; run its steps while it is held.

        Each renewal also sets a timer that stops the steps `renew_s` before the lease would
        expire, measured from when this process asked for it: if renewals stop succeeding
        (the database does not answer, or answers too slowly), the steps stop before another
        process can take the lease over, never after."""
        loop = asyncio.get_running_loop()
        steps: asyncio.Task[None] | None = None
        expiry: asyncio.TimerHandle | None = None
        try:
            while True:
                asked = loop.time()
                taken: bool | None = None  # unknown: the timer decides
                try:
                    taken = await self._take(job.name)
                except Exception:
                    logger.warning("job %s: renewing its lease failed", job.name, exc_info=True)
                if steps is not None and steps.done():
                    logger.warning("job %s: lease of %s expired", job.name, self.holder)
                    steps = None
                if taken:
                    if steps is None:
                        logger.info("job %s: lease taken by %s", job.name, self.holder)
                        steps = asyncio.create_task(self._steps(job), name=f"job-{job.name}")
                    if expiry is not None:
                        expiry.cancel()
                    expiry = loop.call_at(asked + self._lease_s - self._renew_s, steps.cancel)
                elif taken is False and steps is not None:
                    logger.warning("job %s: lease lost by %s", job.name, self.holder)
                    await _cancel(steps)
                    steps = None
                await asyncio.sleep(self._renew_s)
        finally:
            if expiry is not None:
                expiry.cancel()
            if steps is not None:
                await _cancel(steps)

    async def _take(self, name: str) -> bool:
        moment = datetime.now(UTC)
        async with self._context.db.transaction() as conn:
            return await repository.take(
                conn,
                name,
                self.holder,
                timestamps.to_text(moment),
                timestamps.to_text(moment + timedelta(seconds=self._lease_s)),
            )

    async def _steps(self, job: Job) -> None:
        """Step, then wait `interval`; a `wake_on_events` job waits only until the bus reads
        new events, and steps again at once if it read some during the step."""
        bus = self._context.bus
        try:
            while True:
                seen = bus.cursor
                await self._step(job)
                if not job.wake_on_events or bus.closing.is_set():
                    await asyncio.sleep(job.interval)
                elif bus.cursor == seen:
                    await bus.changed(job.interval)
        finally:
            if job.close is not None:
                job.close()

    async def _step(self, job: Job) -> None:
        """One step, its outcome recorded on the lease row; never raises but to cancel.
        A failure is recorded at once; a success only when the last one recorded here is
        `renew_s` old (a job woken by events may step hundreds of times a second, and each
        record is a write), so `last_success_at` lags by at most that."""
        error: str | None = None
        try:
            await job.step(self._context)
        except StepFailed as exc:
            logger.warning("job %s: %s", job.name, exc)
            error = str(exc)[:ERROR_CHARS]
        except Exception as exc:
            logger.exception("job %s: step failed", job.name)
            error = _describe(exc)
        loop = asyncio.get_running_loop()
        if error is None and loop.time() - self._succeeded.get(job.name, -inf) < self._renew_s:
            return
        at = timestamps.now()
        try:
            async with self._context.db.transaction() as conn:
                if error is None:
                    await repository.succeeded(conn, job.name, at)
                    self._succeeded[job.name] = loop.time()
                else:
                    await repository.failed(conn, job.name, error, at)
                    self._succeeded.pop(job.name, None)  # the next success shows at once
        except Exception:
            logger.warning("job %s: recording its outcome failed", job.name, exc_info=True)


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_CHARS]


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended. (`asyncio.wait`, not `await task`: the
    caller's own cancellation, as by `stop()`, must still reach the caller.)"""
    task.cancel()
    await asyncio.wait([task])


async def report(db: Database) -> dict[str, dict[str, str | None]] | None:
    """Each job's lease as `/health` shows it (`holder` only while the lease is live), or None
    when the database does not answer. One small read."""
    try:
        async with db.read() as conn:
            rows = await repository.leases(conn)
    except Exception:
        return None
    now = timestamps.now()
    return {
        row["name"]: {
            "holder": row["holder"] if row["expires_at"] and row["expires_at"] > now else None,
            "last_success_at": row["last_success_at"],
            "last_error": row["last_error"],
            "last_error_at": row["last_error_at"],
        }
        for row in rows
    }
