"""Mail in (SPEC 13) on both databases, through `mail.service.ingest`: the matching order,
the author rule, the workflow, duplicates, loops, limits, and rejected mail recorded with its
reason and nothing else written."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.mail import address, service
from supportdesk.mail.service import Outcome
from tests import factories

FROM = "Acme Support <help@example.net>"


def mail(
    sender: str,
    text: str = "Hello, my server is down.",
    subject: str = "Server down",
    to: str = "help@example.net",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="client.example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


class Desk:
    def __init__(self, app: FastAPI, **settings: Any) -> None:
        self.app = app
        self.settings = app.state.settings.model_copy(update={"mail_from": FROM, **settings})

    async def ingest(self, message: EmailMessage | bytes) -> Outcome:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        secret = await service.reply_secret(self.app.state.db, self.settings)
        inbox = service.Inbox(self.app.state.db, self.settings, self.app.state.storage, secret)
        return await inbox.ingest(raw)

    async def reply_address(self, ticket_id: int | str) -> str:
        secret = await service.reply_secret(self.app.state.db, self.settings)
        return address.sender(FROM).reply_to(int(ticket_id), secret)


@pytest.fixture
def desk(app: FastAPI) -> Desk:
    return Desk(app)


async def events(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/events", params={"limit": "1000"})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def messages_of(client: httpx.AsyncClient, ticket_id: int | str) -> list[dict[str, Any]]:
    response = await client.get("/ticket-messages", params={"filter[ticket_id]": str(ticket_id)})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def ticket_of(client: httpx.AsyncClient, ticket_id: int | str) -> dict[str, Any]:
    response = await client.get(f"/tickets/{ticket_id}")
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def test_a_mail_from_a_stranger_opens_a_ticket_for_a_new_customer(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    outcome = await desk.ingest(
        mail("Dana Scully <Dana@Example.org>", subject="Re: Fwd: Server down")
    )
    assert outcome.accepted and outcome.ticket_id is not None, outcome
    ticket = await ticket_of(client, outcome.ticket_id)
    assert ticket["subject"] == "Server down"
    users = (await client.get("/users", params={"filter[email]": "dana@example.org"})).json()
    (user,) = users["data"]
    assert user["attributes"]["first_name"] == "Dana"
    assert user["attributes"]["last_name"] == "Scully"
    assert user["attributes"]["role_id"] is None
    (message,) = await messages_of(client, outcome.ticket_id)
    assert message["attributes"]["message"] == "Hello, my server is down."
    names = [(e["attributes"]["event"], e["attributes"]["actor"]) for e in await events(client)]
    actor = {"type": "email", "id": int(user["id"])}
    assert names == [
        ("user.created", actor),
        ("ticket.created", actor),
        ("ticket_message.created", actor),
    ]  # the message it opened with leaves the ticket open: no status move
    assert (await ticket_of(client, outcome.ticket_id))["status"] == "open"


async def test_unknown_senders_are_refused_when_users_are_not_created(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    desk = Desk(app, mail_create_users=False)
    outcome = await desk.ingest(mail("nobody@example.org"))
    assert not outcome.accepted
    assert outcome.reason == "nobody@example.org is not a user (SUPPORTDESK_MAIL_CREATE_USERS=0)"
    assert (await client.get("/users")).json()["meta"]["total"] == 0
    (event,) = await events(client)
    assert event["attributes"]["event"] == "mail.rejected"
    assert event["attributes"]["data"]["reason"] == outcome.reason
    assert event["attributes"]["data"]["sender"] == "nobody@example.org"


async def test_a_reply_to_the_signed_address_lands_on_the_ticket_without_any_header(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    customer = await factories.user(client, email="carla@example.org")
    agent = await factories.staff(client, email="agent@example.net")
    ticket = await factories.ticket(client, customer["id"])
    await factories.post_message(client, ticket["id"], agent["id"], "Try rebooting")
    reply = mail(
        "carla@example.org", "Still broken", "whatever", to=await desk.reply_address(ticket["id"])
    )
    outcome = await desk.ingest(reply)
    assert outcome.accepted and outcome.ticket_id == int(ticket["id"]), outcome
    assert (await ticket_of(client, ticket["id"]))["status"] == "customer-reply"
    texts = [m["attributes"]["message"] for m in await messages_of(client, ticket["id"])]
    assert texts == ["Try rebooting", "Still broken"]


async def test_a_staff_reply_by_mail_sets_the_staff_status(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    customer = await factories.user(client, email="carla@example.org")
    await factories.staff(client, email="agent@example.net")
    ticket = await factories.ticket(client, customer["id"])
    reply = mail("agent@example.net", "On it", to=await desk.reply_address(ticket["id"]))
    assert (await desk.ingest(reply)).accepted
    assert (await ticket_of(client, ticket["id"]))["status"] == "replied"


async def test_references_to_our_mails_and_the_subject_number_match(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    customer = await factories.user(client, email="carla@example.org")
    ticket = await factories.ticket(client, customer["id"])
    ours = address.sender(FROM)
    by_header = mail(
        "carla@example.org",
        "By header",
        In_Reply_To=ours.message_id(int(ticket["id"]), 7, int(customer["id"])),
        References=f"<other@client.example.org> {ours.root_id(int(ticket['id']))}",
    )
    assert (await desk.ingest(by_header)).ticket_id == int(ticket["id"])
    by_subject = mail("carla@example.org", "By subject", f"Re: [#{ticket['id']}] Server down")
    assert (await desk.ingest(by_subject)).ticket_id == int(ticket["id"])
    # someone else's number in the subject opens a ticket of their own
    stranger = await factories.user(client, email="eve@example.org")
    other = await desk.ingest(mail("eve@example.org", "Hi", f"[#{ticket['id']}] Server down"))
    assert other.accepted and other.ticket_id != int(ticket["id"])
    assert (await ticket_of(client, other.ticket_id or 0))["user_id"] == int(stranger["id"])


async def test_forged_references_and_bad_signatures_are_refused(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    customer = await factories.user(client, email="carla@example.org")
    await factories.user(client, email="eve@example.org")
    ticket = await factories.ticket(client, customer["id"])
    root = address.sender(FROM).root_id(int(ticket["id"]))
    forged = await desk.ingest(mail("eve@example.org", "Let me in", In_Reply_To=root))
    assert not forged.accepted
    assert forged.reason == (
        f"eve@example.org may not write to ticket #{ticket['id']} (neither its customer nor staff)"
    )
    unknown = await desk.ingest(mail("mallory@example.org", "Let me in", References=root))
    assert unknown.reason == "mallory@example.org is not a user of this desk"
    bad = f"help+{ticket['id']}.000000000000@example.net"
    signed = await desk.ingest(mail("carla@example.org", "Hi", to=bad))
    assert signed.reason == f"the reply address {bad} has a wrong signature"
    assert len(await messages_of(client, ticket["id"])) == 0
    rejected = [e for e in await events(client) if e["attributes"]["event"] == "mail.rejected"]
    assert len(rejected) == 3
    # the refusals about the ticket are in its history, for staff to see
    history = (await client.get(f"/tickets/{ticket['id']}/history")).json()["data"]
    assert [e["attributes"]["event"] for e in history].count("mail.rejected") == 2


async def test_a_mail_received_twice_counts_once(desk: Desk, client: httpx.AsyncClient) -> None:
    message = mail("carla@example.org")
    first = await desk.ingest(message)
    second = await desk.ingest(message)
    assert first.accepted and second.accepted and second.duplicate
    assert second.ticket_id == first.ticket_id and second.message_id == first.message_id
    assert (await client.get("/tickets")).json()["meta"]["total"] == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "automatic mail"),
        ({"Precedence": "bulk"}, "automatic mail"),
    ],
)
async def test_machine_mail_is_refused(
    desk: Desk, client: httpx.AsyncClient, headers: dict[str, str], reason: str
) -> None:
    outcome = await desk.ingest(mail("carla@example.org", "I am away", **headers))
    assert not outcome.accepted and outcome.reason and reason in outcome.reason
    assert (await client.get("/tickets")).json()["meta"]["total"] == 0


async def test_our_own_mail_coming_back_is_a_loop(desk: Desk, client: httpx.AsyncClient) -> None:
    for sender in ("help@example.net", "help+5.abcdef012345@example.net"):
        outcome = await desk.ingest(mail(sender))
        assert outcome.reason == "mail from our own address (a loop)"
    assert (await client.get("/users")).json()["meta"]["total"] == 0


async def test_a_sender_gets_twenty_mails_an_hour(desk: Desk, client: httpx.AsyncClient) -> None:
    outcomes = [await desk.ingest(mail("busy@example.org", f"Mail {n}")) for n in range(21)]
    assert all(o.accepted for o in outcomes[:20])
    assert outcomes[20].reason == "more than 20 mails from busy@example.org in an hour"
    assert (await client.get("/tickets")).json()["meta"]["total"] == 20


async def test_the_hourly_limit_holds_for_mail_taken_at_once(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    """Racing transactions (parallel `mail ingest` runs, two instances' pollers) each count
    the sender's mail: the count and the write are one step per sender."""
    await factories.user(client, email="busy@example.org")
    outcomes = await asyncio.gather(
        *(desk.ingest(mail("busy@example.org", f"Mail {n}")) for n in range(30))
    )
    assert sum(o.accepted for o in outcomes) == 20, outcomes
    assert (await client.get("/tickets")).json()["meta"]["total"] == 20


async def test_attachments_become_ticket_attachments(desk: Desk, client: httpx.AsyncClient) -> None:
    message = mail("carla@example.org", "See the log")
    message.add_attachment(b"line 1\nline 2\n", maintype="text", subtype="plain", filename="a.log")
    message.add_attachment(
        bytes(range(256)) * 40, maintype="image", subtype="png", filename="s.png"
    )
    outcome = await desk.ingest(message)
    assert outcome.accepted, outcome
    response = await client.get(
        f"/ticket-messages/{outcome.message_id}", params={"include": "attachments"}
    )
    files = {a["attributes"]["filename"]: a for a in response.json()["included"]}
    assert sorted(files) == ["a.log", "s.png"]
    assert files["s.png"]["attributes"]["mime_type"] == "image/png"
    download = await client.get(f"/ticket-attachments/{files['s.png']['id']}/download")
    assert download.content == bytes(range(256)) * 40


async def test_a_too_large_attachment_rejects_the_whole_mail(
    desk: Desk, client: httpx.AsyncClient, app: FastAPI
) -> None:
    message = mail("carla@example.org", "Here is the dump")
    message.add_attachment(
        b"\0" * (25 * 1024 * 1024),
        maintype="application",
        subtype="octet-stream",
        filename="dump.bin",
    )
    outcome = await desk.ingest(message)
    assert not outcome.accepted and outcome.reason
    assert (await client.get("/users")).json()["meta"]["total"] == 0
    storage = app.state.storage
    for folder in (storage.files, storage.pending):
        assert [p for p in Path(folder).rglob("*") if p.is_file()] == []


async def test_a_reply_to_a_merged_ticket_goes_to_its_target(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    customer = await factories.user(client, email="carla@example.org")
    agent = await factories.staff(client, email="agent@example.net")
    target = await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    source = await factories.ticket(client, customer["id"])
    response = await client.post(
        f"/tickets/{target['id']}/merge", json={"source_ids": [int(source["id"])]}
    )
    assert response.status_code == 200, response.text
    reply = mail("carla@example.org", "More", to=await desk.reply_address(source["id"]))
    outcome = await desk.ingest(reply)
    assert outcome.ticket_id == int(target["id"]), outcome


async def test_an_empty_mail_is_refused(desk: Desk, client: httpx.AsyncClient) -> None:
    outcome = await desk.ingest(mail("carla@example.org", "\n"))
    assert outcome.reason == "the mail has no text and no attachments"


async def test_fields_no_database_column_takes_are_cleaned_or_refused(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    long_id = mail("carla@example.org", "Long id")
    del long_id["Message-ID"]
    long_id["Message-ID"] = f"<{'a' * 300}@client.example.org>"
    first = await desk.ingest(long_id)
    assert first.accepted, first
    assert (await desk.ingest(long_id)).duplicate
    nul = mail("carla@example.org", "hello\x00world", subject="bad\x00subject")
    outcome = await desk.ingest(nul)
    assert outcome.accepted, outcome
    (message,) = await messages_of(client, outcome.ticket_id or 0)
    assert message["attributes"]["message"] == "helloworld"
    assert (await ticket_of(client, outcome.ticket_id or 0))["subject"] == "badsubject"
    long_sender = await desk.ingest(mail(f"{'x' * 300}@example.org", "Hi"))
    assert long_sender.reason == "the From address is not a usable address (312 characters)"


async def test_mails_at_once_from_one_new_sender_are_all_taken(
    desk: Desk, client: httpx.AsyncClient
) -> None:
    mails = [mail("new@example.org", f"Mail {n}") for n in range(4)]
    outcomes = await asyncio.gather(*(desk.ingest(m) for m in mails))
    assert all(o.accepted for o in outcomes), outcomes
    users = (await client.get("/users", params={"filter[email]": "new@example.org"})).json()
    assert users["meta"]["total"] == 1
    same = mail("other@example.org", "Once")
    again = await asyncio.gather(*(desk.ingest(same) for _ in range(3)))
    assert sorted(o.duplicate for o in again) == [False, True, True]
    assert len({o.message_id for o in again}) == 1


async def test_an_unforeseen_failure_rejects_the_mail_and_writes_nothing_else(
    desk: Desk, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(service.messages, "insert_message", broken)
    outcome = await desk.ingest(mail("carla@example.org", "Hello"))
    assert outcome.reason == "the mail could not be taken (RuntimeError)"
    assert (await client.get("/users")).json()["meta"]["total"] == 0
    (event,) = await events(client)
    assert event["attributes"]["event"] == "mail.rejected"


async def test_our_own_address_is_recognised_whatever_its_case(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    desk = Desk(app, mail_from="Acme Support <Help@Example.NET>")
    outcome = await desk.ingest(mail("help@example.net", "Bounced back"))
    assert outcome.reason == "mail from our own address (a loop)"
