"""The webhook outbox: what the dispatcher (`supportdesk.jobs.webhooks`) reads and records.

At least once, never lost: a delivery exists as a `pending` row before any attempt, and an
attempt's result is written only after it was made, so a crash in between repeats the attempt
(under the same `webhook-id`, for receivers to drop the duplicate). Per endpoint, events go
out in id order: only the head of an endpoint's queue (its pending delivery of the oldest
event) and the due ones right behind it are sent, one after the other, stopping at the first
failure; a later event waits while an earlier one is retrying.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any

import orjson

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Database, Row
from supportdesk.events import log
from supportdesk.events.log import Event, Selection
from supportdesk.webhooks import delivery, repository
from supportdesk.webhooks.resource import WEBHOOKS
from supportdesk.webhooks.schemas import TEST_EVENT
from supportdesk.webhooks.service import pending, public

FAN_OUT_BATCH = 1000
# an endpoint all of whose attempts failed for this long is disabled
DISABLE_AFTER = timedelta(days=5)
GONE = "the endpoint answered 410 Gone"
FAILING = "every delivery failed for 5 days"


async def fan_out(db: Database) -> bool:
    """Offer up to `FAN_OUT_BATCH` events after the endpoints' cursors: one pending delivery
    per enabled endpoint whose patterns match an event newer than its cursor, `webhook.test`
    aside. The deliveries and the advanced cursors commit in one transaction, so a crash
    repeats the whole batch or none of it, and a second dispatcher waits on the endpoints'
    row locks and then sees the advanced cursors. True when a full batch was read (more may
    follow)."""
    async with db.read() as conn:
        oldest = await repository.oldest_cursor(conn)
        if oldest is None or oldest >= await log.newest_id(conn):
            return False
    async with db.transaction() as conn:
        endpoints = await repository.subscribed(conn)
        if not endpoints:
            return False
        events = await log.read(
            conn, min(e["event_cursor"] for e in endpoints), FAN_OUT_BATCH, Selection()
        )
        if not events:
            return False
        selections = [
            (e, Selection(*log.parse_patterns(orjson.loads(e["events"])))) for e in endpoints
        ]
        now = timestamps.now()
        rows = [
            pending(endpoint["id"], event["id"], event["event"], 1, now)
            for event in events
            if event["event"] != TEST_EVENT
            for endpoint, selection in selections
            if event["id"] > endpoint["event_cursor"] and selection.matches(event)
        ]
        await repository.enqueue(conn, rows)
        await repository.advance(conn, events[-1]["id"])
        await repository.sync_heads(conn, sorted({row["webhook_id"] for row in rows}))
    return len(events) == FAN_OUT_BATCH


async def due(db: Database, limit: int) -> list[int]:
    """Endpoints whose queue head is due now, the longest waiting first."""
    async with db.read() as conn:
        return await repository.due(conn, timestamps.now(), limit)


@dataclass
class Batch:
    """What one endpoint sends next: its URL, the secrets that sign, and its due deliveries
    from the queue head on, each with its event (a `log.resource` row)."""

    url: str
    secrets: list[str]
    items: list[tuple[Row, Row]] = field(default_factory=list)


async def batch(db: Database, webhook_id: int, limit: int, events: dict[int, Row]) -> Batch | None:
    """Up to `limit` deliveries from the head of the endpoint's queue, as long as they are due
    (an older event's retry put back in front can be followed by a retry not yet due). None
    when the endpoint is gone or disabled. `events` holds events read before (by id); those
    read now are added to it."""
    now = timestamps.now()
    async with db.read() as conn:
        webhook = await repository.signing(conn, webhook_id)
        if webhook is None or not webhook["enabled"]:
            return None
        queued = await repository.queue(conn, webhook_id, limit)
        ready = list(takewhile(lambda row: row["next_attempt_at"] <= now, queued))
        missing = [row["event_id"] for row in ready if row["event_id"] not in events]
        events.update((event["id"], event) for event in await log.by_ids(conn, missing))
    secrets = [webhook["secret"]]
    expires = webhook["previous_secret_expires_at"]
    if webhook["previous_secret"] is not None and expires is not None and expires > now:
        secrets.append(webhook["previous_secret"])
    # an event pruned meanwhile took its deliveries along (the foreign key cascades)
    items = [(row, events[row["event_id"]]) for row in ready if row["event_id"] in events]
    return Batch(webhook["url"], secrets, items)


@dataclass(frozen=True, slots=True)
class Attempt:
    row: Row
    outcome: delivery.Outcome
    at: datetime


def _finished(
    webhook_id: int, attempt: Attempt, delays: Sequence[float]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The attempt's row as it ends, and the next attempt's row when the schedule (with the
    receiver's Retry-After) has one left; after a 410 there is none."""
    row, outcome = attempt.row, attempt.outcome
    next_at: str | None = None
    retry: dict[str, Any] | None = None
    if not outcome.delivered and not outcome.gone:
        wait = delivery.retry_in(row["attempt"], delays, outcome.retry_after)
        if wait is not None:
            next_at = timestamps.to_text(attempt.at + timedelta(seconds=wait))
            retry = pending(webhook_id, row["event_id"], row["event"], row["attempt"] + 1, next_at)
    result = {
        "id": row["id"],
        "state": repository.DELIVERED if outcome.delivered else repository.FAILED,
        "attempted_at": timestamps.to_text(attempt.at),
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "error": outcome.error,
        "next_attempt_at": next_at,
    }
    return result, retry


async def record(
    db: Database, settings: Settings, webhook_id: int, attempts: Sequence[Attempt]
) -> None:
    """Write how the attempts went, in one transaction: each delivery `delivered` or `failed`,
    a failure's next attempt queued by the retry schedule (none after a 410 or once the
    schedule is spent: the endpoint then moves on to its next event), the endpoint's failure
    streak, and `webhook.disabled` when a 410 or five days of failures disable it. With no
    attempts it only recomputes when the queue head is due."""
    delays = delivery.retry_delays(settings.webhook_retry_schedule)
    now = datetime.now(UTC)
    streak_limit = timestamps.to_text(now - DISABLE_AFTER)
    async with db.transaction() as conn:
        current = await repository.get(conn, webhook_id, for_update=True)
        if current is None:  # deleted meanwhile, its deliveries with it
            return
        failing_since: str | None = current["failing_since"]
        reason: str | None = None
        results = []
        retries = []
        for attempt in attempts:
            result, retry = _finished(webhook_id, attempt, delays)
            results.append(result)
            if retry is not None:
                retries.append(retry)
            if attempt.outcome.delivered:
                failing_since = None
                continue
            failing_since = failing_since or result["attempted_at"]
            if attempt.outcome.gone:
                reason = GONE
            elif failing_since <= streak_limit:
                reason = FAILING
        await repository.record_results(conn, results)
        await repository.enqueue(conn, retries)
        values: dict[str, object] = {}
        if failing_since != current["failing_since"]:
            values["failing_since"] = failing_since
        disabling = reason is not None and current["enabled"]
        if disabling:
            values.update(enabled=False, disabled_reason=reason, updated_at=timestamps.to_text(now))
        if values:
            await repository.writer.update(conn, webhook_id, values)
        await repository.sync_heads(conn, [webhook_id])
        if disabling:
            after = public(await repository.get(conn, webhook_id) or current)
            data = log.attributes(WEBHOOKS, after)
            await log.record(
                conn, log.SYSTEM, [Event("webhook.disabled", WEBHOOKS.type, webhook_id, data)]
            )
