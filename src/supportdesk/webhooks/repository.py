"""All queries on webhook endpoints and their delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select, update

from supportdesk.db import Conn, Row
from supportdesk.db.listing import AnyOf, Lister, Listing
from supportdesk.db.writes import Writer
from supportdesk.queries import ListQuery
from supportdesk.tables import webhook_deliveries as deliveries
from supportdesk.tables import webhooks

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

# Every column but the signing secrets, which only the dispatcher and a rotation read.
PUBLIC = [c for c in webhooks.columns if c.name not in ("secret", "previous_secret")]
_GET = select(*PUBLIC).where(webhooks.c.id == bindparam("webhook_id"))
# Row lock on PostgreSQL: every transaction that changes an endpoint's queue takes it first, so
# they apply one after the other and each sees the others' committed rows.
_GET_FOR_UPDATE = _GET.with_for_update()
_SIGNING = select(webhooks).where(webhooks.c.id == bindparam("webhook_id"))
_SUBSCRIBED = (
    select(webhooks.c.id, webhooks.c.events, webhooks.c.event_cursor)
    .where(webhooks.c.enabled)
    .order_by(webhooks.c.id)
    .with_for_update()
)
_OLDEST_CURSOR = select(func.min(webhooks.c.event_cursor)).where(webhooks.c.enabled)
_ADVANCE = (
    update(webhooks)
    .where(webhooks.c.enabled, webhooks.c.event_cursor < bindparam("cursor"))
    .values(event_cursor=bindparam("cursor"))
)
# The due time of an endpoint's queue head (its pending delivery of the oldest event), kept on
# the endpoint so the dispatcher finds due endpoints through one index; NULL while disabled.
_HEAD_DUE = (
    select(deliveries.c.next_attempt_at)
    .where(deliveries.c.webhook_id == webhooks.c.id, deliveries.c.state == PENDING)
    .order_by(deliveries.c.event_id)
    .limit(1)
    .scalar_subquery()
)
_SYNC_HEAD = (
    update(webhooks)
    .where(webhooks.c.id == bindparam("webhook_id"))
    .values(next_attempt_at=case((webhooks.c.enabled, _HEAD_DUE), else_=None))
)
_DUE = (
    select(webhooks.c.id)
    .where(webhooks.c.next_attempt_at <= bindparam("now"))
    .order_by(webhooks.c.next_attempt_at)
    .limit(bindparam("limit"))
)
_lister = Lister(Listing(table=webhooks, columns=PUBLIC, filters={}, sorts={"id": webhooks.c.id}))
writer = Writer(webhooks)

_QUEUE_COLUMNS = ("webhook_id", "event_id", "event", "attempt", "state", "next_attempt_at")
_ENQUEUE = insert(deliveries).values(
    {name: bindparam(name) for name in (*_QUEUE_COLUMNS, "created_at")}
)
_QUEUE = (
    select(deliveries)
    .where(deliveries.c.webhook_id == bindparam("webhook_id"), deliveries.c.state == PENDING)
    .order_by(deliveries.c.event_id)
    .limit(bindparam("limit"))
)
_DELIVERY = select(deliveries).where(
    deliveries.c.id == bindparam("delivery_id"),
    deliveries.c.webhook_id == bindparam("webhook_id"),
)
_PENDING_FOR_EVENT = select(deliveries).where(
    deliveries.c.webhook_id == bindparam("webhook_id"),
    deliveries.c.event_id == bindparam("event_id"),
    deliveries.c.state == PENDING,
)
_LAST_ATTEMPT = select(func.max(deliveries.c.attempt)).where(
    deliveries.c.webhook_id == bindparam("webhook_id"),
    deliveries.c.event_id == bindparam("event_id"),
)
_RESULT_COLUMNS = (
    "state",
    "attempted_at",
    "status_code",
    "duration_ms",
    "error",
    "next_attempt_at",
)
deliveries_lister = Lister(
    Listing(
        table=deliveries,
        filters={"webhook_id": AnyOf(deliveries.c.webhook_id)},
        sorts={"id": deliveries.c.id},
    )
)
delivery_writer = Writer(deliveries)


async def get(conn: Conn, webhook_id: int, *, for_update: bool = False) -> Row | None:
    statement = _GET_FOR_UPDATE if for_update else _GET
    return await conn.fetch_one(statement, {"webhook_id": webhook_id})


async def signing(conn: Conn, webhook_id: int) -> Row | None:
    """The endpoint with its secrets."""
    return await conn.fetch_one(_SIGNING, {"webhook_id": webhook_id})


async def page(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await _lister.page(conn, query)


async def subscribed(conn: Conn) -> list[Row]:
    """The enabled endpoints' patterns and cursors, locked until the transaction ends."""
    return await conn.fetch_all(_SUBSCRIBED)


async def oldest_cursor(conn: Conn) -> int | None:
    """The least cursor of the enabled endpoints; None when there is none."""
    value: int | None = await conn.fetch_value(_OLDEST_CURSOR)
    return value


async def advance(conn: Conn, cursor: int) -> None:
    """Every enabled endpoint has now been offered the events up to `cursor`."""
    await conn.execute(_ADVANCE, {"cursor": cursor})


async def sync_heads(conn: Conn, webhook_ids: Sequence[int]) -> None:
    """Recompute when each endpoint's queue head is due (after anything changed its queue or
    its `enabled`)."""
    if webhook_ids:
        await conn.execute_many(_SYNC_HEAD, [{"webhook_id": i} for i in webhook_ids])


async def due(conn: Conn, now: str, limit: int) -> list[int]:
    """Endpoints whose queue head is due, the longest waiting first."""
    rows = await conn.fetch_all(_DUE, {"now": now, "limit": limit})
    return [row["id"] for row in rows]


async def enqueue(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Insert pending deliveries (`_QUEUE_COLUMNS` and `created_at` each)."""
    if rows:
        await conn.execute_many(_ENQUEUE, rows)


async def queue(conn: Conn, webhook_id: int, limit: int) -> list[Row]:
    """The endpoint's pending deliveries in event order, from its head."""
    return await conn.fetch_all(_QUEUE, {"webhook_id": webhook_id, "limit": limit})


async def record_results(conn: Conn, results: Sequence[dict[str, Any]]) -> None:
    """Finish attempts: each dict holds the delivery's `id` and its `_RESULT_COLUMNS`."""
    if not results:
        return
    statement = delivery_writer.update_statement(tuple(sorted(_RESULT_COLUMNS)))
    params = [
        {"row_id": result["id"], **{f"v_{name}": result[name] for name in _RESULT_COLUMNS}}
        for result in results
    ]
    await conn.execute_many(statement, params)


async def delivery(conn: Conn, webhook_id: int, delivery_id: int) -> Row | None:
    return await conn.fetch_one(_DELIVERY, {"webhook_id": webhook_id, "delivery_id": delivery_id})


async def pending_for_event(conn: Conn, webhook_id: int, event_id: int) -> Row | None:
    return await conn.fetch_one(
        _PENDING_FOR_EVENT, {"webhook_id": webhook_id, "event_id": event_id}
    )


async def last_attempt(conn: Conn, webhook_id: int, event_id: int) -> int:
    value: int | None = await conn.fetch_value(
        _LAST_ATTEMPT, {"webhook_id": webhook_id, "event_id": event_id}
    )
    return value or 0


async def delivery_page(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await deliveries_lister.page(conn, query)
