"""What the pages show, read through the services in one read each: a ticket with its thread,
and the attachments a visitor may download."""

from __future__ import annotations

from dataclasses import dataclass

from supportdesk.db import Database, Row
from supportdesk.errors import ResourceNotFound
from supportdesk.ticket_attachments import repository as attachments
from supportdesk.ticket_messages import repository as messages
from supportdesk.tickets import service as tickets
from supportdesk.users import service as users

# shown in the thread rather than only linked (never SVG, which can carry script)
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Entry:
    """One message of a thread, with its author and files."""

    message: Row
    author: Row | None  # None: the user was deleted
    files: list[Row]

    @property
    def by_staff(self) -> bool:
        return self.author is not None and self.author["role_id"] is not None

    @property
    def images(self) -> list[Row]:
        return [f for f in self.files if f["mime_type"] in INLINE_IMAGES]


@dataclass(frozen=True)
class TicketView:
    ticket: Row
    thread: list[Entry]
    owner: Row | None
    assignee: Row | None


async def ticket_view(db: Database, ticket_id: int, *, owner_id: int | None = None) -> TicketView:
    """The ticket and its thread, oldest first. With `owner_id` (the portal): only that
    customer's ticket (any other is 404, as if it did not exist) and only its public messages."""
    async with db.read() as conn:
        found = await tickets.tickets_by_ids(conn, [ticket_id])
        if not found or (owner_id is not None and found[0]["user_id"] != owner_id):
            raise ResourceNotFound("tickets", ticket_id)
        ticket = found[0]
        rows = await messages.by_ticket_ids(conn, [ticket_id])
        if owner_id is not None:
            rows = [row for row in rows if not row["internal"]]
        files: dict[int, list[Row]] = {}
        for row in await attachments.by_message_ids(conn, [m["id"] for m in rows]):
            files.setdefault(row["message_id"], []).append(row)
        wanted = {m["user_id"] for m in rows} | {ticket["user_id"]}
        if ticket["assigned_to"] is not None:
            wanted.add(ticket["assigned_to"])
        people = {u["id"]: u for u in await users.users_by_ids(conn, sorted(wanted))}
    thread = [Entry(m, people.get(m["user_id"]), files.get(m["id"], [])) for m in rows]
    assignee = people.get(ticket["assigned_to"]) if ticket["assigned_to"] is not None else None
    return TicketView(ticket, thread, people.get(ticket["user_id"]), assignee)


async def attachment_for(db: Database, attachment_id: int, *, owner_id: int | None) -> Row:
    """The attachment row, if the visitor may have it: staff (`owner_id` None) any; a customer
    only a file of a public message on their own ticket (anything else is 404)."""
    async with db.read() as conn:
        row = await attachments.get(conn, attachment_id)
        if row is not None and owner_id is not None:
            message = await messages.get(conn, row["message_id"])
            found = (
                []
                if message is None
                else await tickets.tickets_by_ids(conn, [message["ticket_id"]])
            )
            if (
                message is None
                or message["internal"]
                or not found
                or found[0]["user_id"] != owner_id
            ):
                row = None
    if row is None:
        raise ResourceNotFound("ticket_attachments", attachment_id)
    return row
