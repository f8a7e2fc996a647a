"""All queries on users and roles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, exists, func, or_, select

from supportdesk.db import Conn, Row
from supportdesk.db.listing import AnyOf, InLookup, Lister, Listing
from supportdesk.db.writes import Writer
from supportdesk.queries import ListQuery
from supportdesk.tables import roles, ticket_messages, tickets, users, web_sessions

# Every column but the password hash, which never leaves this module.
PUBLIC = [c for c in users.columns if c.name != "password"]

_GET = select(*PUBLIC).where(users.c.id == bindparam("user_id"))
# Row lock on PostgreSQL for read-modify-write (SQLite's write transaction already excludes
# every other writer). FOR NO KEY UPDATE: it serialises our writers of the user (which all take
# it) without making every new ticket or message of that user wait on its foreign-key check.
_GET_FOR_UPDATE = _GET.with_for_update(key_share=True)
_ID_BY_EMAIL = select(users.c.id).where(func.lower(users.c.email) == bindparam("email"))
_IS_STAFF = select(users.c.role_id).where(users.c.id == bindparam("user_id"))
_HAS_WORK = select(
    or_(
        exists().where(tickets.c.user_id == bindparam("user_id")),
        exists().where(ticket_messages.c.user_id == bindparam("user_id")),
    )
)
_ROLES = select(roles).order_by(roles.c.id)
_STAFF = select(*PUBLIC).where(users.c.role_id.is_not(None)).order_by(users.c.id)
_ROLE = select(roles.c.id).where(roles.c.id == bindparam("role_id"))
_END_SESSIONS = delete(web_sessions).where(web_sessions.c.user_id == bindparam("user_id"))

_lister = Lister(
    Listing(
        table=users,
        columns=PUBLIC,
        filters={
            "id": AnyOf(users.c.id),
            "email": AnyOf(func.lower(users.c.email), transform=str.lower),
            "first_name": AnyOf(users.c.first_name),
            "last_name": AnyOf(users.c.last_name),
            "role_id": AnyOf(users.c.role_id),
        },
        sorts={
            "id": users.c.id,
            "email": func.lower(users.c.email),
            "first_name": users.c.first_name,
            "last_name": users.c.last_name,
            "created_at": users.c.created_at,
        },
    )
)
_by_ids = InLookup(lambda where: select(*PUBLIC).where(where).order_by(users.c.id), users.c.id)
_roles_by_ids = InLookup(lambda where: select(roles).where(where), roles.c.id)
# INSERT / UPDATE / DELETE by id
writer = Writer(users)


async def get(conn: Conn, user_id: int, *, for_update: bool = False) -> Row | None:
    statement = _GET_FOR_UPDATE if for_update else _GET
    return await conn.fetch_one(statement, {"user_id": user_id})


async def page(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await _lister.page(conn, query)


async def by_ids(conn: Conn, ids: Sequence[int]) -> list[Row]:
    return await _by_ids.fetch(conn, ids)


async def id_by_email(conn: Conn, email: str) -> int | None:
    user_id: int | None = await conn.fetch_value(_ID_BY_EMAIL, {"email": email.lower()})
    return user_id


async def user_exists(conn: Conn, user_id: int) -> bool:
    return await get(conn, user_id) is not None


async def is_staff(conn: Conn, user_id: int) -> bool | None:
    """True for staff, False for a customer, None when there is no such user."""
    row = await conn.fetch_one(_IS_STAFF, {"user_id": user_id})
    return None if row is None else row["role_id"] is not None


async def has_tickets_or_messages(conn: Conn, user_id: int) -> bool:
    return bool(await conn.fetch_value(_HAS_WORK, {"user_id": user_id}))


async def list_roles(conn: Conn) -> list[Row]:
    return await conn.fetch_all(_ROLES)


async def roles_by_ids(conn: Conn, ids: Sequence[int]) -> list[Row]:
    return await _roles_by_ids.fetch(conn, ids)


async def role_exists(conn: Conn, role_id: int) -> bool:
    return await conn.fetch_value(_ROLE, {"role_id": role_id}) is not None


async def staff(conn: Conn) -> list[Row]:
    """Every staff user (a user with a role), oldest first."""
    return await conn.fetch_all(_STAFF)


async def end_sessions(conn: Conn, user_id: int) -> None:
    """Sign the user out of every browser (SPEC 14: a new password ends their sessions)."""
    await conn.execute(_END_SESSIONS, {"user_id": user_id})
