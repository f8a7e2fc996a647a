"""Mail received (SPEC 13): one RFC 5322 message, from the IMAP poller or `mail ingest`, made a
ticket message, or rejected with its reason.

The matching order: the signed reply address; `In-Reply-To`/`References` naming our mails;
`[#<id>]` in the subject when the sender owns that ticket; else a new ticket (and, for an
unknown address, a new customer unless `SUPPORTDESK_MAIL_CREATE_USERS=0`). A reply is taken
from the ticket's owner or a staff user only; it then drives the workflow like an API message
(the owner's sets `customer-reply`). Machine mail (auto-replies, bounces, lists), mail from our
own address and a sender's 21st accepted mail within an hour are refused.

Everything one mail writes (a customer, a ticket, the message and its files, the record of the
mail) commits in one transaction, or nothing does; a rejected mail writes only its record and a
`mail.rejected` event (on the ticket it was meant for, when known, so staff see it in the
history). The record's Message-ID (or the raw mail's SHA-256 when it has none) makes a mail
received twice count once.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from starlette.datastructures import Headers, UploadFile

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database, IntegrityViolation, Row, meta
from supportdesk.errors import ValidationFailed
from supportdesk.events import log
from supportdesk.events.log import Actor, Event
from supportdesk.mail import address, incoming, repository
from supportdesk.ticket_attachments import service as attachments
from supportdesk.ticket_attachments.storage import Storage
from supportdesk.ticket_messages import service as messages
from supportdesk.tickets import service as tickets
from supportdesk.tickets.resource import TICKETS
from supportdesk.users import repository as users
from supportdesk.users import service as users_service
from supportdesk.users.resource import USERS

logger = logging.getLogger("supportdesk.mail")
PER_SENDER_PER_HOUR = 20
MAX_KEY = 200  # longer Message-IDs are recorded by their hash
MAX_MERGE_HOPS = 10
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|antw|tr|rif)\s*(\[\d+\])?\s*:\s*)+", re.I)


async def reply_secret(db: Database, settings: Settings) -> str:
    """`SUPPORTDESK_MAIL_SECRET`, or the one stored in the database (made on first use; the
    first of racing processes wins, so every instance signs alike)."""
    if settings.mail_secret:
        return settings.mail_secret
    return await meta.secret(db, repository.SECRET_KEY)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    reason: str | None = None  # why it was rejected
    ticket_id: int | None = None
    message_id: int | None = None  # the ticket message made of it
    duplicate: bool = False  # received before: this is that time's outcome

    def describe(self) -> str:
        again = " (received before)" if self.duplicate else ""
        if self.accepted:
            return f"accepted: message {self.message_id} on ticket #{self.ticket_id}{again}"
        return f"rejected: {self.reason}{again}"


class _Refuse(Exception):
    def __init__(self, reason: str, ticket_id: int | None = None) -> None:
        super().__init__(reason)
        self.ticket_id = ticket_id


def limits(settings: Settings) -> incoming.Limits:
    return incoming.Limits(
        max_bytes=settings.max_upload_bytes * 2,  # base64 makes files a third larger
        max_attachment_bytes=settings.max_attachment_bytes,
        max_attachments=settings.max_attachments,
    )


@dataclass(frozen=True)
class Inbox:
    """Where mail is taken in: this process's database, settings and file storage, and the
    secret that signs reply addresses (`reply_secret`)."""

    db: Database
    settings: Settings
    storage: Storage
    secret: str

    async def ingest(self, raw: bytes, size: int | None = None) -> Outcome:
        """Take one mail; never raises for anything about the mail itself. `size`: the whole
        mail's size when `raw` holds only its start (or only its header fields), because it
        was too large to read whole."""
        bounds = limits(self.settings)
        size = len(raw) if size is None else size
        if size > bounds.max_bytes:
            found = incoming.envelope(raw, bounds)
            reason = f"message too large ({size} bytes, more than {bounds.max_bytes})"
            key = _key(found.message_id, raw)
            return await _reject(self.db, key, found.sender, found.subject, reason, None)
        try:
            mail = incoming.parse(raw, bounds)
        except incoming.Rejected as exc:
            return await _reject(self.db, _key(None, raw), "", "", str(exc), None)
        key = _key(mail.message_id, raw)
        async with self.db.read() as conn:
            before = await repository.received(conn, key)
        if before is not None:
            return _earlier(before)
        try:
            try:
                return await self._settle(mail, key)
            except IntegrityViolation:
                # the same mail taken by a racing process, or its sender added meanwhile
                async with self.db.read() as conn:
                    before = await repository.received(conn, key)
                if before is not None:
                    return _earlier(before)
                return await self._settle(mail, key)
        except Exception as exc:
            # Something about this mail that no check above foresaw: it is rejected, so that
            # it cannot stop the poller; if the database itself fails, so does this record,
            # and the mail is taken again later.
            logger.exception("mail %s from %s could not be taken", key, mail.sender)
            reason = f"the mail could not be taken ({type(exc).__name__})"
            return await _reject(self.db, key, mail.sender, mail.subject, reason, None)

    async def _settle(self, mail: incoming.Inbound, key: str) -> Outcome:
        try:
            return await self._accept(mail, key)
        except _Refuse as exc:
            return await _reject(self.db, key, mail.sender, mail.subject, str(exc), exc.ticket_id)

    async def _accept(self, mail: incoming.Inbound, key: str) -> Outcome:
        settings, secret = self.settings, self.secret
        ours = address.sender(settings.mail_from)
        if mail.automatic is not None:
            raise _Refuse(f"automatic mail ({mail.automatic})")
        if mail.sender == ours.address or (
            mail.sender.startswith(f"{ours.local}+") and mail.sender.endswith(f"@{ours.domain}")
        ):
            raise _Refuse("mail from our own address (a loop)")
        text = mail.text
        if not text and not mail.attachments:
            raise _Refuse("the mail has no text and no attachments")
        if len(text) > settings.max_message_length:
            raise _Refuse(f"the text is longer than {settings.max_message_length} characters")
        files = [_upload(a) for a in mail.attachments]
        async with (
            attachments.pending_uploads(self.storage, files, settings) as uploads,
            self.db.transaction() as conn,
        ):
            since = timestamps.ago(timedelta(hours=1))
            if await repository.accepted_since(conn, mail.sender, since) >= PER_SENDER_PER_HOUR:
                raise _Refuse(
                    f"more than {PER_SENDER_PER_HOUR} mails from {mail.sender} in an hour"
                )
            author = await _author(conn, mail.sender)
            try:
                wanted = await _match(conn, ours, mail, secret, author)
            except address.BadSignature as exc:
                raise _Refuse(str(exc)) from None
            events: list[Event | None] = []
            now = timestamps.now()  # a new ticket and its first message: one moment
            if wanted is None:
                if author is None:
                    if not settings.mail_create_users:
                        raise _Refuse(
                            f"{mail.sender} is not a user (SUPPORTDESK_MAIL_CREATE_USERS=0)"
                        )
                    author = await _new_customer(conn, mail)
                    events.append(log.created(USERS, author))
                values = {"subject": _subject(mail.subject), "user_id": author["id"]}
                ticket = await tickets.insert_ticket(conn, settings, values, now)
                events.append(log.created(TICKETS, ticket, ticket["id"]))
            else:
                ticket = await _writable(conn, wanted)
                if author is None:
                    raise _Refuse(f"{mail.sender} is not a user of this desk", ticket["id"])
                if author["id"] != ticket["user_id"] and author["role_id"] is None:
                    raise _Refuse(
                        f"{mail.sender} may not write to ticket #{ticket['id']} "
                        "(neither its customer nor staff)",
                        ticket["id"],
                    )
            row, made = await messages.insert_message(
                conn, settings, ticket, author["id"], text, uploads, now
            )
            events.extend(made)
            recorded = await _record(conn, key, mail.sender, None, ticket["id"], row["id"], now)
            if recorded is None:  # a racing process took the same mail: roll this one back
                raise IntegrityViolation("this mail was recorded meanwhile")
            await log.record(conn, Actor("email", author["id"]), events)
            return Outcome(True, None, ticket["id"], row["id"])


def _key(message_id: str | None, raw: bytes) -> str:
    """What makes a mail received twice count once: its Message-ID, hashed when too long for
    the record (255 characters), or the whole mail's hash when it has none."""
    if message_id is None:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    if len(message_id) > MAX_KEY:
        return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
    return message_id


def _earlier(row: Row) -> Outcome:
    return Outcome(
        row["state"] == repository.ACCEPTED,
        row["reason"],
        row["ticket_id"],
        row["ticket_message_id"],
        duplicate=True,
    )


async def _match(
    conn: Conn, ours: address.Sender, mail: incoming.Inbound, secret: str, author: Row | None
) -> int | None:
    """The ticket this mail answers, by SPEC 13's order, or None for a new ticket. `author`:
    the sender's user, if any (the subject's number counts only for the ticket's owner)."""
    signed = address.reply_ticket(ours, mail.recipients, secret)
    if signed is not None:
        if await tickets.tickets_by_ids(conn, [signed]):
            return signed
        raise _Refuse(f"ticket #{signed} no longer exists")
    for ticket_id in address.referenced_tickets(ours, mail.references):
        if await tickets.tickets_by_ids(conn, [ticket_id]):
            return ticket_id
    numbered = address.subject_ticket(mail.subject)
    if numbered is not None:
        found = await tickets.tickets_by_ids(conn, [numbered])
        if found and author is not None and found[0]["user_id"] == author["id"]:
            return numbered
    return None


async def _writable(conn: Conn, ticket_id: int) -> Row:
    """The ticket, locked; a merged one's target instead (followed as far as it goes)."""
    for _ in range(MAX_MERGE_HOPS):
        ticket = await tickets.lock_for_reply(conn, ticket_id)
        if ticket is None:
            raise _Refuse(f"ticket #{ticket_id} no longer exists")
        if ticket["merged_into"] is None:
            return ticket
        ticket_id = ticket["merged_into"]
    raise _Refuse(f"ticket #{ticket_id} is merged too many times over")


async def _author(conn: Conn, email: str) -> Row | None:
    user_id = await users.id_by_email(conn, email)
    return None if user_id is None else await users.get(conn, user_id)


async def _new_customer(conn: Conn, mail: incoming.Inbound) -> Row:
    """A customer for an unknown sender. One added meanwhile by a racing mail from the same
    address is an IntegrityViolation, which makes `Inbox.ingest` take this mail again (the
    sender is then known)."""
    first, _, last = mail.sender_name.partition(" ")
    values = {
        "email": mail.sender,
        "first_name": first[:255] or None,
        "last_name": last.strip()[:255] or None,
    }
    try:
        return await users_service.insert_user(conn, values)
    except ValidationFailed as exc:
        raise IntegrityViolation(f"{mail.sender} was added meanwhile") from exc


def _subject(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip()[:255] or "(no subject)"


def _upload(attachment: incoming.Attachment) -> UploadFile:
    return UploadFile(
        io.BytesIO(attachment.data),
        size=len(attachment.data),
        filename=attachment.filename,
        headers=Headers({"content-type": attachment.content_type}),
    )


async def _record(
    conn: Conn,
    key: str,
    sender: str,
    reason: str | None,
    ticket_id: int | None,
    message_id: int | None,
    at: str,
) -> int | None:
    """The record of a mail received: accepted, or rejected for `reason`. None when this
    Message-ID was recorded already."""
    return await repository.receive(
        conn,
        {
            "message_id": key,
            "sender": sender,
            "state": repository.ACCEPTED if reason is None else repository.REJECTED,
            "reason": reason,
            "ticket_id": ticket_id,
            "ticket_message_id": message_id,
            "received_at": at,
        },
    )


async def _reject(
    db: Database, key: str, sender: str, subject: str, reason: str, ticket_id: int | None
) -> Outcome:
    """Record a refused mail and its `mail.rejected` event (once per Message-ID)."""
    async with db.transaction() as conn:
        row_id = await _record(conn, key, sender, reason, ticket_id, None, timestamps.now())
        if row_id is None:
            before = await repository.received(conn, key)
            assert before is not None
            return _earlier(before)
        data = {"message_id": key, "sender": sender, "subject": subject, "reason": reason}
        await log.record(
            conn, Actor("email"), [Event("mail.rejected", "mail", row_id, data, ticket_id)]
        )
    return Outcome(False, reason, ticket_id)
