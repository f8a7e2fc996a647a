"""All queries on ticket messages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select, update

from supportdesk.db import Conn, Row
from supportdesk.db.listing import AnyOf, Compare, InLookup, Lister, Listing
from supportdesk.db.writes import Writer
from supportdesk.queries import ListQuery
from supportdesk.tables import ticket_messages, tickets

# INSERT / UPDATE / DELETE by id
writer = Writer(ticket_messages)

_GET = select(ticket_messages).where(ticket_messages.c.id == bindparam("message_id"))
# Row lock on PostgreSQL for read-modify-write (SQLite's write transaction already excludes
# every other writer). FOR NO KEY UPDATE: it serialises our writers of the message (which all
# take it) without blocking the foreign-key checks of attachments being added to it.
_GET_FOR_UPDATE = _GET.with_for_update(key_share=True)
_order = (ticket_messages.c.ticket_id, ticket_messages.c.id)
_by_ticket_ids = InLookup(
    lambda where: select(ticket_messages).where(where).order_by(*_order),
    ticket_messages.c.ticket_id,
)
_ids_by_ticket_ids = InLookup(
    lambda where: (
        select(ticket_messages.c.id, ticket_messages.c.ticket_id).where(where).order_by(*_order)
    ),
    ticket_messages.c.ticket_id,
)
# what a user's forced deletion takes from other people's tickets
_BY_AUTHOR_ELSEWHERE = (
    select(ticket_messages)
    .join(tickets, tickets.c.id == ticket_messages.c.ticket_id)
    .where(ticket_messages.c.user_id == bindparam("user_id"))
    .where(tickets.c.user_id != bindparam("user_id"))
    .order_by(ticket_messages.c.id)
)
_MOVE = (
    update(ticket_messages)
    .where(ticket_messages.c.ticket_id == bindparam("from_ticket"))
    .values(ticket_id=bindparam("to_ticket"), updated_at=bindparam("now"))
)
# the list queries (public for the query-plan checks and the benchmark's baseline)
lister = Lister(
    Listing(
        table=ticket_messages,
        filters={
            "id": AnyOf(ticket_messages.c.id),
            "ticket_id": AnyOf(ticket_messages.c.ticket_id),
            "user_id": AnyOf(ticket_messages.c.user_id),
            "internal": AnyOf(ticket_messages.c.internal),
            "created_after": Compare(ticket_messages.c.created_at, "ge"),
            "created_before": Compare(ticket_messages.c.created_at, "lt"),
        },
        sorts={
            "id": ticket_messages.c.id,
            "created_at": ticket_messages.c.created_at,
            "updated_at": ticket_messages.c.updated_at,
        },
    )
)


async def get(conn: Conn, message_id: int, *, for_update: bool = False) -> Row | None:
    statement = _GET_FOR_UPDATE if for_update else _GET
    return await conn.fetch_one(statement, {"message_id": message_id})


async def page(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await lister.page(conn, query)


async def by_ticket_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    """The messages of these tickets, each ticket's oldest first."""
    return await _by_ticket_ids.fetch(conn, ticket_ids)


async def ids_by_ticket_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    """`id` and `ticket_id` of these tickets' messages (linkage without the bodies)."""
    return await _ids_by_ticket_ids.fetch(conn, ticket_ids)


async def move(conn: Conn, from_ticket_id: int, to_ticket_id: int, now: str) -> None:
    """Move a ticket's messages to another ticket (a merge)."""
    await conn.execute(
        _MOVE, {"from_ticket": from_ticket_id, "to_ticket": to_ticket_id, "now": now}
    )


async def by_author_elsewhere(conn: Conn, user_id: int) -> list[Row]:
    """The user's messages on tickets the user does not own."""
    return await conn.fetch_all(_BY_AUTHOR_ELSEWHERE, {"user_id": user_id})
