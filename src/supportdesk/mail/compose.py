"""Outgoing mail (SPEC 13): a notice rendered from templates into an RFC 5322 message.

The message is put together here from stdlib encoders (`email.header`, `email.utils`,
`binascii`'s quoted-printable) rather than through `EmailMessage`: its header objects parse
every value they are given, which made a notice cost 3.4 ms of CPU (py-spy and cProfile: two
thirds in `headerregistry`); this way it costs a few dozen microseconds, and the tests read
every mail back with `email`'s own parser.

Templates are Jinja2 files, `<notice>.txt` for the text part and `<notice>.html` for the HTML
part (autoescaped): the built-in ones in `templates/`, each replaceable by a file of the same
name in `SUPPORTDESK_MAIL_TEMPLATES`. Every mail of a ticket has the subject `[#<id>] <subject>`;
its `References` name the ticket's root id and then the mail received onto the ticket (the
customer's own Message-IDs, which the customer's mail client threads by), its `In-Reply-To` the
latest of them (Gmail and Thunderbird thread on those and the subject; Outlook on
`Thread-Topic` and `Thread-Index`, which stay the same for the whole ticket); replies go to the
signed address, and `Auto-Submitted: auto-replied` keeps vacation responders quiet.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from supportdesk.mail.address import Sender

NOTICES = ("opened", "reply", "closed", "new_ticket", "customer_reply", "assigned", "sign_in")
# the mail received named in `References` at most (the latest): a header stays short
MAX_REFERENCES = 10
# 1601-01-01 to 1970-01-01 in 100 ns steps, for Outlook's FILETIME
_FILETIME_EPOCH = 116444736000000000


@dataclass(frozen=True)
class Notice:
    """One mail to one person about one event."""

    notice: str  # one of NOTICES: the template's name
    event_id: int
    ticket: Mapping[str, Any]
    recipient: Mapping[str, Any]  # a users row
    url: str  # the ticket's page for this recipient
    context: Mapping[str, Any] = field(default_factory=dict)  # text, attachments, names
    received: tuple[str, ...] = ()  # Message-IDs of the mail received onto the ticket, oldest first


class Composer:
    def __init__(self, sender: Sender, reply_secret: str, templates: str | None = None) -> None:
        self.sender = sender
        self._secret = reply_secret
        loaders: list[Any] = [PackageLoader("supportdesk.mail", "templates")]
        if templates is not None:
            loaders.insert(0, FileSystemLoader(Path(templates)))
        # templates are read once (no stat per mail); the text part is plain text: nothing in
        # it is markup, so nothing is escaped
        options: dict[str, Any] = {"loader": ChoiceLoader(loaders), "auto_reload": False}
        self._text = Environment(**options, undefined=StrictUndefined)  # noqa: S701
        self._html = Environment(**options, autoescape=True, undefined=StrictUndefined)

    def compose(self, notice: Notice, now: datetime) -> str:
        """The whole message, CRLF line ends, 7-bit (non-ASCII headers as RFC 2047 encoded
        words, both parts quoted-printable UTF-8), as SMTP's DATA carries it."""
        ticket = notice.ticket
        subject = f"[#{ticket['id']}] {ticket['subject']}"
        values = {
            "ticket": ticket,
            "recipient": notice.recipient,
            "url": notice.url,
            "subject": subject,
            "desk": self.sender.name or self.sender.address,
            **notice.context,
        }
        text = self._text.get_template(f"{notice.notice}.txt").render(values)
        html = self._html.get_template(f"{notice.notice}.html").render(values)
        recipient = notice.recipient
        name = " ".join(p for p in (recipient["first_name"], recipient["last_name"]) if p)
        root = self.sender.root_id(ticket["id"])
        thread = (root, *notice.received[-MAX_REFERENCES:])
        reply_to = self.sender.reply_to(ticket["id"], self._secret)
        message_id = self.sender.message_id(ticket["id"], notice.event_id, recipient["id"])
        headers = [
            ("From", _address(self.sender.name, self.sender.address)),
            ("To", _address(name, recipient["email"])),
            ("Subject", _text(subject)),
            ("Date", format_datetime(now)),
            ("Message-ID", message_id),
            ("In-Reply-To", thread[-1]),
            ("References", "\n ".join(thread)),  # folded: one id per line
            ("Reply-To", _address(self.sender.name, reply_to)),
            ("Auto-Submitted", "auto-replied"),
            ("Thread-Topic", _text(subject)),
            ("Thread-Index", thread_index(root, ticket["created_at"])),
            ("X-Supportdesk-Ticket", str(ticket["id"])),
        ]
        return _assemble(headers, text, html)

    def sign_in(self, recipient: Mapping[str, Any], url: str, now: datetime) -> str:
        """The mail with a one-time sign-in link (SPEC 14): no ticket, no reply address."""
        values = {"recipient": recipient, "url": url, "subject": "Your sign-in link",
                  "desk": self.sender.name or self.sender.address}  # fmt: skip
        text = self._text.get_template("sign_in.txt").render(values)
        html = self._html.get_template("sign_in.html").render(values)
        name = " ".join(p for p in (recipient["first_name"], recipient["last_name"]) if p)
        headers = [
            ("From", _address(self.sender.name, self.sender.address)),
            ("To", _address(name, recipient["email"])),
            ("Subject", _text(f"{values['desk']}: your sign-in link")),
            ("Date", format_datetime(now)),
            ("Message-ID", make_msgid(domain=self.sender.domain)),
            ("Auto-Submitted", "auto-generated"),
        ]
        return _assemble(headers, text, html)


def _assemble(headers: list[tuple[str, str]], text: str, html: str) -> str:
    """The whole message: the headers, then the text and HTML parts (quoted-printable UTF-8)
    as multipart/alternative; CRLF line ends."""
    boundary = f"=_sd_{secrets.token_hex(12)}"
    headers = [
        *headers,
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    lines = [f"{header}: {value}" for header, value in headers]
    for subtype, body in (("plain", text.strip() + "\n"), ("html", html)):
        lines += [
            "",
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: quoted-printable",
            "",
            binascii.b2a_qp(body.encode(), istext=True).decode("ascii"),
        ]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).replace("\r\n", "\n").replace("\n", "\r\n")


def _text(value: str) -> str:
    """An unstructured header value: as it is when ASCII, else RFC 2047 encoded words."""
    if value.isascii():
        return " ".join(value.split())
    return Header(value, "utf-8", maxlinelen=76).encode()


def _address(name: str, addr: str) -> str:
    return formataddr((" ".join(name.split()), addr), charset="utf-8")


def thread_index(root: str, created_at: str) -> str:
    """Outlook's conversation header: a FILETIME prefix of the ticket's creation and a GUID
    from its root id, the same for every mail of the ticket."""
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    filetime = int(moment.timestamp() * 10_000_000) + _FILETIME_EPOCH
    head = filetime.to_bytes(8, "big")[:6]
    guid = hashlib.md5(root.encode(), usedforsecurity=False).digest()
    return base64.b64encode(head + guid).decode()
