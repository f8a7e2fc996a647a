"""The `mail_in` job against a real IMAP server (dovecot) on both databases: a backlog of good
and hostile mail in one mailbox. Each good mail becomes a message, each hostile one is rejected
with its reason (a `mail.rejected` event), nothing partial is written, every mail is flagged
and never fetched twice, and the poller goes on past every bad one."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.jobs import mail_in
from supportdesk.jobs.runner import JobContext, StepFailed
from supportdesk.mail import address, service
from tests import factories
from tests.mail.dovecot import PASSWORD, Dovecot

FROM = "Acme Support <help@example.net>"


def context(app: FastAPI, url: str, **settings_: Any) -> JobContext:
    update = {"imap_url": url, "mail_from": FROM, **settings_}
    settings = app.state.settings.model_copy(update=update)
    return JobContext(app.state.db, settings, app.state.bus, "test")


def mail(sender: str, text: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = headers.pop("To", "help@example.net")
    message["Subject"] = headers.pop("Subject", "Help")
    message["Message-ID"] = make_msgid(domain="client.example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def hostile(ticket_id: int, root: str) -> dict[str, bytes]:
    """Each with the reason it must be rejected for (a part of it)."""
    huge = mail("carla@example.org", "See attached")
    huge.add_attachment(b"\0" * (25 * 1024 * 1024), maintype="application",
                        subtype="octet-stream", filename="dump.bin")  # fmt: skip
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(10_000))
    many = (
        b"From: carla@example.org\r\nTo: help@example.net\r\nSubject: parts\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + parts + b"--b--\r\n"
    )  # fmt: skip
    long_header = (
        b"From: carla@example.org\r\nTo: help@example.net\r\nX-Junk: " + b"a" * 1024 * 1024
        + b"\r\nSubject: long\r\n\r\nhello\r\n"
    )  # fmt: skip
    broken = (
        b"From: carla@example.org\r\nTo: help@example.net\r\nSubject: broken\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="right"\r\n\r\n'
        b"--wrong\r\nContent-Type: text/plain\r\n\r\nhello\r\n--wrong--\r\n"
    )
    forged = mail("eve@example.org", "Let me in", In_Reply_To=root)
    bad_signature = mail("carla@example.org", "Hi", To=f"help+{ticket_id}.0123456789ab@example.net")
    return {
        "too large": huge.as_bytes(),
        "MIME parts": many,
        "header": long_header,
        "boundary": broken,
        "may not write to ticket": forged.as_bytes(),
        "wrong signature": bad_signature.as_bytes(),
    }


async def rejections(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/events", params={"filter[event]": "mail.rejected"})
    data: list[dict[str, Any]] = response.json()["data"]
    return [event["attributes"]["data"] for event in data]


@pytest.mark.timeout(120)
async def test_a_backlog_of_good_and_hostile_mail(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Dovecot
) -> None:
    customer = await factories.user(client, email="carla@example.org")
    await factories.user(client, email="eve@example.org")
    ticket = await factories.ticket(client, customer["id"])
    root = address.sender(FROM).root_id(int(ticket["id"]))
    bad = hostile(int(ticket["id"]), root)
    good = [
        mail("carla@example.org", "Good one", In_Reply_To=root),
        mail("dana@example.org", "A new ticket", Subject="Printer"),
    ]
    mailbox.append(good[0].as_bytes())
    for raw in bad.values():
        mailbox.append(raw)
    mailbox.append(good[1].as_bytes())
    # one attachment at most: a mail over 22 MB is too large to take
    running = context(app, mailbox.url, max_attachments=1)
    step = mail_in.job(running.settings)
    assert step is not None
    await step.step(running)
    rejected = await rejections(client)
    reasons = [r["reason"] for r in rejected]
    assert len(reasons) == len(bad), reasons
    # the huge mail was judged by its size on the server, and recorded from its header fields
    # (its size as the server stores it: lines end in CRLF there)
    size = len(bad["too large"].replace(b"\n", b"\r\n"))
    assert rejected[0]["reason"] == f"message too large ({size} bytes, more than 23068672)"
    assert (rejected[0]["sender"], rejected[0]["subject"]) == ("carla@example.org", "Help")
    for expected, reason in zip(bad, reasons, strict=True):
        assert expected in reason, (expected, reason)
    messages = (await client.get("/ticket-messages")).json()["data"]
    assert sorted(m["attributes"]["message"] for m in messages) == ["A new ticket", "Good one"]
    assert (await client.get("/ticket-attachments/1/download")).status_code == 404
    storage = app.state.storage
    for folder in (storage.files, storage.pending):
        assert [p for p in Path(folder).rglob("*") if p.is_file()] == []
    flags = mailbox.flags()
    assert len(flags) == 2 + len(bad)
    assert all({"$Supportdesk", "\\Seen"} <= f for f in flags.values())
    # a second poll finds nothing new and changes nothing
    await step.step(running)
    assert len((await client.get("/ticket-messages")).json()["data"]) == 2
    assert len(await rejections(client)) == len(bad)


async def test_a_wrong_password_is_one_line_without_it(app: FastAPI, mailbox: Dovecot) -> None:
    url = mailbox.url.replace("support:", "support:x", 1)
    job = mail_in.job(context(app, url).settings)
    assert job is not None
    with pytest.raises(StepFailed) as failed:
        await job.step(context(app, url))
    assert str(failed.value).startswith("IMAP login failed for support@127.0.0.1:")
    assert PASSWORD not in str(failed.value)
    assert quote(PASSWORD, safe="") not in str(failed.value)


async def test_a_failure_mid_batch_keeps_what_was_taken(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database failing on the second mail: the first is flagged, the rest wait."""
    for n in range(3):
        mailbox.append(mail(f"c{n}@example.org", f"Mail {n}").as_bytes())
    original = service.Inbox.ingest
    calls = 0

    async def failing(self: service.Inbox, raw: bytes, size: int | None = None) -> service.Outcome:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("the database went away")
        return await original(self, raw, size)

    monkeypatch.setattr(service.Inbox, "ingest", failing)
    job = mail_in.job(context(app, mailbox.url).settings)
    assert job is not None
    with pytest.raises(ConnectionError):
        await job.step(context(app, mailbox.url))
    flagged = [f for f in mailbox.flags().values() if "$Supportdesk" in f]
    assert len(flagged) == 1
    await job.step(context(app, mailbox.url))
    assert all("$Supportdesk" in f for f in mailbox.flags().values())
    assert (await client.get("/tickets")).json()["meta"]["total"] == 3
