"""Tickets: listing, reading and the write rules of SPEC section 2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Row
from supportdesk.errors import ResourceNotFound
from supportdesk.jsonapi.document import Related
from supportdesk.jsonapi.query import ListQuery, ResourceQuery
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
        rows, total = await repository.page(conn, query, settings.statuses, settings.priorities)
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


async def create_ticket(
    db: Database, settings: Settings, data: TicketCreate, query: ResourceQuery
) -> tuple[Row, Related]:
    values = {name: getattr(data, name) for name in data.model_fields_set}
    values.setdefault("status", _default(settings.statuses, "open"))
    values.setdefault("priority", _default(settings.priorities, "medium"))
    now = timestamps.now()
    values.update(created_at=now, updated_at=now)
    async with db.transaction() as conn:
        await _check_references(conn, values)
        ticket_id = await repository.writer.insert(conn, values)
        row = await get_or_raise(conn, ticket_id)
        return row, await load_related(conn, [row], query.include)


async def update_ticket(
    db: Database, ticket_id: int, data: TicketUpdate, query: ResourceQuery
) -> tuple[Row, Related]:
    """Only the fields sent change; `updated_at` moves only when a value really changes."""
    async with db.transaction() as conn:
        current = await get_or_raise(conn, ticket_id, for_update=True)
        values = {
            name: getattr(data, name)
            for name in data.model_fields_set
            if getattr(data, name) != current[name]
        }
        if values:
            await _check_references(conn, values)
            values["updated_at"] = timestamps.now()
            await repository.writer.update(conn, ticket_id, values)
        row = await get_or_raise(conn, ticket_id)
        return row, await load_related(conn, [row], query.include)


async def delete_ticket(db: Database, ticket_id: int) -> None:
    async with db.transaction() as conn:
        if not await repository.writer.delete(conn, ticket_id):
            raise ResourceNotFound("tickets", ticket_id)


def ticket_settings(settings: Settings) -> dict[str, list[str]]:
    return {
        "statuses": list(settings.statuses),
        "priorities": list(settings.priorities),
        "departments": list(settings.departments),
    }
