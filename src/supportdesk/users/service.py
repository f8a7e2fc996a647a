"""Users: the one place that decides what a valid user is. Other packages call the `check_*`
functions to validate references to users inside their own transactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from argon2 import PasswordHasher
from starlette.concurrency import run_in_threadpool

from supportdesk import timestamps
from supportdesk.db import Conn, Database, IntegrityViolation, Precondition, Row
from supportdesk.errors import Conflict, ResourceNotFound, ValidationFailed
from supportdesk.events import log
from supportdesk.events.log import Actor
from supportdesk.jsonapi.body import validate
from supportdesk.jsonapi.document import Related
from supportdesk.queries import ListQuery, ResourceQuery
from supportdesk.ticket_attachments import service as attachments
from supportdesk.ticket_attachments.storage import Storage
from supportdesk.ticket_messages import repository as messages_repository
from supportdesk.ticket_messages.resource import TICKET_MESSAGES
from supportdesk.tickets import repository as tickets_repository
from supportdesk.tickets.resource import TICKETS
from supportdesk.users import repository
from supportdesk.users.resource import ROLES, USERS
from supportdesk.users.schemas import UserCreate, UserUpdate

_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    """argon2id, off the event loop (it takes tens of milliseconds on purpose)."""
    return await run_in_threadpool(_hasher.hash, password)


async def get_or_raise(conn: Conn, user_id: int, *, for_update: bool = False) -> Row:
    row = await repository.get(conn, user_id, for_update=for_update)
    if row is None:
        raise ResourceNotFound("users", user_id)
    return row


def invalid(field: str) -> ValidationFailed:
    return ValidationFailed.field(field, f"The selected {field.replace('_', ' ')} is invalid.")


async def user_exists(conn: Conn, user_id: int) -> bool:
    return await repository.user_exists(conn, user_id)


async def check_user(conn: Conn, user_id: int, field: str) -> None:
    if not await user_exists(conn, user_id):
        raise invalid(field)


async def check_staff(conn: Conn, user_id: int, field: str) -> None:
    if not await repository.is_staff(conn, user_id):
        raise ValidationFailed.field(
            field, f"The selected {field.replace('_', ' ')} is invalid: it must be a staff user."
        )


async def users_by_ids(conn: Conn, ids: Sequence[int]) -> list[Row]:
    return await repository.by_ids(conn, ids)


async def load_related(conn: Conn, rows: Sequence[Row], include: Sequence[str]) -> Related:
    related = Related()
    ids = [row["id"] for row in rows]
    if "tickets" in include:
        owned = await tickets_repository.by_user_ids(conn, ids)
        linkage: dict[int, list[int]] = {user_id: [] for user_id in ids}
        for ticket in owned:
            linkage[ticket["user_id"]].append(ticket["id"])
        related.many["tickets"] = linkage
        related.included.extend((TICKETS, ticket) for ticket in owned)
    if "role" in include:
        role_ids = [row["role_id"] for row in rows if row["role_id"] is not None]
        related.included.extend(
            (ROLES, role) for role in await repository.roles_by_ids(conn, role_ids)
        )
    return related


async def list_users(db: Database, query: ListQuery) -> tuple[list[Row], int, Related]:
    async with db.read() as conn:
        rows, total = await repository.page(conn, query)
        return rows, total, await load_related(conn, rows, query.include)


async def get_user(db: Database, user_id: int, query: ResourceQuery) -> tuple[Row, Related]:
    async with db.read() as conn:
        row = await get_or_raise(conn, user_id)
        return row, await load_related(conn, [row], query.include)


async def _check_fields(conn: Conn, values: dict[str, Any], user_id: int | None) -> None:
    errors: dict[str, list[str]] = {}
    email = values.get("email")
    if email is not None:
        owner = await repository.id_by_email(conn, email)
        if owner is not None and owner != user_id:
            errors["email"] = ["The email has already been taken."]
    role_id = values.get("role_id")
    if role_id is not None and not await repository.role_exists(conn, role_id):
        errors["role_id"] = ["The selected role id is invalid."]
    if errors:
        raise ValidationFailed(errors)


async def _values(data: UserUpdate) -> dict[str, Any]:
    values = {name: getattr(data, name) for name in data.model_fields_set}
    if values.get("password") is not None:
        values["password"] = await hash_password(values["password"])
    elif "password" in values:
        del values["password"]
    return values


async def create_user(
    db: Database, actor: Actor, data: UserCreate, query: ResourceQuery
) -> tuple[Row, Related]:
    values = await _values(data)
    async with db.transaction() as conn:
        row = await insert_user(conn, values)
        await log.record(conn, actor, [log.created(USERS, row)])
        return row, await load_related(conn, [row], query.include)


async def insert_user(conn: Conn, values: dict[str, Any]) -> Row:
    """A new user from validated values (password hashed), in the caller's transaction; its
    event is the caller's to record."""
    now = timestamps.now()
    values = {**values, "created_at": now, "updated_at": now}
    await _check_fields(conn, values, None)
    try:
        user_id = await repository.writer.insert(conn, values)
    except IntegrityViolation:
        raise ValidationFailed.field("email", "The email has already been taken.") from None
    return await get_or_raise(conn, user_id)


async def update_user(
    db: Database,
    actor: Actor,
    user_id: int,
    data: UserUpdate,
    query: ResourceQuery,
    precondition: Precondition | None = None,
) -> tuple[Row, Related]:
    """Only the fields sent change; `updated_at` moves only when a value really changes (a
    password sent always counts as a change), so a no-op keeps the user's ETag. The
    `precondition` (a conditional request's) runs on the locked user first."""
    sent = await _values(data)
    async with db.transaction() as conn:
        current = await get_or_raise(conn, user_id, for_update=True)
        if precondition is not None:
            await precondition(conn, current)
        values = {
            name: value
            for name, value in sent.items()
            if name == "password" or value != current[name]
        }
        if values:
            await _check_fields(conn, values, user_id)
            values["updated_at"] = timestamps.now()
            try:
                await repository.writer.update(conn, user_id, values)
            except IntegrityViolation:
                raise ValidationFailed.field("email", "The email has already been taken.") from None
            if "password" in values:  # whoever had the old one is signed out, as by the CLI
                await repository.end_sessions(conn, user_id)
        row = await get_or_raise(conn, user_id)
        await log.record(conn, actor, [log.updated(USERS, current, row)])
        return row, await load_related(conn, [row], query.include)


async def delete_user(
    db: Database,
    storage: Storage,
    actor: Actor,
    user_id: int,
    force: bool,
    precondition: Precondition | None = None,
) -> None:
    """Refused (409) while the user owns tickets or wrote messages, unless `force`, which
    deletes those too (the foreign keys cascade), attachment files included, and recomputes
    the metrics of the tickets those messages were on. What the cascade
    takes is in the events too: each owned ticket, each message on someone else's ticket."""
    async with attachments.PendingDeletion(storage) as files, db.transaction() as conn:
        row = await get_or_raise(conn, user_id, for_update=True)
        if precondition is not None:
            await precondition(conn, row)
        if not force and await repository.has_tickets_or_messages(conn, user_id):
            raise Conflict(
                "The user owns tickets or wrote messages; delete with ?force=true to delete "
                "them too."
            )
        files.withdraw(await attachments.files_of_user(conn, user_id))
        owned = await tickets_repository.by_user_ids(conn, [user_id])
        elsewhere = await messages_repository.by_author_elsewhere(conn, user_id)
        # the tickets the user wrote on lose those messages: locked first, as every writer of
        # a ticket's messages does, and their metrics recomputed after
        written_on = sorted({message["ticket_id"] for message in elsewhere})
        await tickets_repository.lock_many(conn, written_on)
        await repository.writer.delete(conn, user_id)
        await tickets_repository.recompute_metrics(conn, written_on)
        released = await tickets_repository.release_sources(
            conn, [ticket["id"] for ticket in owned], timestamps.now()
        )
        await log.record(
            conn,
            actor,
            [
                *(log.deleted(TICKETS, ticket, ticket["id"]) for ticket in owned),
                *(log.deleted(TICKET_MESSAGES, m, m["ticket_id"]) for m in elsewhere),
                *(log.updated(TICKETS, before, after, after["id"]) for before, after in released),
                log.deleted(USERS, row),
            ],
        )


async def create_user_simple(
    db: Database,
    email: str,
    first_name: str | None,
    last_name: str | None,
    staff: bool,
    password: str | None = None,
) -> int:
    """For the CLI: the same rules as POST /users."""
    values = {
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "role_id": 1 if staff else None,
    }
    if password is not None:
        values["password"] = password
    data = validate(UserCreate, values)
    row, _ = await create_user(db, log.SYSTEM, data, ResourceQuery())
    user_id: int = row["id"]
    return user_id


async def list_roles(db: Database) -> list[Row]:
    async with db.read() as conn:
        return await repository.list_roles(conn)
