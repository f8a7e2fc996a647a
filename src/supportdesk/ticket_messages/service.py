"""Ticket messages: the conversation, and the workflow each new message drives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import UploadFile

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Precondition, Row
from supportdesk.errors import ResourceNotFound, ValidationFailed
from supportdesk.events import log
from supportdesk.events.log import Actor, Event
from supportdesk.jsonapi.document import Related
from supportdesk.queries import ListQuery, ResourceQuery
from supportdesk.ticket_attachments import service as attachments
from supportdesk.ticket_attachments.storage import Storage
from supportdesk.ticket_messages import repository
from supportdesk.ticket_messages.resource import TICKET_MESSAGES
from supportdesk.ticket_messages.schemas import MessageCreate, MessageUpdate
from supportdesk.tickets import service as tickets_service
from supportdesk.tickets.resource import TICKETS
from supportdesk.users import service as users_service
from supportdesk.users.resource import USERS

BLANK = "The message field is required."


async def _lock(conn: Conn, message_id: int) -> Row:
    """The message, locked, after its ticket: every writer of a ticket's messages (a reply, a
    merge, an edit, a delete) locks the ticket first, so none deadlock on PostgreSQL and a
    metrics recomputation sees every message committed before it. A merge that moved the
    message before its ticket was locked is followed to the new ticket."""
    while True:
        seen = await get_or_raise(conn, message_id)
        await tickets_service.lock_for_reply(conn, seen["ticket_id"])
        row = await get_or_raise(conn, message_id, for_update=True)
        if row["ticket_id"] == seen["ticket_id"]:  # with its ticket locked, it stays there
            return row


async def get_or_raise(conn: Conn, message_id: int, *, for_update: bool = False) -> Row:
    row = await repository.get(conn, message_id, for_update=for_update)
    if row is None:
        raise ResourceNotFound("ticket_messages", message_id)
    return row


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


async def load_related(conn: Conn, rows: Sequence[Row], include: Sequence[str]) -> Related:
    """The `attachments` linkage always; the ticket, the author and attachments when included,
    in the declared relationship order."""
    related = Related()
    if "ticket" in include:
        tickets = await tickets_service.tickets_by_ids(conn, [row["ticket_id"] for row in rows])
        related.included.extend((TICKETS, ticket) for ticket in tickets)
    if "user" in include:
        users = await users_service.users_by_ids(conn, [row["user_id"] for row in rows])
        by_id = {user["id"]: user for user in users}
        related.included.extend((USERS, by_id[row["user_id"]]) for row in rows)
    await attachments.load_for_messages(
        conn, related, [row["id"] for row in rows], include="attachments" in include
    )
    return related


async def list_messages(db: Database, query: ListQuery) -> tuple[list[Row], int, Related]:
    async with db.read() as conn:
        rows, total = await repository.page(conn, query)
        return rows, total, await load_related(conn, rows, query.include)


async def get_message(db: Database, message_id: int, query: ResourceQuery) -> tuple[Row, Related]:
    async with db.read() as conn:
        row = await get_or_raise(conn, message_id)
        return row, await load_related(conn, [row], query.include)


async def create_message(
    db: Database,
    settings: Settings,
    storage: Storage,
    actor: Actor,
    data: MessageCreate,
    files: Sequence[UploadFile],
    query: ResourceQuery,
) -> tuple[Row, Related]:
    """The message, its files and the ticket's new status, all in one transaction: a failure
    anywhere leaves no row and no file."""
    if data.message is None and not files:
        raise ValidationFailed.field("message", BLANK)
    assert data.ticket_id is not None and data.user_id is not None
    async with (
        attachments.pending_uploads(storage, files, settings) as uploads,
        db.transaction() as conn,
    ):
        ticket = await tickets_service.lock_for_reply(conn, data.ticket_id)
        errors: dict[str, list[str]] = {}
        if ticket is None:
            errors["ticket_id"] = ["The selected ticket id is invalid."]
        elif ticket["merged_into"] is not None:
            errors["ticket_id"] = [
                f"Ticket #{ticket['id']} was merged into #{ticket['merged_into']}: "
                "add messages to that ticket."
            ]
        if not await users_service.user_exists(conn, data.user_id):
            errors["user_id"] = ["The selected user id is invalid."]
        if errors or ticket is None:
            raise ValidationFailed(errors)
        text = data.message or ""
        now, internal = timestamps.now(), bool(data.internal)
        row, events = await insert_message(
            conn, settings, ticket, data.user_id, text, uploads, now, internal
        )
        await log.record(conn, actor, events)
        return row, await load_related(conn, [row], query.include)


async def insert_message(
    conn: Conn,
    settings: Settings,
    ticket: Row,
    user_id: int,
    text: str,
    uploads: Sequence[attachments.Upload],
    now: str,
    internal: bool = False,
) -> tuple[Row, list[Event | None]]:
    """A message on `ticket` (locked by `lock_for_reply`), its files and the workflow's status
    move, in the caller's transaction; returns it and the events for the caller to record."""
    if internal:
        await _check_note_author(conn, user_id)
    message_id = await repository.writer.insert(
        conn,
        {
            "ticket_id": ticket["id"],
            "user_id": user_id,
            "message": text,
            "internal": internal,
            "created_at": now,
            "updated_at": now,
        },
    )
    stored = await attachments.insert(conn, message_id, ticket["id"], uploads, now)
    moved = await tickets_service.record_reply(
        conn, settings, ticket, user_id, now, internal=internal
    )
    row = await get_or_raise(conn, message_id)
    return row, [log.created(TICKET_MESSAGES, row, ticket["id"]), *stored, moved]


async def add_attachments(
    db: Database,
    settings: Settings,
    storage: Storage,
    actor: Actor,
    message_id: int,
    files: Sequence[UploadFile],
) -> tuple[Row, Related]:
    if not files:
        raise ValidationFailed.field("attachments", "The attachments field is required.")
    async with (
        attachments.pending_uploads(storage, files, settings) as uploads,
        db.transaction() as conn,
    ):
        row = await get_or_raise(conn, message_id)
        created = await attachments.insert(
            conn, message_id, row["ticket_id"], uploads, timestamps.now()
        )
        await log.record(conn, actor, created)
        return row, await load_related(conn, [row], ("attachments",))


async def _check_note_author(conn: Conn, user_id: int) -> None:
    """Internal notes are staff's."""
    await users_service.check_staff(conn, user_id, "user_id")


async def update_message(
    db: Database,
    actor: Actor,
    message_id: int,
    data: MessageUpdate,
    query: ResourceQuery,
    precondition: Precondition | None = None,
) -> tuple[Row, Related]:
    """The text, or whether it is an internal note; making a message a note (or public again)
    recomputes its ticket's metrics but never moves the status. The `precondition` (a
    conditional request's) runs on the locked message first."""
    async with db.transaction() as conn:
        current = await _lock(conn, message_id)
        if precondition is not None:
            await precondition(conn, current)
        values: dict[str, Any] = {}
        if "message" in data.model_fields_set and data.message != current["message"]:
            if data.message is None and not await attachments.files_of_message(conn, message_id):
                raise ValidationFailed.field("message", BLANK)
            values["message"] = data.message or ""
        if data.internal is not None and data.internal != current["internal"]:
            if data.internal:
                await _check_note_author(conn, current["user_id"])
            values["internal"] = data.internal
        if values:
            values["updated_at"] = timestamps.now()
            await repository.writer.update(conn, message_id, values)
        if "internal" in values:
            await tickets_service.recompute_metrics(conn, current["ticket_id"])
        row = await get_or_raise(conn, message_id)
        changed = log.updated(TICKET_MESSAGES, current, row, row["ticket_id"])
        await log.record(conn, actor, [changed])
        return row, await load_related(conn, [row], query.include)


async def delete_message(
    db: Database,
    storage: Storage,
    actor: Actor,
    message_id: int,
    precondition: Precondition | None = None,
) -> None:
    """The message with its attachments, files included. The ticket's status stays."""
    async with attachments.PendingDeletion(storage) as files, db.transaction() as conn:
        row = await _lock(conn, message_id)
        if precondition is not None:
            await precondition(conn, row)
        files.withdraw(await attachments.files_of_message(conn, message_id))
        await repository.writer.delete(conn, message_id)
        await tickets_service.recompute_metrics(conn, row["ticket_id"])
        await log.record(conn, actor, [log.deleted(TICKET_MESSAGES, row, row["ticket_id"])])


async def move(conn: Conn, source_ids: Sequence[int], target_id: int, now: str) -> list[Event]:
    """A merge's move: the sources' messages (their attachments follow) go to the target with
    their ids and times. Returns a `ticket_message.updated` per message, oldest first."""
    before = sorted(
        await repository.by_ticket_ids(conn, source_ids), key=lambda r: (r["created_at"], r["id"])
    )
    for source_id in source_ids:
        await repository.move(conn, source_id, target_id, now)
    after = {row["id"]: row for row in await repository.by_ticket_ids(conn, [target_id])}
    events = [log.updated(TICKET_MESSAGES, row, after[row["id"]], target_id) for row in before]
    return [event for event in events if event is not None]


async def add_note(conn: Conn, ticket_id: int, author_id: int, text: str, now: str) -> Event:
    """An internal note written by the service itself (a merge's); returns its event."""
    message_id = await repository.writer.insert(
        conn,
        {
            "ticket_id": ticket_id,
            "user_id": author_id,
            "message": text,
            "internal": True,
            "created_at": now,
            "updated_at": now,
        },
    )
    return log.created(TICKET_MESSAGES, await get_or_raise(conn, message_id), ticket_id)
