"""All queries on the event log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, func, insert, or_, select

from supportdesk.db import Conn, Row
from supportdesk.db.listing import AnyOf, InLookup, Lister, Listing
from supportdesk.queries import ListQuery
from supportdesk.tables import events

# An arbitrary constant naming the advisory lock that orders event appends on PostgreSQL.
APPEND_LOCK_KEY = 0x5D_E7E7


_COLUMNS = (
    "event",
    "occurred_at",
    "actor_type",
    "actor_id",
    "resource_type",
    "resource_id",
    "ticket_id",
    "data",
    "changes",
)
_INSERT = insert(events).values({name: bindparam(name) for name in _COLUMNS})
# PostgreSQL: the same INSERT, taking the append lock first, in one statement (one round trip:
# the lock is held until the commit, and every round trip while it is held is one that the
# appends of all instances wait for). SQLite's write transaction already excludes every other
# writer.
_LOCKED_INSERT = insert(events).from_select(
    list(_COLUMNS),
    select(*(bindparam(name, type_=events.c[name].type) for name in _COLUMNS)).select_from(
        func.pg_advisory_xact_lock(APPEND_LOCK_KEY)
    ),
)
_NEWEST = select(func.max(events.c.id))
_PRUNE = delete(events).where(
    events.c.id.in_(
        select(events.c.id)
        .where(events.c.occurred_at < bindparam("older_than"))
        .limit(bindparam("limit"))
    )
)

history_lister = Lister(
    Listing(
        table=events, filters={"ticket_id": AnyOf(events.c.ticket_id)}, sorts={"id": events.c.id}
    )
)
_by_ids = InLookup(lambda where: select(events).where(where).order_by(events.c.id), events.c.id)
_feed_cache: dict[tuple[int, int, int], Select[Any]] = {}


async def append(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Append events in the caller's transaction.

    No gaps (SPEC 9): PostgreSQL hands out sequence values before commit, so without care a
    transaction could commit id 10 after a reader had already moved past id 11. Appends take a
    transaction-scoped advisory lock first, so ids are drawn and committed in one order: when a
    reader sees id N, every smaller id has committed or rolled back."""
    await conn.execute_many(_LOCKED_INSERT if conn.dialect == "postgresql" else _INSERT, rows)


def _feed_statement(names: int, prefixes: int, tickets: int) -> Select[Any]:
    shape = (names, prefixes, tickets)
    statement = _feed_cache.get(shape)
    if statement is None:
        where: list[ColumnElement[bool]] = [events.c.id > bindparam("after")]
        kinds: list[ColumnElement[bool]] = []
        if names:
            kinds.append(events.c.event.in_([bindparam(f"name_{i}") for i in range(names)]))
        kinds.extend(
            events.c.event.like(bindparam(f"prefix_{i}"), escape="\\") for i in range(prefixes)
        )
        if kinds:
            where.append(or_(*kinds))
        if tickets:
            where.append(events.c.ticket_id.in_([bindparam(f"ticket_{i}") for i in range(tickets)]))
        statement = _feed_cache[shape] = (
            select(events).where(*where).order_by(events.c.id).limit(bindparam("limit"))
        )
    return statement


async def after(
    conn: Conn,
    cursor: int,
    limit: int,
    names: Sequence[str] = (),
    prefixes: Sequence[str] = (),
    ticket_ids: Sequence[int] = (),
) -> list[Row]:
    """Events after the cursor, oldest first; `prefixes` are `ticket.`-style name prefixes."""
    statement = _feed_statement(len(names), len(prefixes), len(ticket_ids))
    params: dict[str, Any] = {"after": cursor, "limit": limit}
    params.update({f"name_{i}": name for i, name in enumerate(names)})
    params.update(
        {f"prefix_{i}": prefix.replace("_", "\\_") + "%" for i, prefix in enumerate(prefixes)}
    )
    params.update({f"ticket_{i}": ticket_id for i, ticket_id in enumerate(ticket_ids)})
    return await conn.fetch_all(statement, params)


async def by_ids(conn: Conn, event_ids: Sequence[int]) -> list[Row]:
    return await _by_ids.fetch(conn, event_ids)


async def history(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await history_lister.page(conn, query)


async def newest_id(conn: Conn) -> int:
    value: int | None = await conn.fetch_value(_NEWEST)
    return value or 0


async def prune(conn: Conn, older_than: str, limit: int) -> int:
    """Delete up to `limit` events that occurred before `older_than`; returns how many."""
    return await conn.execute(_PRUNE, {"older_than": older_than, "limit": limit})
