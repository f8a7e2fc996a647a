"""All queries on tickets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)

from supportdesk.db import Conn, Row
from supportdesk.db.listing import (
    AnyOf,
    Compare,
    FullText,
    InLookup,
    Lister,
    Listing,
    Present,
    Substring,
)
from supportdesk.db.writes import Writer
from supportdesk.queries import ListQuery
from supportdesk.tables import meta, ticket_messages, tickets
from supportdesk.tables.tickets import METRIC_TIMESTAMPS

_GET = select(tickets).where(tickets.c.id == bindparam("ticket_id"))
# Row lock on PostgreSQL for read-modify-write; SQLite's write transaction already excludes
# every other writer (and SQLAlchemy leaves FOR UPDATE out there).
_GET_FOR_UPDATE = _GET.with_for_update()
_by_ids = InLookup(lambda where: select(tickets).where(where).order_by(tickets.c.id), tickets.c.id)
_by_user_ids = InLookup(
    lambda where: select(tickets).where(where).order_by(tickets.c.user_id, tickets.c.id),
    tickets.c.user_id,
)


def _locking(column: ColumnElement[Any]) -> InLookup:
    """The tickets whose `column` is among some values, locked in id order, so two writers
    locking overlapping sets never deadlock."""
    return InLookup(
        lambda where: select(tickets).where(where).order_by(tickets.c.id).with_for_update(),
        column,
    )


_lock_by_ids = _locking(tickets.c.id)
_merged_into = _locking(tickets.c.merged_into)
_CLOSE_STALE = (
    update(tickets)
    .where(tickets.c.status == bindparam("stale_status"))
    .where(tickets.c.updated_at < bindparam("older_than"))
    .values(
        status=bindparam("closed_status"),
        status_rank=bindparam("closed_rank"),
        updated_at=bindparam("now"),
        resolved_at=bindparam("now"),
    )
    .returning(*tickets.c)
)


_m = ticket_messages.alias("m")
_PUBLIC = _m.c.internal.is_(False)
_STAFF = _m.c.user_id != tickets.c.user_id
_CUSTOMER = _m.c.user_id == tickets.c.user_id


def _messages(aggregate: ColumnElement[Any], *where: ColumnElement[bool]) -> ScalarSelect[Any]:
    """An aggregate over the ticket's messages, correlated to the row being updated."""
    return select(aggregate).where(_m.c.ticket_id == tickets.c.id, *where).scalar_subquery()


# The message metrics of SPEC 12 computed from scratch: notes count as messages but not as
# answers; the owner's public messages are the customer's, anyone else's are staff answers.
_RECOMPUTE = (
    update(tickets)
    .where(tickets.c.id == bindparam("ticket_id"))
    .values(
        message_count=_messages(func.count()),
        first_response_at=_messages(func.min(_m.c.created_at), _PUBLIC, _STAFF),
        last_staff_message_at=_messages(func.max(_m.c.created_at), _PUBLIC, _STAFF),
        last_customer_message_at=_messages(func.max(_m.c.created_at), _PUBLIC, _CUSTOMER),
    )
)
# INSERT / UPDATE / DELETE by id
writer = Writer(tickets)

_FILTERS = {
    "id": AnyOf(tickets.c.id),
    "user_id": AnyOf(tickets.c.user_id),
    "status": AnyOf(tickets.c.status),
    "priority": AnyOf(tickets.c.priority),
    "department": AnyOf(tickets.c.department),
    "assigned_to": AnyOf(tickets.c.assigned_to),
    "service_id": AnyOf(tickets.c.service_id),
    "subject": Substring(tickets.c.id, tickets.c.subject),
    "search": FullText(tickets.c.id),
    "created_after": Compare(tickets.c.created_at, "ge"),
    "created_before": Compare(tickets.c.created_at, "lt"),
    "updated_after": Compare(tickets.c.updated_at, "ge"),
    "updated_before": Compare(tickets.c.updated_at, "lt"),
    "first_response_at": Present(tickets.c.first_response_at),
    "merged_into": AnyOf(tickets.c.merged_into),
}


# the list queries (public for the query-plan checks and the benchmark's baseline)
lister = Lister(
    Listing(
        table=tickets,
        filters=_FILTERS,
        sorts={
            "id": tickets.c.id,
            "created_at": tickets.c.created_at,
            "updated_at": tickets.c.updated_at,
            # the configured orders, through the stored ranks (see `rank_values`)
            "status": tickets.c.status_rank,
            "priority": tickets.c.priority_rank,
            "department": tickets.c.department,
            "subject": tickets.c.subject,
            **{name: tickets.c[name] for name in (*METRIC_TIMESTAMPS, "message_count")},
        },
        counted_table="tickets",
        counted=frozenset({"status"}),
    )
)
_RANK_ORDERS = select(meta.c.value).where(meta.c.key == "ticket_rank_orders")


def _rank(column: ColumnElement[str], order: Sequence[str]) -> ColumnElement[int]:
    return case({value: i for i, value in enumerate(order)}, value=column, else_=len(order))


def rank(value: str, order: Sequence[str]) -> int:
    """A value's position in its configured order; unknown values sort last."""
    return order.index(value) if value in order else len(order)


async def get(conn: Conn, ticket_id: int, *, for_update: bool = False) -> Row | None:
    statement = _GET_FOR_UPDATE if for_update else _GET
    return await conn.fetch_one(statement, {"ticket_id": ticket_id})


async def page(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await lister.page(conn, query)


async def by_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    return await _by_ids.fetch(conn, ticket_ids)


async def lock_many(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    """These tickets (those that exist), locked until the transaction ends, in id order."""
    return await _lock_by_ids.fetch(conn, ticket_ids)


async def release_sources(conn: Conn, target_ids: Sequence[int], now: str) -> list[tuple[Row, Row]]:
    """Clear `merged_into` on the tickets merged into these (about to be deleted), so they can
    take messages and merges again; returns each as (before, after)."""
    changed: list[tuple[Row, Row]] = []
    for source in await _merged_into.fetch(conn, target_ids):
        values = {"merged_into": None, "updated_at": now}
        await writer.update(conn, source["id"], values)
        changed.append((source, {**source, **values}))
    return changed


async def recompute_metrics(conn: Conn, ticket_ids: Sequence[int]) -> None:
    """Recompute the message metrics of these tickets from their messages (a few tickets at a
    time: a merge's, a deleted message's)."""
    for ticket_id in ticket_ids:
        await conn.execute(_RECOMPUTE, {"ticket_id": ticket_id})


async def by_user_ids(conn: Conn, user_ids: Sequence[int]) -> list[Row]:
    return await _by_user_ids.fetch(conn, user_ids)


async def close_stale(
    conn: Conn, stale_status: str, closed_status: str, closed_rank: int, older_than: str, now: str
) -> list[Row]:
    params = {
        "stale_status": stale_status,
        "closed_status": closed_status,
        "closed_rank": closed_rank,
        "older_than": older_than,
        "now": now,
    }
    return await conn.fetch_all(_CLOSE_STALE, params)


async def rank_orders(conn: Conn) -> str | None:
    """The orders the stored ranks were computed with (a JSON text), if any."""
    value: str | None = await conn.fetch_value(_RANK_ORDERS)
    return value


async def rerank(
    conn: Conn, statuses: Sequence[str], priorities: Sequence[str], orders: str
) -> None:
    """Recompute every ticket's ranks for new configured orders and record them."""
    await conn.execute(
        update(tickets).values(
            status_rank=_rank(tickets.c.status, statuses),
            priority_rank=_rank(tickets.c.priority, priorities),
        )
    )
    await conn.execute(delete(meta).where(meta.c.key == "ticket_rank_orders"))
    await conn.execute(insert(meta).values(key="ticket_rank_orders", value=orders))


_IDS_OF_USER = (
    select(tickets.c.id)
    .where(tickets.c.user_id == bindparam("user_id"))
    .order_by(tickets.c.id.desc())
    .limit(bindparam("limit"))
)


async def ids_of_user(conn: Conn, user_id: int, limit: int) -> list[int]:
    """The ids of the customer's newest tickets."""
    rows = await conn.fetch_all(_IDS_OF_USER, {"user_id": user_id, "limit": limit})
    return [row["id"] for row in rows]
