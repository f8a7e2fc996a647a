"""The whole conversation by mail, end to end, against the real `supportdesk serve` with a real
SMTP server (aiosmtpd) and a real IMAP server (dovecot): a customer opens a ticket by mail, staff
answer through the API, the customer's mail client replies to the mail it received, and the
reply lands on the ticket with its quote cut, status `customer-reply`, the assignee told."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import serving
from tests.mail.dovecot import Dovecot
from tests.mail.smtp_receiver import Receiver

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, seconds: float = 20.0) -> T:
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def plain(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def mail_to(smtp: Receiver, address: str, containing: str) -> Callable[[], EmailMessage | None]:
    def probe() -> EmailMessage | None:
        for received in list(smtp.received):
            message = received.message
            if received.recipients == [address] and containing in plain(message):
                return message
        return None

    return probe


@pytest.mark.timeout(120)
def test_a_conversation_by_mail(
    tmp_path: Path, mailbox: Dovecot, smtp: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SMTP_URL": smtp.url,
        "IMAP_URL": mailbox.url,
        "IMAP_POLL": "1s",
        "MAIL_FROM": "Example Support <support@example.net>",
        "PUBLIC_URL": "https://help.example.net",
    }.items():
        monkeypatch.setenv(f"SUPPORTDESK_{name}", value)
    with serving(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}") as server:
        assert "Mail: out through smtp://127.0.0.1:" in server.output.read_text()
        api = httpx.Client(
            base_url=f"{server.base_url}/api/v1/admin",
            headers={"Authorization": f"Bearer {server.demo_token}"},
            timeout=20,
        )
        agent = api.post(
            "/users", json={"email": "agent@example.net", "first_name": "Ann", "role_id": 1}
        ).json()["data"]

        # 1. the customer opens a ticket by mail
        opening = EmailMessage()
        opening["From"] = "Carla Diaz <carla@example.org>"
        opening["To"] = "support@example.net"
        opening["Subject"] = "VPN broken"
        opening["Message-ID"] = make_msgid(domain="mail.example.org")
        opening.set_content("My VPN client stopped connecting this morning.\n\nCarla\n")
        mailbox.append(opening.as_bytes())

        def tickets() -> list[dict[str, Any]] | None:
            data: list[dict[str, Any]] = api.get("/tickets").json()["data"]
            return data or None

        (ticket,) = eventually(tickets, "the ticket opened by mail")
        ticket_id = ticket["id"]
        assert ticket["attributes"]["subject"] == "VPN broken"
        eventually(mail_to(smtp, "carla@example.org", "opened ticket"), "the customer's notice")
        eventually(mail_to(smtp, "agent@example.net", "New ticket"), "the staff's notice")

        # 2. staff answer through the API
        assert api.patch(f"/tickets/{ticket_id}", json={"assigned_to": int(agent["id"])}).is_success
        answer = {"ticket_id": int(ticket_id), "user_id": int(agent["id"]),
                  "message": "Please restart the client and try again."}  # fmt: skip
        assert api.post("/ticket-messages", json=answer).status_code == 201
        received = eventually(
            mail_to(smtp, "carla@example.org", "Please restart the client"), "the staff reply"
        )
        assert received["Subject"] == f"[#{ticket_id}] VPN broken"
        assert f"https://help.example.net/portal/tickets/{ticket_id}" in plain(received)

        # 3. the customer's mail client replies to the mail it received, quoting it
        reply = EmailMessage()
        reply["From"] = "Carla Diaz <carla@example.org>"
        reply["To"] = received["Reply-To"]
        reply["Subject"] = f"Re: {received['Subject']}"
        reply["Message-ID"] = make_msgid(domain="mail.example.org")
        reply["In-Reply-To"] = received["Message-ID"]
        reply["References"] = f"{received['References']} {received['Message-ID']}"
        reply.set_content(
            "Restarted it, works now. Thanks!\n\n"
            "On Wed, Dec 2, 2026 at 6:40 PM Example Support <support@example.net> wrote:\n"
            "> Ann wrote on ticket #1:\n>\n> Please restart the client and try again.\n"
        )
        mailbox.append(reply.as_bytes())

        def last_message() -> dict[str, Any] | None:
            data = api.get("/ticket-messages", params={"filter[ticket_id]": ticket_id}).json()
            return data["data"][-1] if len(data["data"]) == 3 else None

        last = eventually(last_message, "the reply on the ticket")
        assert last["attributes"]["message"] == "Restarted it, works now. Thanks!"
        status = api.get(f"/tickets/{ticket_id}").json()["data"]["attributes"]["status"]
        assert status == "customer-reply"
        told = eventually(
            mail_to(smtp, "agent@example.net", "Restarted it, works now"), "the assignee's notice"
        )
        assert told["Subject"] == f"[#{ticket_id}] VPN broken"
        # both mails are flagged processed on the server: never fetched twice
        assert all("$Supportdesk" in flags for flags in mailbox.flags().values())
