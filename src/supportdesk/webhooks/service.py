"""Webhook endpoints (SPEC section 10): the rules of the /webhooks endpoints.

Every transaction that changes an endpoint's delivery queue locks the endpoint's row first and
ends by recomputing when the queue's head is due (`repository.sync_heads`), so the dispatcher
(`supportdesk.jobs.webhooks`, through `webhooks.outbox`) always finds due endpoints by one
indexed column.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Precondition, Row
from supportdesk.errors import Conflict, ResourceNotFound, ValidationFailed
from supportdesk.events import log
from supportdesk.events.log import Actor, Event
from supportdesk.queries import ListQuery, SortKey
from supportdesk.webhooks import delivery, repository
from supportdesk.webhooks.resource import WEBHOOKS
from supportdesk.webhooks.schemas import TEST_EVENT, WebhookCreate, WebhookUpdate

# how long the secret replaced by a rotation keeps signing
ROTATION_OVERLAP = timedelta(hours=24)


def public(row: Row) -> dict[str, Any]:
    """An endpoint row as the API shows it: `events` as a list, `enabled` a boolean (SQLite
    stores it as 0 or 1)."""
    return {**row, "events": orjson.loads(row["events"]), "enabled": bool(row["enabled"])}


def pending(webhook_id: int, event_id: int, event: str, attempt: int, due: str) -> dict[str, Any]:
    """A delivery row waiting for its attempt."""
    return {
        "webhook_id": webhook_id,
        "event_id": event_id,
        "event": event,
        "attempt": attempt,
        "state": repository.PENDING,
        "next_attempt_at": due,
        "created_at": timestamps.now(),
    }


async def get_or_raise(conn: Conn, webhook_id: int, *, for_update: bool = False) -> Row:
    row = await repository.get(conn, webhook_id, for_update=for_update)
    if row is None:
        raise ResourceNotFound("webhooks", webhook_id)
    return row


async def _check_url(settings: Settings, url: str) -> None:
    """The host must resolve, and to public addresses unless private ones are allowed. Runs
    before the transaction: a DNS answer can take a while, and a transaction never waits."""
    try:
        await delivery.resolve(url, settings.webhook_allow_private)
    except delivery.Refused as exc:
        raise ValidationFailed.field("url", f"The url field is refused: {exc}.") from None


async def list_webhooks(db: Database, query: ListQuery) -> tuple[list[dict[str, Any]], int]:
    async with db.read() as conn:
        rows, total = await repository.page(conn, query)
    return [public(row) for row in rows], total


async def get_webhook(db: Database, webhook_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        return public(await get_or_raise(conn, webhook_id))


async def create_webhook(db: Database, settings: Settings, data: WebhookCreate) -> dict[str, Any]:
    """A new endpoint with its `secret` (returned this once, never shown again). It receives the
    events that commit after it: its cursor starts at the newest event."""
    assert data.url is not None and data.events is not None
    await _check_url(settings, data.url)
    secret = delivery.new_secret()
    now = timestamps.now()
    values: dict[str, Any] = {
        "url": data.url,
        "events": orjson.dumps(data.events).decode(),
        "description": data.description,
        "enabled": data.enabled is not False,
        "secret": secret,
        "created_at": now,
        "updated_at": now,
    }
    async with db.transaction() as conn:
        values["event_cursor"] = await log.newest_id(conn)
        webhook_id = await repository.writer.insert(conn, values)
        return {**public(await get_or_raise(conn, webhook_id)), "secret": secret}


async def update_webhook(
    db: Database,
    settings: Settings,
    webhook_id: int,
    data: WebhookUpdate,
    precondition: Precondition | None = None,
) -> dict[str, Any]:
    """Only the fields sent change. Enabling an endpoint again clears why it was disabled and
    its failure streak, and it resumes with its queue and the events after now (none of those
    it missed while disabled). The `precondition` (a conditional request's) runs on the
    locked endpoint, as the API shows it, before anything changes."""
    sent = {name: getattr(data, name) for name in data.model_fields_set}
    # null clears the description; `enabled: null` changes nothing (the schema refuses a null
    # url or events)
    values = {
        name: value for name, value in sent.items() if value is not None or name == "description"
    }
    if "url" in values:
        await _check_url(settings, values["url"])
    if "events" in values:
        values["events"] = orjson.dumps(values["events"]).decode()
    async with db.transaction() as conn:
        current = await get_or_raise(conn, webhook_id, for_update=True)
        if precondition is not None:
            await precondition(conn, public(current))
        changed = {name: value for name, value in values.items() if value != current[name]}
        if changed.get("enabled") is True:
            changed.update(
                disabled_reason=None, failing_since=None, event_cursor=await log.newest_id(conn)
            )
        if changed:
            changed["updated_at"] = timestamps.now()
            await repository.writer.update(conn, webhook_id, changed)
            await repository.sync_heads(conn, [webhook_id])
        return public(await get_or_raise(conn, webhook_id))


async def delete_webhook(
    db: Database, webhook_id: int, precondition: Precondition | None = None
) -> None:
    """The endpoint and its delivery log."""
    async with db.transaction() as conn:
        current = await get_or_raise(conn, webhook_id, for_update=True)
        if precondition is not None:
            await precondition(conn, public(current))
        await repository.writer.delete(conn, webhook_id)


async def rotate_secret(db: Database, webhook_id: int) -> dict[str, Any]:
    """The endpoint with a new `secret` (returned this once); the one it replaces keeps signing
    for 24 hours, so receivers can switch without losing a delivery. A second rotation within
    them drops the oldest secret."""
    secret = delivery.new_secret()
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        await get_or_raise(conn, webhook_id, for_update=True)
        current = await repository.signing(conn, webhook_id)
        assert current is not None
        values = {
            "secret": secret,
            "previous_secret": current["secret"],
            "previous_secret_expires_at": timestamps.to_text(now + ROTATION_OVERLAP),
            "updated_at": timestamps.to_text(now),
        }
        await repository.writer.update(conn, webhook_id, values)
        return {**public(await get_or_raise(conn, webhook_id)), "secret": secret}


async def _enabled_or_conflict(conn: Conn, webhook_id: int, action: str) -> Row:
    row = await get_or_raise(conn, webhook_id, for_update=True)
    if not row["enabled"]:
        raise Conflict(f"The webhook is disabled: enable it (PATCH enabled: true) to {action}.")
    return row


async def send_test(db: Database, actor: Actor, webhook_id: int) -> Row:
    """Record a `webhook.test` event (so the delivery has an event id like any other) and queue
    it for this endpoint only; the fan-out never offers `webhook.test` to an endpoint. Like any
    event it goes out after the endpoint's older ones. Returns the pending delivery. 409 while
    the endpoint is disabled: nothing would be sent."""
    async with db.transaction() as conn:
        row = await _enabled_or_conflict(conn, webhook_id, "send a test")
        data = log.attributes(WEBHOOKS, public(row))
        await log.record(conn, actor, [Event(TEST_EVENT, WEBHOOKS.type, webhook_id, data)])
        # the event just appended: appends hold the log's append lock until they commit
        event_id = await log.newest_id(conn)
        values = pending(webhook_id, event_id, TEST_EVENT, 1, timestamps.now())
        delivery_id = await repository.delivery_writer.insert(conn, values)
        await repository.sync_heads(conn, [webhook_id])
        return await _delivery_or_raise(conn, webhook_id, delivery_id)


async def _delivery_or_raise(conn: Conn, webhook_id: int, delivery_id: int) -> Row:
    row = await repository.delivery(conn, webhook_id, delivery_id)
    if row is None:
        raise ResourceNotFound("webhook_deliveries", delivery_id)
    return row


async def retry_delivery(db: Database, webhook_id: int, delivery_id: int) -> Row:
    """Make the delivery's event due now: its pending attempt if it has one, else a new
    attempt (one more try; a failure does not restart the schedule). It still waits for any
    older event of the endpoint's queue. Returns the pending attempt."""
    async with db.transaction() as conn:
        await _enabled_or_conflict(conn, webhook_id, "retry a delivery")
        found = await _delivery_or_raise(conn, webhook_id, delivery_id)
        now = timestamps.now()
        waiting = await repository.pending_for_event(conn, webhook_id, found["event_id"])
        if waiting is not None:
            retry_id: int = waiting["id"]
            await repository.delivery_writer.update(conn, retry_id, {"next_attempt_at": now})
        else:
            attempt = await repository.last_attempt(conn, webhook_id, found["event_id"]) + 1
            values = pending(webhook_id, found["event_id"], found["event"], attempt, now)
            retry_id = await repository.delivery_writer.insert(conn, values)
        await repository.sync_heads(conn, [webhook_id])
        return await _delivery_or_raise(conn, webhook_id, retry_id)


async def list_deliveries(db: Database, webhook_id: int, query: ListQuery) -> tuple[list[Row], int]:
    """Every attempt of the endpoint's deliveries, newest first unless `sort=id`."""
    scoped = replace(
        query,
        filters={"webhook_id": (webhook_id,)},
        sort=query.sort or (SortKey("id", descending=True),),
    )
    async with db.read() as conn:
        rows, total = await repository.delivery_page(conn, scoped)
        if total == 0:
            await get_or_raise(conn, webhook_id)
    return rows, total
