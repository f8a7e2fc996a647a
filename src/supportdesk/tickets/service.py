"""Tickets: listing, reading and the write rules of SPEC section 2."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Precondition, Row
from supportdesk.errors import ResourceNotFound
from supportdesk.events import log
from supportdesk.events.log import Actor, Event
from supportdesk.jsonapi.document import Related
from supportdesk.queries import ListQuery, ResourceQuery
from supportdesk.ticket_attachments import service as attachments
from supportdesk.ticket_attachments.storage import Storage
from supportdesk.ticket_messages import service as messages_service
from supportdesk.tickets import repository
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.schemas import TicketCreate, TicketUpdate
from supportdesk.users import service as users_service
from supportdesk.users.resource import USERS


async def get_or_raise(conn: Conn, ticket_id: int, *, for_update: bool = False) -> Row:
    row = await repository.get(conn, ticket_id, for_update=for_update)
    if row is None:
        raise ResourceNotFound("tickets", ticket_id)
    return row


async def load_related(conn: Conn, rows: Sequence[Row], include: Sequence[str]) -> Related:
    """The `messages` linkage always; users and message bodies when included, in the declared
    relationship order (user, assigned_to, messages)."""
    related = Related()
    user_ids = [
        row[key]
        for key in ("user_id", "assigned_to")
        if TICKETS.relationship_by_key(key).name in include
        for row in rows
        if row[key] is not None
    ]
    if user_ids:
        by_id = {user["id"]: user for user in await users_service.users_by_ids(conn, user_ids)}
        related.included.extend((USERS, by_id[user_id]) for user_id in user_ids if user_id in by_id)
    await messages_service.load_for_tickets(
        conn, related, [row["id"] for row in rows], include="messages" in include
    )
    return related


async def list_tickets(
    db: Database, settings: Settings, query: ListQuery
) -> tuple[list[Row], int, Related]:
    async with db.read() as conn:
        rows, total = await repository.page(conn, query)
        related = await load_related(conn, rows, query.include)
        return rows, total, related


async def get_ticket(db: Database, ticket_id: int, query: ResourceQuery) -> tuple[Row, Related]:
    async with db.read() as conn:
        row = await get_or_raise(conn, ticket_id)
        return row, await load_related(conn, [row], query.include)


def validation_context(settings: Settings) -> dict[str, Any]:
    return {
        "statuses": settings.statuses,
        "priorities": settings.priorities,
        "departments": settings.departments,
    }


async def _check_references(conn: Conn, values: dict[str, Any]) -> None:
    if "user_id" in values:
        await users_service.check_user(conn, values["user_id"], "user_id")
    if values.get("assigned_to") is not None:
        await users_service.check_staff(conn, values["assigned_to"], "assigned_to")


def _default(options: tuple[str, ...], preferred: str) -> str:
    return preferred if preferred in options else options[0]


def with_ranks(settings: Settings, values: dict[str, Any]) -> dict[str, Any]:
    """The sort ranks that go with a new status or priority (see `sync_ranks`)."""
    if "status" in values:
        values["status_rank"] = repository.rank(values["status"], settings.statuses)
    if "priority" in values:
        values["priority_rank"] = repository.rank(values["priority"], settings.priorities)
    return values


def _rank_orders(settings: Settings) -> str:
    return json.dumps({"statuses": settings.statuses, "priorities": settings.priorities})


async def sync_ranks(db: Database, settings: Settings) -> bool:
    """Make the stored sort ranks match the configured orders, recomputing them all when the
    configuration changed since they were written. Returns True when an earlier configuration
    was replaced."""
    orders = _rank_orders(settings)
    async with db.read() as conn:
        previous = await repository.rank_orders(conn)
    if previous == orders:
        return False
    async with db.transaction() as conn:
        await repository.rerank(conn, settings.statuses, settings.priorities, orders)
    return previous is not None


async def create_ticket(
    db: Database, settings: Settings, actor: Actor, data: TicketCreate, query: ResourceQuery
) -> tuple[Row, Related]:
    values = {name: getattr(data, name) for name in data.model_fields_set}
    values.setdefault("status", _default(settings.statuses, "open"))
    values.setdefault("priority", _default(settings.priorities, "medium"))
    now = timestamps.now()
    values.update(created_at=now, updated_at=now)
    async with db.transaction() as conn:
        await _check_references(conn, values)
        ticket_id = await repository.writer.insert(conn, with_ranks(settings, values))
        row = await get_or_raise(conn, ticket_id)
        await log.record(conn, actor, [log.created(TICKETS, row, ticket_id)])
        return row, await load_related(conn, [row], query.include)


async def update_ticket(
    db: Database,
    settings: Settings,
    actor: Actor,
    ticket_id: int,
    data: TicketUpdate,
    query: ResourceQuery,
    precondition: Precondition | None = None,
) -> tuple[Row, Related]:
    """Only the fields sent change; `updated_at` moves only when a value really changes. The
    `precondition` (a conditional request's) runs on the locked ticket before anything else."""
    async with db.transaction() as conn:
        current = await get_or_raise(conn, ticket_id, for_update=True)
        if precondition is not None:
            await precondition(conn, current)
        values = {
            name: getattr(data, name)
            for name in data.model_fields_set
            if getattr(data, name) != current[name]
        }
        if values:
            await _check_references(conn, values)
            values["updated_at"] = timestamps.now()
            await repository.writer.update(conn, ticket_id, with_ranks(settings, values))
        row = await get_or_raise(conn, ticket_id)
        if values:
            await log.record(conn, actor, [log.updated(TICKETS, current, row, ticket_id)])
        return row, await load_related(conn, [row], query.include)


async def delete_ticket(
    db: Database,
    storage: Storage,
    actor: Actor,
    ticket_id: int,
    precondition: Precondition | None = None,
) -> None:
    """The ticket, its messages and their attachments, files included; one `ticket.deleted`
    event stands for all of them."""
    async with attachments.PendingDeletion(storage) as files, db.transaction() as conn:
        row = await get_or_raise(conn, ticket_id, for_update=True)
        if precondition is not None:
            await precondition(conn, row)
        files.withdraw(await attachments.files_of_ticket(conn, ticket_id))
        await repository.writer.delete(conn, ticket_id)
        await log.record(conn, actor, [log.deleted(TICKETS, row, ticket_id)])


async def tickets_by_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    return await repository.by_ids(conn, ticket_ids)


async def lock_for_reply(conn: Conn, ticket_id: int) -> Row | None:
    """The ticket a message is being added to, locked until the transaction ends so that
    replies to one ticket are applied one after the other."""
    return await repository.get(conn, ticket_id, for_update=True)


async def record_reply(
    conn: Conn, settings: Settings, ticket: Row, author_id: int, now: str
) -> Event | None:
    """SPEC section 6: a message from the ticket's owner sets the owner-reply status
    (`customer-reply`, which also reopens a closed ticket); anyone else's sets the staff-reply
    status (`replied`). Either way the ticket's `updated_at` moves. Returns the status move as
    a `ticket.updated` event of the message's author, or None when the status stays."""
    owner = ticket["user_id"] == author_id
    status = settings.owner_reply_status if owner else settings.staff_reply_status
    values = with_ranks(settings, {"status": status, "updated_at": now})
    await repository.writer.update(conn, ticket["id"], values)
    event = log.updated(TICKETS, ticket, {**ticket, **values}, ticket["id"])
    return None if event is None else replace(event, actor=Actor("user", author_id))


async def autoclose(db: Database, settings: Settings, older_than: str) -> list[Row]:
    """Close tickets left in the staff-reply status since before `older_than`; returns them.
    One statement in one transaction, with a `ticket.updated` event of the `system` actor per
    ticket: idempotent and safe beside a running server."""
    async with db.transaction() as conn:
        closed = await repository.close_stale(
            conn,
            settings.staff_reply_status,
            settings.closed_status,
            repository.rank(settings.closed_status, settings.statuses),
            older_than,
            timestamps.now(),
        )
        status = [settings.staff_reply_status, settings.closed_status]
        await log.record(
            conn,
            log.SYSTEM,
            [
                Event(
                    "ticket.updated",
                    TICKETS.type,
                    row["id"],
                    log.attributes(TICKETS, row),
                    row["id"],
                    {"status": status},
                )
                for row in closed
            ],
        )
        return closed


async def history(db: Database, ticket_id: int, query: ListQuery) -> tuple[list[Row], int]:
    """The ticket's events (its own, its messages' and attachments'), oldest first. They outlive
    the ticket: a deleted ticket's history is still read; a ticket that never was is 404."""
    scoped = replace(query, filters={"ticket_id": (ticket_id,)})
    async with db.read() as conn:
        rows, total = await log.history(conn, scoped)
        if total == 0:
            await get_or_raise(conn, ticket_id)
    return rows, total


def ticket_settings(settings: Settings) -> dict[str, list[str]]:
    return {
        "statuses": list(settings.statuses),
        "priorities": list(settings.priorities),
        "departments": list(settings.departments),
    }
