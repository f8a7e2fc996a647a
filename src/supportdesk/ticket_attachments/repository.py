"""All queries on ticket attachments."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select

from supportdesk.db import Conn, Row
from supportdesk.db.listing import InLookup
from supportdesk.db.writes import Writer
from supportdesk.tables import ticket_attachments, ticket_messages, tickets

# INSERT / UPDATE / DELETE by id
writer = Writer(ticket_attachments)

_GET = select(ticket_attachments).where(ticket_attachments.c.id == bindparam("attachment_id"))
_by_message_ids = InLookup(
    lambda where: (
        select(ticket_attachments)
        .where(where)
        .order_by(ticket_attachments.c.message_id, ticket_attachments.c.id)
    ),
    ticket_attachments.c.message_id,
)
_committed = InLookup(
    lambda where: select(ticket_attachments.c.stored_name).where(where),
    ticket_attachments.c.stored_name,
)
_STORED = ticket_attachments.c.stored_name
_OF_MESSAGE = select(_STORED).where(ticket_attachments.c.message_id == bindparam("message_id"))
_OF_TICKET = (
    select(_STORED)
    .join(ticket_messages, ticket_messages.c.id == ticket_attachments.c.message_id)
    .where(ticket_messages.c.ticket_id == bindparam("ticket_id"))
)
# Everything a user's deletion cascades to: messages they wrote and messages on their tickets.
_OF_USER = (
    select(_STORED)
    .join(ticket_messages, ticket_messages.c.id == ticket_attachments.c.message_id)
    .join(tickets, tickets.c.id == ticket_messages.c.ticket_id)
    .where(
        (ticket_messages.c.user_id == bindparam("user_id"))
        | (tickets.c.user_id == bindparam("user_id"))
    )
)


async def get(conn: Conn, attachment_id: int) -> Row | None:
    return await conn.fetch_one(_GET, {"attachment_id": attachment_id})


async def by_message_ids(conn: Conn, message_ids: Sequence[int]) -> list[Row]:
    return await _by_message_ids.fetch(conn, message_ids)


async def committed(conn: Conn, stored_names: Sequence[str]) -> set[str]:
    rows = await _committed.fetch(conn, stored_names)
    return {row["stored_name"] for row in rows}


async def stored_names_of_message(conn: Conn, message_id: int) -> list[str]:
    return [r["stored_name"] for r in await conn.fetch_all(_OF_MESSAGE, {"message_id": message_id})]


async def stored_names_of_ticket(conn: Conn, ticket_id: int) -> list[str]:
    return [r["stored_name"] for r in await conn.fetch_all(_OF_TICKET, {"ticket_id": ticket_id})]


async def stored_names_of_user(conn: Conn, user_id: int) -> list[str]:
    return [r["stored_name"] for r in await conn.fetch_all(_OF_USER, {"user_id": user_id})]
