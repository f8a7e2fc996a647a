"""Ticket messages as other resources see them (the `messages` relationship of tickets)."""

from __future__ import annotations

from collections.abc import Sequence

from supportdesk.db import Conn
from supportdesk.jsonapi.document import Related
from supportdesk.ticket_messages import repository
from supportdesk.ticket_messages.resource import TICKET_MESSAGES


async def load_for_tickets(
    conn: Conn, related: Related, ticket_ids: Sequence[int], *, include: bool
) -> None:
    """Fill the `messages` linkage of these tickets, and `included` when asked to."""
    linkage: dict[int, list[int]] = {ticket_id: [] for ticket_id in ticket_ids}
    if include:
        rows = await repository.by_ticket_ids(conn, ticket_ids)
        related.included.extend((TICKET_MESSAGES, row) for row in rows)
    else:
        rows = await repository.ids_by_ticket_ids(conn, ticket_ids)
    for row in rows:
        linkage[row["ticket_id"]].append(row["id"])
    related.many["messages"] = linkage
