"""All queries on ticket messages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from supportdesk.db import Conn, Row
from supportdesk.db.listing import InLookup
from supportdesk.db.writes import Writer
from supportdesk.tables import ticket_messages

# INSERT / UPDATE / DELETE by id
writer = Writer(ticket_messages)
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


async def by_ticket_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    """The messages of these tickets, each ticket's oldest first."""
    return await _by_ticket_ids.fetch(conn, ticket_ids)


async def ids_by_ticket_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    """`id` and `ticket_id` of these tickets' messages (linkage without the bodies)."""
    return await _ids_by_ticket_ids.fetch(conn, ticket_ids)
