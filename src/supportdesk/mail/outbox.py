"""The mail outbox (SPEC 13): notices from the event log, sent by the `mail_out` job.

`fan_out` reads the events after the mail cursor and adds one pending mail per notice and
recipient, rendered in full, together with the advanced cursor in one transaction: a crash
repeats the whole batch or none of it, and the outbox's UNIQUE (event, recipient) turns a
repeat into nothing. `send_due` sends what is due over one SMTP session and records each mail
as soon as the server took it, so a crash resends at most the one mail in flight.

Who is told what:
- the customer (the ticket's owner): the ticket opened, every public reply by anyone else
  (its text, attachments linked), the ticket closed (by anyone, autoclose included);
- staff: a new ticket and every customer message go to the assignee, or to every staff user
  while it is unassigned; an assignment goes to the new assignee.
Internal notes are never mailed; nobody is mailed their own message; users with
`email_notifications` off are mailed nothing. A customer message written with its ticket (same
transaction, same moment) is in the staff's new-ticket mail rather than a mail of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Row, meta
from supportdesk.events import log
from supportdesk.events.log import Selection
from supportdesk.mail import repository, smtp
from supportdesk.mail.compose import Composer, Notice
from supportdesk.ticket_attachments import repository as attachments
from supportdesk.ticket_messages import repository as messages
from supportdesk.tickets import service as tickets
from supportdesk.users import service as users

logger = logging.getLogger("supportdesk.mail")
NOT_WANTED = "not sent: the recipient was deleted or turned mail off since it was queued"
FAN_OUT_BATCH = 500
SEND_BATCH = 100
# events older than this when first read are not mailed (mail switched on after a pause)
STALE = timedelta(days=1)
# the waits before a deferred (4xx) mail's next attempts; after the last it has failed
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240, 480, 720, 1440))
SELECTION = Selection(names=("ticket.created", "ticket.updated", "ticket_message.created"))
PRUNE_BATCH = 5000


async def fan_out(db: Database, settings: Settings, composer: Composer) -> bool:
    """Add the mails of up to `FAN_OUT_BATCH` new events. True when a full batch was read
    (more may follow). The first call only sets the cursor: history is never mailed.

    The events and what the notices need are read, and the mails rendered, outside the write
    transaction (on SQLite it holds the one write lock every API write waits for); the write
    then adds the rows and moves the cursor only if the cursor is still where the read began,
    so a second holder of the job (a lease taken over) adds nothing twice."""
    async with db.read() as conn:
        cursor = await meta.get(conn, repository.CURSOR_KEY)
        newest = await log.newest_id(conn)
        if cursor is not None and int(cursor) >= newest:
            return False
        events = (
            []
            if cursor is None
            else await log.read_stored(conn, int(cursor), FAN_OUT_BATCH, SELECTION)
        )
        context = await _Context.load(conn, events) if events else None
    if cursor is None:
        async with db.transaction() as conn:
            await meta.add(conn, repository.CURSOR_KEY, str(newest))
        return False
    if context is None:
        return False
    rows = _rows(settings, composer, context, events)
    async with db.transaction() as conn:
        if await meta.get(conn, repository.CURSOR_KEY) != cursor:
            return True  # moved meanwhile: read again from where it is now
        await repository.enqueue(conn, rows)
        await meta.put(conn, repository.CURSOR_KEY, str(events[-1]["id"]))
    return len(events) == FAN_OUT_BATCH


def _rows(
    settings: Settings, composer: Composer, context: _Context, events: list[Row]
) -> list[dict[str, Any]]:
    """The outbox rows of these events' notices; events over a day old are skipped (logged)."""
    now = datetime.now(UTC)
    fresh = timestamps.to_text(now - STALE)
    rows: list[dict[str, Any]] = []
    stale = 0
    for event in events:
        if event["occurred_at"] < fresh:
            stale += 1
            continue
        rows.extend(_row(composer, notice, now) for notice in _notices(settings, context, event))
    if stale:
        logger.warning("mail: %d event(s) over a day old when read were not mailed", stale)
    return rows


def _row(composer: Composer, notice: Notice, now: datetime) -> dict[str, Any]:
    """The outbox row of a notice: pending, or failed at once when it cannot be put together
    (a replaced template that breaks, an address no header can carry), so that one bad notice
    never holds up the others."""
    at = timestamps.to_text(now)
    row = {
        "event_id": notice.event_id,
        "ticket_id": notice.ticket["id"],
        "user_id": notice.recipient["id"],
        "recipient": notice.recipient["email"].lower(),
        "notice": notice.notice,
        "created_at": at,
    }
    try:
        content = composer.compose(notice, now)
    except Exception as exc:
        logger.exception("mail: notice %s of event %s not composed", notice.notice, row["event_id"])
        error = f"could not be composed: {type(exc).__name__}: {exc}"
        return {**row, "message_id": "", "content": "", "state": repository.FAILED,
                "next_attempt_at": None, "error": error}  # fmt: skip
    return {**row, "message_id": _message_id(content), "content": content,
            "state": repository.PENDING, "next_attempt_at": at, "error": None}  # fmt: skip


def _message_id(content: str) -> str:
    start = content.index("\r\nMessage-ID: ") + len("\r\nMessage-ID: ")
    return content[start : content.index("\r\n", start)]


def _parsed(value: str | None) -> Any:
    """An event's stored `data` or `changes` as Python values."""
    return None if value is None else orjson.loads(value)


@dataclass
class _Context:
    """What the notices of a batch of events need, read in a few queries."""

    tickets: dict[int, Row]
    users: dict[int, Row]
    attachments: dict[int, list[Row]]
    # the public messages written with each new ticket (same `created_at`)
    opening: dict[int, list[Row]]
    received: dict[int, list[str]]  # the mail received onto each ticket (its Message-IDs)
    staff: list[Row] = field(default_factory=list)

    @classmethod
    async def load(cls, conn: Conn, events: list[Row]) -> _Context:
        ticket_ids = sorted({e["ticket_id"] for e in events if e["ticket_id"] is not None})
        found = {t["id"]: t for t in await tickets.tickets_by_ids(conn, ticket_ids)}
        user_ids: set[int] = set()
        for ticket in found.values():
            user_ids.add(ticket["user_id"])
            if ticket["assigned_to"] is not None:
                user_ids.add(ticket["assigned_to"])
        message_ids = []
        new_tickets = []
        for event in events:
            data = _parsed(event["data"])
            if event["event"] == "ticket_message.created":
                user_ids.add(data["user_id"])
                message_ids.append(event["resource_id"])
            elif event["event"] == "ticket.updated" and data.get("assigned_to") is not None:
                user_ids.add(data["assigned_to"])
            elif event["event"] == "ticket.created" and event["ticket_id"] in found:
                new_tickets.append(found[event["ticket_id"]])
        opening: dict[int, list[Row]] = {t["id"]: [] for t in new_tickets}
        if new_tickets:
            for row in await messages.by_ticket_ids(conn, list(opening)):
                if (
                    not row["internal"]
                    and row["created_at"] == found[row["ticket_id"]]["created_at"]
                ):
                    opening[row["ticket_id"]].append(row)
                    message_ids.append(row["id"])
        by_message: dict[int, list[Row]] = {}
        for row in await attachments.by_message_ids(conn, sorted(set(message_ids))):
            by_message.setdefault(row["message_id"], []).append(row)
        people = {u["id"]: u for u in await users.users_by_ids(conn, sorted(user_ids))}
        staff = await repository.notified_staff(conn) if _needs_staff(events, found) else []
        received = await repository.inbound(conn, sorted(found))
        return cls(found, people, by_message, opening, received, staff)


def _needs_staff(events: list[Row], found: dict[int, Row]) -> bool:
    return any(
        e["event"] in ("ticket.created", "ticket_message.created")
        and e["ticket_id"] in found
        and found[e["ticket_id"]]["assigned_to"] is None
        for e in events
    )


def _name(user: Row | None) -> str:
    if user is None:
        return "Support"
    return " ".join(p for p in (user["first_name"], user["last_name"]) if p) or user["email"]


def _notices(settings: Settings, context: _Context, event: Row) -> Iterator[Notice]:
    ticket = context.tickets.get(event["ticket_id"]) if event["ticket_id"] is not None else None
    if ticket is None:  # deleted since
        return
    owner = context.users.get(ticket["user_id"])
    base = settings.base_url
    name = event["event"]
    data = _parsed(event["data"])

    def notice(kind: str, recipient: Row | None, **values: Any) -> Iterator[Notice]:
        if recipient is None or not recipient["email_notifications"]:
            return
        side = "portal" if recipient["id"] == ticket["user_id"] else "console"
        links = [
            {"filename": a["filename"], "url": f"{base}/{side}/attachments/{a['id']}"}
            for a in values.pop("files", [])
        ]
        yield Notice(
            kind,
            event["id"],
            ticket,
            recipient,
            f"{base}/{side}/tickets/{ticket['id']}",
            {"attachments": links, "customer_name": _name(owner), **values},
            tuple(context.received.get(ticket["id"], ())),
        )

    def staff(exclude: int) -> list[Row]:
        if ticket["assigned_to"] is not None:
            assignee = context.users.get(ticket["assigned_to"])
            chosen = [assignee] if assignee is not None else []
        else:
            chosen = context.staff
        return [user for user in chosen if user["id"] != exclude]

    if name == "ticket.created":
        yield from notice("opened", owner)
        opening = context.opening.get(ticket["id"], [])
        text = "\n\n".join(m["message"] for m in opening if m["message"])
        files = [a for m in opening for a in context.attachments.get(m["id"], [])]
        for user in staff(exclude=ticket["user_id"]):
            yield from notice("new_ticket", user, text=text, files=files)
    elif name == "ticket_message.created":
        if data["internal"]:
            return
        author_id = data["user_id"]
        files = context.attachments.get(event["resource_id"], [])
        if author_id == ticket["user_id"]:
            if data["created_at"] == ticket["created_at"]:
                return  # in the new-ticket mail
            for user in staff(exclude=author_id):
                yield from notice("customer_reply", user, text=data["message"], files=files)
        else:
            author = context.users.get(author_id)
            yield from notice(
                "reply", owner, text=data["message"], files=files, author_name=_name(author)
            )
    elif name == "ticket.updated":
        changes = _parsed(event["changes"]) or {}
        status = changes.get("status")
        if status is not None and status[1] == settings.closed_status:
            yield from notice("closed", owner)
        assigned = changes.get("assigned_to")
        new = None if assigned is None else assigned[1]
        themselves = event["actor_type"] == "user" and event["actor_id"] == new
        if new is not None and not themselves:
            yield from notice("assigned", context.users.get(new))


async def enqueue_sign_in(db: Database, composer: Composer, recipient: Row, url: str) -> None:
    """Queue the mail of a sign-in link (it belongs to no event); sent like any other."""
    now = datetime.now(UTC)
    at = timestamps.to_text(now)
    content = composer.sign_in(recipient, url, now)
    row = {"event_id": None, "ticket_id": None, "user_id": recipient["id"],
           "recipient": recipient["email"].lower(), "notice": "sign_in",
           "message_id": _message_id(content), "content": content,
           "state": repository.PENDING, "next_attempt_at": at, "error": None,
           "created_at": at}  # fmt: skip
    async with db.transaction() as conn:
        await repository.enqueue(conn, [row])


async def send_due(db: Database, target: smtp.SmtpTarget, composer: Composer) -> int:
    """Try up to `SEND_BATCH` due mails over one session; returns how many were due.
    smtp.Unavailable when the server cannot be used now (the mails stay due)."""
    async with db.read() as conn:
        rows = await repository.due(conn, timestamps.now(), SEND_BATCH)
    if not rows:
        return 0
    unwanted = [row for row in rows if not row["wanted"]]
    for row in unwanted:
        await _finish(db, row["id"], repository.FAILED, error=NOT_WANTED)
    rows = [row for row in rows if row["wanted"]]
    if not rows:
        return len(unwanted)
    envelope = composer.sender.address
    async with smtp.Connection(target, composer.sender.domain) as connection:
        for row in rows:
            try:
                await connection.send(row["content"].encode(), envelope, [row["recipient"]])
            except smtp.Refused as exc:
                await _finish(db, row["id"], repository.FAILED, error=str(exc))
            except smtp.Deferred as exc:
                await _defer(db, row, str(exc))
            else:
                await _finish(db, row["id"], repository.SENT, sent_at=timestamps.now())
    return len(rows) + len(unwanted)


async def prune(db: Database, older_than: timedelta) -> int:
    """Delete the records of mail sent or failed, and of mail received, from more than
    `older_than` ago; returns how many. Mail still waiting to be sent is kept."""
    cutoff = timestamps.ago(older_than)
    return await db.delete_in_batches(
        lambda conn, limit: repository.prune(conn, cutoff, limit), PRUNE_BATCH
    )


async def _finish(db: Database, row_id: int, state: str, **values: Any) -> None:
    async with db.transaction() as conn:
        await repository.finish(conn, row_id, state, **values)


async def _defer(db: Database, row: Row, error: str) -> None:
    attempt = row["attempts"]  # attempts before this one
    if attempt >= len(RETRY_DELAYS):
        await _finish(db, row["id"], repository.FAILED, error=error)
        return
    when = timestamps.to_text(datetime.now(UTC) + RETRY_DELAYS[attempt])
    await _finish(db, row["id"], repository.PENDING, next_attempt_at=when, error=error)
