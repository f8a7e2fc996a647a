"""The webhook dispatcher (SPEC section 10): the step of the `webhooks` job.

The runner calls `step` while it holds the job's lease, every second and as soon as the bus
sees new events. A step offers new events to the endpoints' queues (`outbox.fan_out`) and sends
what is due. Each due endpoint gets its own task, which sends a batch from the head of its
queue in order and records it in one transaction; a step never runs two tasks for one
endpoint, and never outlives its tasks, so an endpoint's events go out one after the other.

One endpoint never holds up another: they send concurrently, and a failure only reschedules
its own queue. A step's budget is `STEP_BUDGET_S`, after which it starts no new work unless a
send has been in flight for `SLOW_S` (the step waits for it anyway, so the other endpoints keep
going meanwhile), and never after `LINGER_S` more; then it waits for the sends in flight (at
most `delivery.TIMEOUT_S`) and returns, so the runner can renew its lease.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from supportdesk.config import Settings
from supportdesk.db import Row
from supportdesk.jobs.runner import Job, JobContext
from supportdesk.webhooks import client, delivery, outbox

STEP_BUDGET_S = 1.0
SLOW_S = 0.5
LINGER_S = delivery.TIMEOUT_S / 2
# endpoints sending at once, and deliveries an endpoint sends before recording them
MAX_ENDPOINTS = 32
BATCH = 100


async def step(ctx: JobContext, sender: client.Sender) -> None:
    """Fan out and send until nothing is due, within the budget above, through `sender`'s
    kept-alive connections (the job keeps one sender from step to step). Cancelled (the lease
    lost, the server stopping), it cancels its sends: those not recorded stay pending and go
    out again later, under the same `webhook-id`."""
    started = time.monotonic()
    sending: dict[int, tuple[float, asyncio.Task[None]]] = {}
    shared = _Shared()
    try:
        while True:
            more = False
            if _may_start(started, sending):
                more = await outbox.fan_out(ctx.db)
                for webhook_id in await outbox.due(ctx.db, MAX_ENDPOINTS + len(sending)):
                    if webhook_id not in sending and len(sending) < MAX_ENDPOINTS:
                        task = asyncio.create_task(_send(ctx, sender, shared, webhook_id))
                        sending[webhook_id] = (time.monotonic(), task)
            if not sending:
                if more and time.monotonic() - started < STEP_BUDGET_S:
                    continue
                return
            tasks = [task for _, task in sending.values()]
            done, _ = await asyncio.wait(tasks, timeout=SLOW_S, return_when=asyncio.FIRST_COMPLETED)
            for webhook_id, (_, task) in list(sending.items()):
                if task in done:
                    del sending[webhook_id]
                    task.result()  # a database failure ends the step; the runner reports it
    finally:
        for _, task in sending.values():
            task.cancel()
        await asyncio.gather(*(task for _, task in sending.values()), return_exceptions=True)
        sender.expire()


def _may_start(started: float, sending: dict[int, tuple[float, asyncio.Task[None]]]) -> bool:
    """Within the budget; or after it while a slow send keeps the step waiting anyway, until
    `LINGER_S` more have passed."""
    now = time.monotonic()
    if now - started < STEP_BUDGET_S:
        return True
    if now - started >= STEP_BUDGET_S + LINGER_S:
        return False
    return any(now - since >= SLOW_S for since, _ in sending.values())


@dataclass
class _Shared:
    """What the endpoints of one step share: the events read (most go to every endpoint),
    each event's body rendered once (the signatures differ, the bodies do not)."""

    events: dict[int, Row] = field(default_factory=dict)
    bodies: dict[int, bytes] = field(default_factory=dict)

    def body(self, event: Row) -> bytes:
        body = self.bodies.get(event["id"])
        if body is None:
            body = self.bodies[event["id"]] = delivery.payload(event)
        return body


async def _send(ctx: JobContext, sender: client.Sender, shared: _Shared, webhook_id: int) -> None:
    """One batch of one endpoint: resolve its host (checked again now: DNS may have changed
    since it was accepted), send in order until a failure, record. A refused address is a
    failed attempt with the reason as its error."""
    work = await outbox.batch(ctx.db, webhook_id, BATCH, shared.events)
    attempts: list[outbox.Attempt] = []
    if work is not None and work.items:
        try:
            addresses = await delivery.resolve(work.url, ctx.settings.webhook_allow_private)
            refused = None
        except delivery.Refused as exc:
            addresses, refused = [], str(exc)
        for row, event in work.items:
            at = datetime.now(UTC)
            if refused is not None:
                outcome = delivery.Outcome(None, 0, refused)
            else:
                body = shared.body(event)
                headers = delivery.headers(row["event_id"], work.secrets, body)
                outcome = await sender.post(work.url, addresses, body, headers)
            attempts.append(outbox.Attempt(row, outcome, at))
            if not outcome.delivered:
                break
    # with no attempts (the endpoint was disabled, or its head is not due after all) this
    # only recomputes when the endpoint is next due
    await outbox.record(ctx.db, ctx.settings, webhook_id, attempts)


def job(settings: Settings) -> Job:
    """Always on: with no endpoint a step is one cheap read."""
    sender = client.Sender()
    return Job(
        "webhooks",
        interval=1.0,
        step=functools.partial(step, sender=sender),
        wake_on_events=True,
        close=sender.close,
    )
