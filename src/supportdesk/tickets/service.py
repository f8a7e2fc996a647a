"""Tickets: listing, reading and the write rules of SPEC section 2."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
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
from supportdesk.ticket_messages import service as messages_service
from supportdesk.tickets import repository
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.schemas import Merge, TicketCreate, TicketUpdate
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


async def count_tickets(db: Database, queries: Sequence[ListQuery]) -> list[int]:
    """How many tickets each query's filters select, in one read."""
    async with db.read() as conn:
        return [await repository.lister.count(conn, query) for query in queries]


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


async def _check_references(conn: Conn, values: dict[str, Any], prefix: str = "") -> None:
    """The users named exist (the assignee as staff); errors name `{prefix}<field>`."""
    if "user_id" in values:
        await users_service.check_user(conn, values["user_id"], f"{prefix}user_id")
    if values.get("assigned_to") is not None:
        await users_service.check_staff(conn, values["assigned_to"], f"{prefix}assigned_to")


def _default(options: tuple[str, ...], preferred: str) -> str:
    return preferred if preferred in options else options[0]


def with_ranks(
    settings: Settings, values: dict[str, Any], before: Row | None = None
) -> dict[str, Any]:
    """The sort ranks that go with a new status or priority (see `sync_ranks`), and
    `resolved_at` when the status moves to the closed status (from `before`'s, if any)."""
    if "status" in values:
        values["status_rank"] = repository.rank(values["status"], settings.statuses)
        closed = settings.closed_status
        if values["status"] == closed and (before is None or before["status"] != closed):
            values["resolved_at"] = values["updated_at"]
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
    async with db.transaction() as conn:
        row = await insert_ticket(conn, settings, values, timestamps.now())
        await log.record(conn, actor, [log.created(TICKETS, row, row["id"])])
        return row, await load_related(conn, [row], query.include)


async def open_with_message(
    db: Database,
    settings: Settings,
    storage: Storage,
    actor: Actor,
    data: TicketCreate,
    text: str,
    files: Sequence[UploadFile],
) -> int:
    """A new ticket and its first message (with files) in one transaction, as the portal and
    mail open them; returns the ticket's id."""
    values = {name: getattr(data, name) for name in data.model_fields_set}
    async with (
        attachments.pending_uploads(storage, files, settings) as uploads,
        db.transaction() as conn,
    ):
        now = timestamps.now()  # the ticket and its first message: one moment
        row = await insert_ticket(conn, settings, values, now)
        _, events = await messages_service.insert_message(
            conn, settings, row, row["user_id"], text, uploads, now
        )
        await log.record(conn, actor, [log.created(TICKETS, row, row["id"]), *events])
        ticket_id: int = row["id"]
        return ticket_id


async def insert_ticket(conn: Conn, settings: Settings, values: dict[str, Any], now: str) -> Row:
    """A new ticket from validated values (`subject`, `user_id`, ...), with the default status
    and priority, in the caller's transaction; its event is the caller's to record."""
    values = {
        "status": _default(settings.statuses, "open"),
        "priority": _default(settings.priorities, "medium"),
        **values,
        "created_at": now,
        "updated_at": now,
    }
    await _check_references(conn, values)
    ticket_id = await repository.writer.insert(conn, with_ranks(settings, values))
    return await get_or_raise(conn, ticket_id)


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
    sent = _sent(data)
    async with db.transaction() as conn:
        current = await get_or_raise(conn, ticket_id, for_update=True)
        if precondition is not None:
            await precondition(conn, current)
        await _check_references(conn, _changed(current, sent))
        await _apply(conn, settings, current, sent, timestamps.now())
        row = await get_or_raise(conn, ticket_id)
        await log.record(conn, actor, [log.updated(TICKETS, current, row, ticket_id)])
        return row, await load_related(conn, [row], query.include)


def _sent(data: TicketUpdate) -> dict[str, Any]:
    return {name: getattr(data, name) for name in data.model_fields_set}


def _changed(current: Row, values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value != current[name]}


async def _apply(
    conn: Conn, settings: Settings, current: Row, sent: dict[str, Any], now: str
) -> None:
    """Write the values that differ from `current` (references already checked), with the
    ranks, `updated_at`, `resolved_at` and, for a new owner, the metrics that follow."""
    values = _changed(current, sent)
    if not values:
        return
    values["updated_at"] = now
    await repository.writer.update(conn, current["id"], with_ranks(settings, values, current))
    if "user_id" in values:  # the customer's and staff's messages are told apart by owner
        await repository.recompute_metrics(conn, [current["id"]])


async def bulk_update(
    db: Database,
    settings: Settings,
    actor: Actor,
    ticket_ids: Sequence[int],
    data: TicketUpdate,
    query: ResourceQuery,
) -> tuple[list[Row], Related]:
    """SPEC 12 bulk update: the same changes, by the rules of one update, to every ticket; all
    or nothing (a missing ticket is 422 naming it); one `ticket.updated` per ticket changed."""
    sent = _sent(data)
    async with db.transaction() as conn:
        current = await repository.lock_many(conn, ticket_ids)
        _require_all(ticket_ids, current, "ids")
        await _check_references(conn, sent, "changes.")
        now = timestamps.now()
        for row in current:
            await _apply(conn, settings, row, sent, now)
        after = {row["id"]: row for row in await repository.by_ids(conn, ticket_ids)}
        await log.record(
            conn, actor, [log.updated(TICKETS, row, after[row["id"]], row["id"]) for row in current]
        )
        rows = [after[ticket_id] for ticket_id in ticket_ids]
        return rows, await load_related(conn, rows, query.include)


def _require_all(wanted: Sequence[int], found: Sequence[Row], field: str) -> None:
    missing = sorted(set(wanted) - {row["id"] for row in found})
    if missing:
        listed = ", ".join(map(str, missing))
        raise ValidationFailed.field(field, f"No ticket with id {listed}.")


async def merge(
    db: Database,
    settings: Settings,
    actor: Actor,
    target_id: int,
    data: Merge,
    query: ResourceQuery,
) -> tuple[Row, Related]:
    """SPEC 12 merge: the sources' messages (attachments with them) move to the target, keeping
    their ids and times, so the thread stays in time order; each source is closed with
    `merged_into` and an internal note signed by `data.user_id` (default: the target's
    assignee); the metrics of all are recomputed. Events: a `ticket_message.updated` per
    moved message (`ticket_id` changed), then per source a `ticket.merged` (its changes:
    status and `merged_into`) and its note's `ticket_message.created`."""
    async with db.transaction() as conn:
        locked = {
            row["id"]: row
            for row in await repository.lock_many(conn, [target_id, *data.source_ids])
        }
        target = locked.get(target_id)
        if target is None:
            raise ResourceNotFound("tickets", target_id)
        sources = [locked[i] for i in data.source_ids if i in locked]
        _require_all(data.source_ids, sources, "source_ids")
        _check_merge(target, sources)
        author = await _note_author(conn, target, data.user_id)
        now = timestamps.now()
        events: list[Event | None] = list(
            await messages_service.move(conn, data.source_ids, target_id, now)
        )
        for source in sources:
            values = {"status": settings.closed_status, "merged_into": target_id, "updated_at": now}
            await repository.writer.update(conn, source["id"], with_ranks(settings, values, source))
            note = await messages_service.add_note(
                conn, source["id"], author, f"Merged into #{target_id}: {target['subject']}", now
            )
            await repository.recompute_metrics(conn, [source["id"]])
            merged = log.updated(
                TICKETS, source, await get_or_raise(conn, source["id"]), source["id"]
            )
            assert merged is not None  # merged_into moved
            events += [replace(merged, name="ticket.merged"), note]
        await repository.writer.update(conn, target_id, {"updated_at": now})
        await repository.recompute_metrics(conn, [target_id])
        await log.record(conn, actor, events)
        row = await get_or_raise(conn, target_id)
        return row, await load_related(conn, [row], query.include)


def _check_merge(target: Row, sources: Sequence[Row]) -> None:
    """Into itself, into a ticket that was merged away itself (one of its sources, or another
    ticket's), a source merged already, or another customer's ticket: 422."""
    if any(source["id"] == target["id"] for source in sources):
        raise ValidationFailed.field("source_ids", "A ticket cannot be merged into itself.")
    if target["merged_into"] is not None:
        raise ValidationFailed.field(
            "source_ids",
            f"Ticket #{target['id']} was merged into #{target['merged_into']}: "
            "merge into that ticket instead.",
        )
    for source in sources:
        if source["user_id"] != target["user_id"]:
            # the metrics tell the customer's messages from staff's by the ticket's owner
            raise ValidationFailed.field(
                "source_ids",
                f"Ticket #{source['id']} belongs to another customer than #{target['id']}: "
                "only one customer's tickets merge.",
            )
        if source["merged_into"] is not None:
            raise ValidationFailed.field(
                "source_ids",
                f"Ticket #{source['id']} was merged into #{source['merged_into']} already.",
            )


async def _note_author(conn: Conn, target: Row, user_id: int | None) -> int:
    if user_id is not None:
        await users_service.check_staff(conn, user_id, "user_id")
        return user_id
    if target["assigned_to"] is None:
        raise ValidationFailed.field(
            "user_id",
            "The user id field is required when the ticket is unassigned: "
            "it names the staff user who signs the merge notes.",
        )
    assigned: int = target["assigned_to"]
    await users_service.check_staff(conn, assigned, "user_id")  # still staff?
    return assigned


async def delete_ticket(
    db: Database,
    storage: Storage,
    actor: Actor,
    ticket_id: int,
    precondition: Precondition | None = None,
) -> None:
    """The ticket, its messages and their attachments, files included; one `ticket.deleted`
    event stands for all of them. Tickets merged into it are released (`merged_into` cleared,
    a `ticket.updated` each)."""
    async with attachments.PendingDeletion(storage) as files, db.transaction() as conn:
        row = await get_or_raise(conn, ticket_id, for_update=True)
        if precondition is not None:
            await precondition(conn, row)
        files.withdraw(await attachments.files_of_ticket(conn, ticket_id))
        await repository.writer.delete(conn, ticket_id)
        released = await repository.release_sources(conn, [ticket_id], timestamps.now())
        await log.record(
            conn,
            actor,
            [
                log.deleted(TICKETS, row, ticket_id),
                *(log.updated(TICKETS, before, after, after["id"]) for before, after in released),
            ],
        )


async def tickets_by_ids(conn: Conn, ticket_ids: Sequence[int]) -> list[Row]:
    return await repository.by_ids(conn, ticket_ids)


async def lock_for_reply(conn: Conn, ticket_id: int) -> Row | None:
    """The ticket a message is being added to, locked until the transaction ends so that
    replies to one ticket are applied one after the other."""
    return await repository.get(conn, ticket_id, for_update=True)


async def record_reply(
    conn: Conn, settings: Settings, ticket: Row, author_id: int, now: str, *, internal: bool
) -> Event | None:
    """SPEC section 6: a message from the ticket's owner sets the owner-reply status
    (`customer-reply`, which also reopens a closed ticket); anyone else's sets the staff-reply
    status (`replied`); an internal note (SPEC 12) moves no status. The ticket's `updated_at`
    and its metrics move (`ticket` is locked, so counting on from it is exact). Returns the
    status move as a `ticket.updated` event of the message's author, or None when the status
    stays. The message a customer opens a ticket with (written with it, at the same moment:
    the portal, mail) leaves it in the status it opened with."""
    values: dict[str, Any] = {"updated_at": now, "message_count": ticket["message_count"] + 1}
    if not internal:
        owner = ticket["user_id"] == author_id
        if not (owner and ticket["created_at"] == now):
            values["status"] = settings.owner_reply_status if owner else settings.staff_reply_status
        if owner:
            values["last_customer_message_at"] = now
        else:
            values["last_staff_message_at"] = now
            if ticket["first_response_at"] is None:
                values["first_response_at"] = now
    values = with_ranks(settings, values, ticket)
    await repository.writer.update(conn, ticket["id"], values)
    event = log.updated(TICKETS, ticket, {**ticket, **values}, ticket["id"])
    return None if event is None else replace(event, actor=Actor("user", author_id))


async def recompute_metrics(conn: Conn, ticket_id: int) -> None:
    """Recompute a ticket's message metrics after a message left it or changed kind."""
    await repository.recompute_metrics(conn, [ticket_id])


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
