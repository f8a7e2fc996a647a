"""Mail out (SPEC 13) on both databases, through the `mail_out` job's step and a real SMTP
server: who is told what, the headers that thread a ticket and route replies, the outbox
surviving an outage and refusals, templates a deployment overrides."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from supportdesk.db import meta
from supportdesk.jobs.runner import StepFailed
from supportdesk.mail import address, repository, service
from supportdesk.mail import outbox as mail_outbox_module
from supportdesk.tables import mail_inbox, mail_outbox
from tests import factories
from tests.mail.mailer import Mailer
from tests.mail.smtp_receiver import Receiver

FROM = "Acme Support <help@example.net>"


@pytest.fixture
async def mailer(app: FastAPI, smtp: Receiver) -> Mailer:
    runner = Mailer(app, smtp, mail_from=FROM)
    await runner.step()  # the first step sets the cursor: what happened before is never mailed
    return runner


def by_recipient(smtp: Receiver) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for mail in smtp.received:
        assert len(mail.recipients) == 1
        found.setdefault(mail.recipients[0], []).append(mail.message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


async def outbox(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.db.read() as conn:
        return await conn.fetch_all(select(mail_outbox).order_by(mail_outbox.c.id))


async def test_history_before_mail_was_switched_on_is_never_mailed(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver
) -> None:
    customer = await factories.user(client)
    await factories.ticket(client, customer["id"])
    runner = Mailer(app, smtp, mail_from=FROM)
    await runner.step()
    await runner.step()
    assert smtp.received == []
    assert await outbox(app) == []


async def test_a_new_ticket_tells_the_customer_and_every_staff_user_while_unassigned(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="Carla@Example.com", first_name="Carla")
    alice = await factories.staff(client, email="alice@example.net")
    bob = await factories.staff(client, email="bob@example.net")
    await factories.staff(client, email="quiet@example.net", email_notifications=False)
    ticket = await factories.ticket(client, customer["id"], subject="Disk <full>")
    await mailer.step()
    mails = by_recipient(smtp)
    assert sorted(mails) == ["alice@example.net", "bob@example.net", "carla@example.com"]
    opened = mails["carla@example.com"][0]
    number = ticket["id"]
    assert opened["Subject"] == f"[#{number}] Disk <full>"
    assert f"opened ticket #{number}" in text_of(opened)
    assert f"/portal/tickets/{number}" in text_of(opened)
    assert "Disk &lt;full&gt;" in html_of(opened)  # escaped in HTML
    assert "Disk <full>" not in html_of(opened)
    staff_mail = mails["alice@example.net"][0]
    assert f"New ticket #{number}" in text_of(staff_mail)
    assert f"/console/tickets/{number}" in text_of(staff_mail)
    assert alice["id"] != bob["id"]


async def test_threading_and_reply_headers(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    agent = await factories.staff(client, email="agent@example.net")
    ticket = await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await factories.post_message(client, ticket["id"], agent["id"], "Have you tried rebooting?")
    await mailer.step()
    to_customer = by_recipient(smtp)["carla@example.com"]
    assert len(to_customer) == 2  # opened, the reply
    secret = await service.reply_secret(app.state.db, mailer.context.settings)
    ours = address.sender(FROM)
    root = f"<ticket-{ticket['id']}@example.net>"
    ids = set()
    for message in to_customer:
        assert message["In-Reply-To"] == root
        assert message["References"] == root
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["From"] == FROM
        reply_to = message["Reply-To"].addresses[0].addr_spec
        assert address.reply_ticket(ours, (reply_to,), secret) == int(ticket["id"])
        assert message["Thread-Index"] == to_customer[0]["Thread-Index"]
        assert message["Thread-Topic"] == f"[#{ticket['id']}] Something is broken"
        ids.add(message["Message-ID"])
    assert len(ids) == 2
    assert address.referenced_tickets(ours, tuple(ids)) == [int(ticket["id"])]
    reply = to_customer[1]
    assert "Have you tried rebooting?" in text_of(reply)
    assert smtp.received[0].sender == "help@example.net"  # bounces come back to the desk


async def test_replies_notes_and_authors(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    agent = await factories.staff(client, email="agent@example.net", first_name="Ann")
    other = await factories.staff(client, email="other@example.net")
    ticket = await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await mailer.step()
    smtp.clear()
    # the customer writes: only the assignee hears of it, and the customer gets no copy
    await factories.post_message(client, ticket["id"], customer["id"], "It is still down")
    # an internal note: mailed to nobody
    note = {"ticket_id": int(ticket["id"]), "user_id": int(agent["id"]), "internal": True}
    response = await client.post("/ticket-messages", json={**note, "message": "secret plan"})
    assert response.status_code == 201, response.text
    # the assignee answers: the customer hears; the assignee is not mailed their own words
    await factories.post_message(client, ticket["id"], agent["id"], "Fixed it <b>now</b>")
    await mailer.step()
    mails = by_recipient(smtp)
    assert sorted(mails) == ["agent@example.net", "carla@example.com"]
    (customer_reply,) = mails["agent@example.net"]
    assert "It is still down" in text_of(customer_reply)
    (reply,) = mails["carla@example.com"]
    assert "Ann" in text_of(reply)
    assert "Fixed it <b>now</b>" in text_of(reply)
    assert "Fixed it &lt;b&gt;now&lt;/b&gt;" in html_of(reply)
    for mail in smtp.received:
        assert b"secret plan" not in mail.raw
    assert other["id"]


async def test_closing_and_assigning(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    agent = await factories.staff(client, email="agent@example.net")
    ticket = await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await mailer.step()
    smtp.clear()
    newcomer = await factories.staff(client, email="new@example.net")
    response = await client.patch(
        f"/tickets/{ticket['id']}", json={"assigned_to": int(newcomer["id"]), "status": "closed"}
    )
    assert response.status_code == 200, response.text
    await mailer.step()
    mails = by_recipient(smtp)
    assert sorted(mails) == ["carla@example.com", "new@example.net"]
    assert "is now closed" in text_of(mails["carla@example.com"][0])
    assert "assigned to you" in text_of(mails["new@example.net"][0])


async def test_a_customer_without_notifications_gets_nothing(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="q@example.com", email_notifications=False)
    assert customer["attributes"]["email_notifications"] is False
    agent = await factories.staff(client, email="agent@example.net")
    ticket = await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await factories.post_message(client, ticket["id"], agent["id"], "Answer")
    await mailer.step()
    assert sorted(by_recipient(smtp)) == ["agent@example.net"]


async def test_a_repeated_fan_out_adds_nothing(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    await factories.ticket(client, customer["id"], assigned_to=None)
    await mailer.step()
    before = await outbox(app)
    assert before
    async with app.state.db.transaction() as conn:  # as if the cursor's commit were lost
        await meta.put(conn, repository.CURSOR_KEY, "0")
    await mailer.step()
    assert await outbox(app) == before
    assert len(smtp.received) == len(before)


async def test_an_outage_loses_nothing_and_sends_nothing_twice(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    agent = await factories.staff(client, email="agent@example.net")
    smtp.stop()
    tickets = [
        await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
        for _ in range(3)
    ]
    with pytest.raises(
        StepFailed, match=r"cannot reach the SMTP server 127\.0\.0\.1:\d+: connection refused"
    ):
        await mailer.step()
    rows = await outbox(app)
    assert len(rows) == 6 and {row["state"] for row in rows} == {"pending"}
    await mailer.step()  # paused: no new attempt, no error
    smtp.start()
    mailer.job.step.keywords["state"].paused_until = 0.0  # the pause is over
    await mailer.step()
    assert len(smtp.received) == 6
    assert {row["state"] for row in await outbox(app)} == {"sent"}
    await mailer.step()
    assert len(smtp.received) == 6
    assert tickets


async def test_refused_mail_fails_and_deferred_mail_waits(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    agent = await factories.staff(client, email="agent@example.net")
    smtp.answer = "550 5.1.1 mailbox unavailable"
    await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await mailer.step()
    rows = await outbox(app)
    assert {row["state"] for row in rows} == {"failed"}
    assert all("550 5.1.1 mailbox unavailable" in row["error"] for row in rows)
    smtp.answer = "451 4.3.0 try later"
    await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await mailer.step()
    waiting = [row for row in await outbox(app) if row["state"] == "pending"]
    assert len(waiting) == 2
    assert all(row["attempts"] == 1 and "451" in row["error"] for row in waiting)
    assert all(row["next_attempt_at"] > row["created_at"] for row in waiting)
    smtp.answer = None
    await mailer.step()  # not due yet
    assert smtp.received == []


async def test_a_wrong_password_is_one_clear_line(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver
) -> None:
    guarded = Receiver(user="desk", password="right-password")
    guarded.start()
    try:
        runner = Mailer(
            app,
            guarded,
            mail_from=FROM,
            smtp_url=guarded.url.replace("right-password", "wrong-password"),
        )
        await runner.step()
        customer = await factories.user(client, email="carla@example.com")
        await factories.ticket(client, customer["id"])
        with pytest.raises(StepFailed) as failed:
            await runner.step()
        assert "SMTP login failed for desk at 127.0.0.1" in str(failed.value)
        assert "wrong-password" not in str(failed.value)
        # without plain_auth=1 the password is not sent at all over the plain connection
        plain = guarded.url.removesuffix("?plain_auth=1")
        with pytest.raises(StepFailed) as failed:
            await Mailer(app, guarded, mail_from=FROM, smtp_url=plain).step()
        assert str(failed.value).startswith(
            f"the SMTP server 127.0.0.1:{guarded.port} offers no STARTTLS: the password is not "
            "sent over a plain connection (use smtps://, or add ?plain_auth=1 for a relay you "
            "trust the path to); trying again in"
        )
        assert guarded.received == []
        runner = Mailer(app, guarded, mail_from=FROM)
        await runner.step()
        assert len(guarded.received) == 1
    finally:
        guarded.stop()


async def test_templates_can_be_overridden(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, tmp_path: Path
) -> None:
    (tmp_path / "opened.txt").write_text("Ticket {{ ticket.id }} is ours now. {{ url }}\n")
    runner = Mailer(app, smtp, mail_from=FROM, mail_templates=str(tmp_path))
    await runner.step()
    customer = await factories.user(client, email="carla@example.com")
    ticket = await factories.ticket(client, customer["id"])
    await runner.step()
    (mail,) = by_recipient(smtp)["carla@example.com"]
    assert text_of(mail).startswith(f"Ticket {ticket['id']} is ours now.")
    assert "we have received your request" in html_of(mail)  # the built-in HTML part


async def test_a_ticket_opened_by_mail_is_one_mail_to_staff_with_its_text(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    await factories.staff(client, email="agent@example.net")
    opening = EmailMessage()
    opening["From"] = "Carla <carla@example.org>"
    opening["To"] = "help@example.net"
    opening["Subject"] = "Printer on fire"
    opening.set_content("Smoke everywhere.")
    settings = mailer.context.settings
    secret = await service.reply_secret(app.state.db, settings)
    inbox = service.Inbox(app.state.db, settings, app.state.storage, secret)
    outcome = await inbox.ingest(opening.as_bytes())
    assert outcome.accepted, outcome
    await mailer.step()
    mails = by_recipient(smtp)
    (staff_mail,) = mails["agent@example.net"]
    assert "New ticket" in text_of(staff_mail) and "Smoke everywhere." in text_of(staff_mail)
    (opened,) = mails["carla@example.org"]
    assert "Smoke everywhere." not in text_of(opened)  # nobody is mailed their own words


async def test_a_refused_sender_address_keeps_every_mail(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    """A 5xx to MAIL FROM is about the desk's own setup, not one mail: nothing is failed."""
    customer = await factories.user(client, email="carla@example.org")
    agent = await factories.staff(client, email="agent@example.net")
    smtp.mail_from_answer = "530 5.7.0 Authentication required"
    await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    with pytest.raises(StepFailed, match=r"530 5\.7\.0 Authentication required"):
        await mailer.step()
    assert {row["state"] for row in await outbox(app)} == {"pending"}
    smtp.mail_from_answer = None
    mailer.job.step.keywords["state"].paused_until = 0.0
    await mailer.step()
    assert {row["state"] for row in await outbox(app)} == {"sent"}


async def test_an_address_the_server_cannot_carry_fails_alone(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    """A non-ASCII address to a server without SMTPUTF8 fails that mail, not the queue."""
    customer = await factories.user(client, email="jörg@example.org")
    agent = await factories.staff(client, email="agent@example.net")
    await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await mailer.step()
    states = {row["recipient"]: row["state"] for row in await outbox(app)}
    assert states == {"jörg@example.org": "failed", "agent@example.net": "sent"}
    assert sorted(by_recipient(smtp)) == ["agent@example.net"]


async def test_a_notice_that_cannot_be_composed_fails_alone(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, tmp_path: Path
) -> None:
    (tmp_path / "opened.txt").write_text("{{ no_such_value }}\n")  # a replaced template, broken
    runner = Mailer(app, smtp, mail_from=FROM, mail_templates=str(tmp_path))
    await runner.step()
    customer = await factories.user(client, email="carla@example.org")
    agent = await factories.staff(client, email="agent@example.net")
    await factories.ticket(client, customer["id"], assigned_to=int(agent["id"]))
    await runner.step()
    rows = {row["recipient"]: row for row in await outbox(app)}
    assert rows["carla@example.org"]["state"] == "failed"
    assert "could not be composed: UndefinedError" in rows["carla@example.org"]["error"]
    assert rows["agent@example.net"]["state"] == "sent"


async def test_mail_received_on_a_ticket_is_threaded_into_what_is_sent(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    """The customer's mail client threads by its own Message-IDs: the mail sent about a ticket
    names them (oldest first, after the ticket's root) and answers the latest."""
    agent = await factories.staff(client, email="agent@example.net")
    settings = mailer.context.settings
    secret = await service.reply_secret(app.state.db, settings)
    inbox = service.Inbox(app.state.db, settings, app.state.storage, secret)
    opening = EmailMessage()
    opening["From"] = "Carla <carla@example.org>"
    opening["To"] = "help@example.net"
    opening["Subject"] = "Printer on fire"
    opening["Message-ID"] = "<first@client.example.org>"
    opening.set_content("Smoke everywhere.")
    ticket_id = (await inbox.ingest(opening.as_bytes())).ticket_id
    assert ticket_id is not None
    root = f"<ticket-{ticket_id}@example.net>"
    follow_up = EmailMessage()
    follow_up["From"] = "Carla <carla@example.org>"
    follow_up["To"] = "help@example.net"
    follow_up["Subject"] = f"Re: [#{ticket_id}] Printer on fire"
    follow_up["Message-ID"] = "<second@client.example.org>"
    follow_up["In-Reply-To"] = root
    follow_up.set_content("Now there are flames.")
    assert (await inbox.ingest(follow_up.as_bytes())).ticket_id == ticket_id
    await factories.post_message(client, ticket_id, agent["id"], "Leave the building.")
    await mailer.step()
    *_, reply = by_recipient(smtp)["carla@example.org"]
    assert "Leave the building." in text_of(reply)
    assert reply["In-Reply-To"] == "<second@client.example.org>"
    assert reply["References"].split() == [
        root,
        "<first@client.example.org>",
        "<second@client.example.org>",
    ]
    # and a reply to that mail still finds the ticket by our own ids among the references
    assert address.referenced_tickets(address.sender(FROM), tuple(reply["References"].split()))


async def test_mail_queued_for_someone_deleted_or_unsubscribed_since_is_not_sent(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer
) -> None:
    customer = await factories.user(client, email="carla@example.com")
    leaving = await factories.staff(client, email="leaving@example.net")
    staying = await factories.staff(client, email="staying@example.net")
    smtp.stop()
    await factories.ticket(client, customer["id"])
    with pytest.raises(StepFailed):
        await mailer.step()
    assert len(await outbox(app)) == 3  # opened; new ticket to both staff
    assert (await client.delete(f"/users/{leaving['id']}")).status_code == 204
    patched = await client.patch(
        f"/users/{customer['id']}",
        json={"data": {"type": "users", "id": customer["id"],
                       "attributes": {"email_notifications": False}}},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    smtp.start()
    mailer.job.step.keywords["state"].paused_until = 0.0
    await mailer.step()
    assert [mail.recipients for mail in smtp.received] == [["staying@example.net"]]
    states = {row["recipient"]: (row["state"], row["error"]) for row in await outbox(app)}
    assert states == {
        "carla@example.com": ("failed", mail_outbox_module.NOT_WANTED),
        "leaving@example.net": ("failed", mail_outbox_module.NOT_WANTED),
        "staying@example.net": ("sent", None),
    }
    assert staying


async def test_old_records_of_mail_are_pruned_and_pending_mail_kept(
    app: FastAPI, client: httpx.AsyncClient, smtp: Receiver, mailer: Mailer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(mail_outbox_module, "PRUNE_BATCH", 2)  # several batches
    customer = await factories.user(client, email="carla@example.com")
    for _ in range(3):
        await factories.ticket(client, customer["id"])
    await mailer.step()  # three mails sent
    settings = mailer.context.settings
    secret = await service.reply_secret(app.state.db, settings)
    inbox = service.Inbox(app.state.db, settings, app.state.storage, secret)
    for n in range(3):
        message = EmailMessage()
        message["From"] = "dana@example.org"
        message["To"] = "help@example.net"
        message["Subject"] = f"Mail {n}"
        message.set_content("Hello")
        assert (await inbox.ingest(message.as_bytes())).accepted
    long_ago = "2020-01-01T00:00:00.000000Z"
    async with app.state.db.transaction() as conn:
        await conn.execute(update(mail_outbox).values(created_at=long_ago))
        old = update(mail_inbox).where(mail_inbox.c.id < 3)
        await conn.execute(old.values(received_at=long_ago))
        # one mail still waiting to be sent, however old
        await conn.execute(update(mail_outbox).where(mail_outbox.c.id == 1).values(state="pending"))
    removed = await mail_outbox_module.prune(app.state.db, timedelta(days=90))
    assert removed == 2 + 2  # the outbox's sent rows but the pending one; two received
    async with app.state.db.read() as conn:
        assert [r["id"] for r in await conn.fetch_all(select(mail_outbox.c.id))] == [1]
        assert len(await conn.fetch_all(select(mail_inbox.c.id))) == 1
    assert await mail_outbox_module.prune(app.state.db, timedelta(days=90)) == 0
