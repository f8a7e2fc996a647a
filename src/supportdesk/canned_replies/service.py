"""Canned replies: CRUD with the write rules of SPEC section 12, and rendering a reply for a
ticket."""

from __future__ import annotations

from typing import Any

from supportdesk import timestamps
from supportdesk.canned_replies import placeholders, repository
from supportdesk.canned_replies.resource import CANNED_REPLIES
from supportdesk.canned_replies.schemas import CannedReplyCreate, CannedReplyUpdate, RenderRequest
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Precondition, Row
from supportdesk.errors import ResourceNotFound, ValidationFailed
from supportdesk.events import log
from supportdesk.events.log import Actor
from supportdesk.queries import ListQuery
from supportdesk.tickets import service as tickets_service
from supportdesk.users import service as users_service


async def get_or_raise(conn: Conn, canned_reply_id: int, *, for_update: bool = False) -> Row:
    row = await repository.get(conn, canned_reply_id, for_update=for_update)
    if row is None:
        raise ResourceNotFound("canned_replies", canned_reply_id)
    return row


def validation_context(settings: Settings) -> dict[str, Any]:
    return {
        "departments": settings.departments,
        "max_message_length": settings.max_message_length,
    }


async def list_canned_replies(db: Database, query: ListQuery) -> tuple[list[Row], int]:
    async with db.read() as conn:
        return await repository.page(conn, query)


async def get_canned_reply(db: Database, canned_reply_id: int) -> Row:
    async with db.read() as conn:
        return await get_or_raise(conn, canned_reply_id)


async def create_canned_reply(db: Database, actor: Actor, data: CannedReplyCreate) -> Row:
    values = {name: getattr(data, name) for name in data.model_fields_set}
    now = timestamps.now()
    values.update(created_at=now, updated_at=now)
    async with db.transaction() as conn:
        canned_reply_id = await repository.writer.insert(conn, values)
        row = await get_or_raise(conn, canned_reply_id)
        await log.record(conn, actor, [log.created(CANNED_REPLIES, row)])
        return row


async def update_canned_reply(
    db: Database,
    actor: Actor,
    canned_reply_id: int,
    data: CannedReplyUpdate,
    precondition: Precondition | None = None,
) -> Row:
    """Only the fields sent change; `updated_at` moves only when a value really changes. The
    `precondition` (a conditional request's) runs on the locked row first."""
    async with db.transaction() as conn:
        current = await get_or_raise(conn, canned_reply_id, for_update=True)
        if precondition is not None:
            await precondition(conn, current)
        values = {
            name: getattr(data, name)
            for name in data.model_fields_set
            if getattr(data, name) != current[name]
        }
        if values:
            values["updated_at"] = timestamps.now()
            await repository.writer.update(conn, canned_reply_id, values)
        row = await get_or_raise(conn, canned_reply_id)
        if values:
            await log.record(conn, actor, [log.updated(CANNED_REPLIES, current, row)])
        return row


async def delete_canned_reply(
    db: Database, actor: Actor, canned_reply_id: int, precondition: Precondition | None = None
) -> None:
    async with db.transaction() as conn:
        row = await get_or_raise(conn, canned_reply_id, for_update=True)
        if precondition is not None:
            await precondition(conn, row)
        await repository.writer.delete(conn, canned_reply_id)
        await log.record(conn, actor, [log.deleted(CANNED_REPLIES, row)])


def _check_department(reply: Row, ticket: Row) -> None:
    """A reply with a department fits only that department's tickets; one without fits all."""
    wanted = reply["department"]
    if wanted is None or wanted == ticket["department"]:
        return
    where = (
        "has no department"
        if ticket["department"] is None
        else f"is in the {ticket['department']} department"
    )
    raise ValidationFailed.field(
        "ticket_id",
        f"The canned reply is for the {wanted} department; ticket {ticket['id']} {where}.",
    )


async def render(db: Database, canned_reply_id: int, data: RenderRequest) -> Row:
    """The reply's body filled in for a ticket: the ticket, its owner (`customer`) and the agent
    (the staff user `user_id`, else the ticket's assignee; no agent leaves the agent
    placeholders empty). A missing ticket or a `user_id` that is not staff is 422, like any
    reference in a body; so is a ticket outside the reply's department. Writes nothing."""
    assert data.ticket_id is not None
    async with db.read() as conn:
        reply = await get_or_raise(conn, canned_reply_id)
        found = await tickets_service.tickets_by_ids(conn, [data.ticket_id])
        errors: dict[str, list[str]] = {}
        if not found:
            errors["ticket_id"] = ["The selected ticket id is invalid."]
        if data.user_id is not None:
            try:
                await users_service.check_staff(conn, data.user_id, "user_id")
            except ValidationFailed as exc:
                errors.update(exc.errors)
        if errors:
            raise ValidationFailed(errors)
        ticket = found[0]
        _check_department(reply, ticket)
        agent_id: int | None = data.user_id if data.user_id is not None else ticket["assigned_to"]
        user_ids = [ticket["user_id"]] if agent_id is None else [ticket["user_id"], agent_id]
        users = {user["id"]: user for user in await users_service.users_by_ids(conn, user_ids)}
    agent = None if agent_id is None else users.get(agent_id)
    values = placeholders.values(ticket, users.get(ticket["user_id"]), agent)
    return {
        "id": reply["id"],
        "canned_reply_id": reply["id"],
        "ticket_id": ticket["id"],
        "agent_id": agent_id,
        "body": placeholders.render(reply["body"], values),
    }
