"""All queries of e-mail: the outbox, the record of mail received and the people mail goes to.
(The mail job's event cursor and the mail secret are `meta` values: `supportdesk.db.meta`.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from supportdesk.db import Conn, Row
from supportdesk.db.listing import InLookup
from supportdesk.tables import mail_inbox, mail_outbox, users

PENDING, SENT, FAILED = "pending", "sent", "failed"
ACCEPTED, REJECTED = "accepted", "rejected"
CURSOR_KEY = "mail_cursor"
SECRET_KEY = "mail_secret"  # noqa: S105 (the name of the `meta` row, not a secret)

# The advisory lock of one sender's mail: (this key, the hash of the address).
SENDER_LOCK_KEY = 0x5D_3A11
_LOCK_SENDER = select(
    func.pg_advisory_xact_lock(SENDER_LOCK_KEY, func.hashtext(bindparam("sender")))
)

_OUTBOX_COLUMNS = (
    "event_id",
    "ticket_id",
    "user_id",
    "recipient",
    "notice",
    "message_id",
    "content",
    "state",
    "next_attempt_at",
    "error",
    "created_at",
)
_ENQUEUE = (
    insert(mail_outbox)
    .values({name: bindparam(name) for name in _OUTBOX_COLUMNS})
    .on_conflict_do_nothing(index_elements=[mail_outbox.c.event_id, mail_outbox.c.recipient])
)
_DUE = (
    select(
        mail_outbox.c.id,
        mail_outbox.c.recipient,
        mail_outbox.c.content,
        mail_outbox.c.attempts,
        # the recipient still a user who takes mail (deleted or turned off since: not sent);
        # a sign-in link the user asked for is no notification, and goes to them regardless
        case(
            (users.c.id.is_(None), False),
            (mail_outbox.c.notice == "sign_in", True),
            else_=func.coalesce(users.c.email_notifications, False),
        ).label("wanted"),
    )
    .select_from(mail_outbox.outerjoin(users, users.c.id == mail_outbox.c.user_id))
    .where(mail_outbox.c.next_attempt_at <= bindparam("now"))
    .order_by(mail_outbox.c.next_attempt_at, mail_outbox.c.id)
    .limit(bindparam("limit"))
)
_FINISH = (
    update(mail_outbox)
    .where(mail_outbox.c.id == bindparam("row_id"))
    .values(
        state=bindparam("state"),
        attempts=mail_outbox.c.attempts + 1,
        next_attempt_at=bindparam("next_attempt_at"),
        sent_at=bindparam("sent_at"),
        error=bindparam("error"),
    )
)
_STAFF = (
    select(users)
    .where(users.c.role_id.is_not(None), users.c.email_notifications)
    .order_by(users.c.id)
)
_RECEIVED = select(mail_inbox).where(mail_inbox.c.message_id == bindparam("message_id"))
_ACCEPTED_SINCE = select(func.count()).where(
    mail_inbox.c.sender == bindparam("sender"),
    mail_inbox.c.state == ACCEPTED,
    mail_inbox.c.received_at >= bindparam("since"),
)
_RECEIVED_MAIL = (mail_inbox.c.state == ACCEPTED, mail_inbox.c.message_id.not_like("sha256:%"))
_inbound = InLookup(
    lambda where: (
        select(mail_inbox.c.ticket_id, mail_inbox.c.message_id)
        .where(where, *_RECEIVED_MAIL)
        .order_by(mail_inbox.c.ticket_id, mail_inbox.c.id)
    ),
    mail_inbox.c.ticket_id,
)
_PRUNE_OUTBOX = delete(mail_outbox).where(
    mail_outbox.c.id.in_(
        select(mail_outbox.c.id)
        .where(mail_outbox.c.created_at < bindparam("older_than"), mail_outbox.c.state != PENDING)
        .limit(bindparam("limit"))
    )
)
_PRUNE_INBOX = delete(mail_inbox).where(
    mail_inbox.c.id.in_(
        select(mail_inbox.c.id)
        .where(mail_inbox.c.received_at < bindparam("older_than"))
        .limit(bindparam("limit"))
    )
)
_RECEIVE = (
    insert(mail_inbox)
    .values(
        {
            name: bindparam(name)
            for name in (
                "message_id",
                "sender",
                "state",
                "reason",
                "ticket_id",
                "ticket_message_id",
                "received_at",
            )
        }
    )
    .on_conflict_do_nothing(index_elements=[mail_inbox.c.message_id])
    .returning(mail_inbox.c.id)
)


async def enqueue(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Add pending mails (`_OUTBOX_COLUMNS` each); one already there for the same event and
    recipient is kept as it is."""
    if rows:
        await conn.execute_many(_ENQUEUE, rows)


async def due(conn: Conn, now: str, limit: int) -> list[Row]:
    return await conn.fetch_all(_DUE, {"now": now, "limit": limit})


async def finish(
    conn: Conn,
    row_id: int,
    state: str,
    *,
    next_attempt_at: str | None = None,
    sent_at: str | None = None,
    error: str | None = None,
) -> None:
    """Count one attempt of a mail and how it ended: `sent`, `failed` for good, or still
    `pending` until `next_attempt_at`."""
    await conn.execute(
        _FINISH,
        {
            "row_id": row_id,
            "state": state,
            "next_attempt_at": next_attempt_at,
            "sent_at": sent_at,
            "error": error,
        },
    )


async def notified_staff(conn: Conn) -> list[Row]:
    """Every staff user who takes mail."""
    return await conn.fetch_all(_STAFF)


async def received(conn: Conn, message_id: str) -> Row | None:
    return await conn.fetch_one(_RECEIVED, {"message_id": message_id})


async def accepted_since(conn: Conn, sender: str, since: str) -> int:
    """How many of the sender's mails were accepted since then. On PostgreSQL the sender is
    locked first, to the end of the transaction, so that racing mail from one sender is
    counted one after another (SQLite's write transaction excludes every other writer)."""
    if conn.dialect == "postgresql":
        await conn.fetch_value(_LOCK_SENDER, {"sender": sender})
    count: int = await conn.fetch_value(_ACCEPTED_SINCE, {"sender": sender, "since": since})
    return count


async def receive(conn: Conn, values: dict[str, Any]) -> int | None:
    """Record a mail received; None when its Message-ID was recorded already."""
    row_id: int | None = await conn.fetch_value(_RECEIVE, values)
    return row_id


async def inbound(conn: Conn, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    """The Message-IDs of the mail accepted onto each of these tickets, oldest first."""
    found: dict[int, list[str]] = {}
    for row in await _inbound.fetch(conn, ticket_ids):
        found.setdefault(row["ticket_id"], []).append(row["message_id"])
    return found


async def prune(conn: Conn, older_than: str, limit: int) -> int:
    """Delete up to `limit` records of mail sent or failed, and as many of mail received,
    from before `older_than`; returns how many. Mail still pending is kept."""
    params = {"older_than": older_than, "limit": limit}
    return await conn.execute(_PRUNE_OUTBOX, params) + await conn.execute(_PRUNE_INBOX, params)
