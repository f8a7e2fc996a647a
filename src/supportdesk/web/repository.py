"""All queries of the browser: sessions, sign-in links, presence on tickets, passwords."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert

from supportdesk.db import Conn, Row
from supportdesk.tables import presence, sign_in_links, users, web_sessions

# The session's user with it (every column but the password hash), by the token's hash.
_SESSION = (
    select(
        web_sessions.c.id.label("session_id"),
        web_sessions.c.csrf,
        web_sessions.c.expires_at,
        *(c for c in users.columns if c.name != "password"),
    )
    .select_from(web_sessions.join(users, users.c.id == web_sessions.c.user_id))
    .where(web_sessions.c.token_hash == bindparam("token_hash"))
)
_ADD_SESSION = insert(web_sessions).values(
    {
        name: bindparam(name)
        for name in ("token_hash", "user_id", "csrf", "created_at", "expires_at")
    }
)
_END_SESSION = delete(web_sessions).where(web_sessions.c.id == bindparam("session_id"))
_END_USER_SESSIONS = delete(web_sessions).where(web_sessions.c.user_id == bindparam("user_id"))
_PRUNE_SESSIONS = delete(web_sessions).where(web_sessions.c.expires_at < bindparam("now"))

_LOGIN = select(users.c.id, users.c.password).where(func.lower(users.c.email) == bindparam("email"))
_SET_PASSWORD = (
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(password=bindparam("password"), updated_at=bindparam("now"))
)

_ADD_LINK = insert(sign_in_links).values(
    {name: bindparam(name) for name in ("token_hash", "user_id", "created_at", "expires_at")}
)
_LINK = select(sign_in_links).where(sign_in_links.c.token_hash == bindparam("token_hash"))
# taken once: the UPDATE of a link not yet used is the one step racing uses agree on
_USE_LINK = (
    update(sign_in_links)
    .where(sign_in_links.c.id == bindparam("link_id"), sign_in_links.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_PRUNE_LINKS = delete(sign_in_links).where(sign_in_links.c.expires_at < bindparam("now"))

_PUT_PRESENCE = upsert(presence).values(
    ticket_id=bindparam("ticket_id"),
    user_id=bindparam("user_id"),
    state=bindparam("state"),
    seen_at=bindparam("seen_at"),
)
_SET_PRESENCE = _PUT_PRESENCE.on_conflict_do_update(
    index_elements=[presence.c.ticket_id, presence.c.user_id],
    set_={"state": _PUT_PRESENCE.excluded.state, "seen_at": _PUT_PRESENCE.excluded.seen_at},
)
_LEAVE = delete(presence).where(
    presence.c.ticket_id == bindparam("ticket_id"), presence.c.user_id == bindparam("user_id")
)
_PRESENT = (
    select(
        presence.c.user_id, presence.c.state, users.c.first_name, users.c.last_name, users.c.email
    )
    .select_from(presence.join(users, users.c.id == presence.c.user_id))
    .where(presence.c.ticket_id == bindparam("ticket_id"), presence.c.seen_at >= bindparam("since"))
    .order_by(presence.c.seen_at)
)
_PRUNE_PRESENCE = delete(presence).where(presence.c.seen_at < bindparam("before"))


async def session(conn: Conn, token_hash: str) -> Row | None:
    return await conn.fetch_one(_SESSION, {"token_hash": token_hash})


async def add_session(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(_ADD_SESSION, values)


async def end_session(conn: Conn, session_id: int) -> None:
    await conn.execute(_END_SESSION, {"session_id": session_id})


async def end_user_sessions(conn: Conn, user_id: int) -> None:
    await conn.execute(_END_USER_SESSIONS, {"user_id": user_id})


async def login(conn: Conn, email: str) -> Row | None:
    """The user's id and password hash, by e-mail address (case-insensitively)."""
    return await conn.fetch_one(_LOGIN, {"email": email.lower()})


async def set_password(conn: Conn, user_id: int, password_hash: str, now: str) -> bool:
    params = {"user_id": user_id, "password": password_hash, "now": now}
    return await conn.execute(_SET_PASSWORD, params) == 1


async def add_link(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(_ADD_LINK, values)


async def link(conn: Conn, token_hash: str) -> Row | None:
    return await conn.fetch_one(_LINK, {"token_hash": token_hash})


async def use_link(conn: Conn, link_id: int, now: str) -> bool:
    """True for the one caller that marks the link used."""
    return await conn.execute(_USE_LINK, {"link_id": link_id, "now": now}) == 1


async def set_presence(conn: Conn, ticket_id: int, user_id: int, state: str, now: str) -> None:
    params = {"ticket_id": ticket_id, "user_id": user_id, "state": state, "seen_at": now}
    await conn.execute(_SET_PRESENCE, params)


async def leave(conn: Conn, ticket_id: int, user_id: int) -> None:
    await conn.execute(_LEAVE, {"ticket_id": ticket_id, "user_id": user_id})


async def present(conn: Conn, ticket_id: int, since: str) -> list[Row]:
    return await conn.fetch_all(_PRESENT, {"ticket_id": ticket_id, "since": since})


async def prune(conn: Conn, now: str, presence_before: str) -> int:
    """Delete expired sessions and links and presence not renewed since `presence_before`."""
    removed = await conn.execute(_PRUNE_SESSIONS, {"now": now})
    removed += await conn.execute(_PRUNE_LINKS, {"now": now})
    return removed + await conn.execute(_PRUNE_PRESENCE, {"before": presence_before})
