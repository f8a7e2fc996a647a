"""The addresses and Message-IDs of our mail (SPEC 13), made and recognised in one place.

A ticket's mails thread on a root id, `<ticket-<id>@<domain>>`, that every one of them names in
`References` and `In-Reply-To`; each mail has its own `<ticket-<id>-<event>-<recipient user>@
<domain>>`. Replies route by the signed Reply-To address, `<local>+<id>.<signature>@<domain>`,
even when a mail client drops those headers: the signature (HMAC-SHA256 of the ticket id under
the mail secret, 12 hex digits) keeps strangers from writing to any ticket by guessing numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses

SIGNATURE_HEX = 12


@dataclass(frozen=True)
class Sender:
    """`SUPPORTDESK_MAIL_FROM` taken apart: `Support <support@example.com>`."""

    name: str
    local: str
    domain: str

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def header(self) -> str:
        return str(Address(self.name, self.local, self.domain))

    def reply_to(self, ticket_id: int, secret: str) -> str:
        return f"{self.local}+{ticket_id}.{signature(ticket_id, secret)}@{self.domain}"

    def root_id(self, ticket_id: int) -> str:
        return f"<ticket-{ticket_id}@{self.domain}>"

    def message_id(self, ticket_id: int, event_id: int, user_id: int) -> str:
        return f"<ticket-{ticket_id}-{event_id}-{user_id}@{self.domain}>"


def sender(text: str) -> Sender:
    """`Name <local@domain>` or `local@domain`; ValueError naming what is wrong."""
    pairs = getaddresses([text])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ValueError("must be an address such as 'Support <support@example.com>'")
    name, addr = pairs[0]
    local, _, domain = addr.rpartition("@")
    if not local or not domain or "+" in local:
        raise ValueError("must be an address such as 'Support <support@example.com>' (no '+')")
    # lower-cased: incoming addresses are, so our own comes back recognisable (loops)
    return Sender(name, local.lower(), domain.lower())


def signature(ticket_id: int, secret: str) -> str:
    digest = hmac.digest(secret.encode(), str(ticket_id).encode(), hashlib.sha256)
    return digest.hex()[:SIGNATURE_HEX]


class BadSignature(ValueError):
    pass


def reply_ticket(ours: Sender, recipients: tuple[str, ...], secret: str) -> int | None:
    """The ticket a mail was sent to through its signed reply address, if it was; BadSignature
    when an address of that form carries a signature we did not make."""
    pattern = re.compile(
        rf"{re.escape(ours.local)}\+(\d{{1,18}})\.([0-9a-z]+)@{re.escape(ours.domain)}",
        re.IGNORECASE,
    )
    for recipient in recipients:
        match = pattern.fullmatch(recipient)
        if match is None:
            continue
        ticket_id = int(match[1])
        if not hmac.compare_digest(match[2].lower(), signature(ticket_id, secret)):
            raise BadSignature(f"the reply address {recipient} has a wrong signature")
        return ticket_id
    return None


def referenced_tickets(ours: Sender, references: tuple[str, ...]) -> list[int]:
    """Tickets whose mails these Message-IDs name (newest reference first)."""
    pattern = re.compile(rf"<ticket-(\d{{1,18}})(?:-\d+-\d+)?@{re.escape(ours.domain)}>", re.I)
    found = [int(m[1]) for ref in reversed(references) if (m := pattern.fullmatch(ref))]
    return list(dict.fromkeys(found))


SUBJECT_TICKET = re.compile(r"\[#(\d{1,18})\]")


def subject_ticket(subject: str) -> int | None:
    match = SUBJECT_TICKET.search(subject)
    return int(match[1]) if match else None
