"""`supportdesk mail ingest` and `supportdesk mail test`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import typer

from supportdesk.cli.common import DatabaseOption, fail, load_settings, run_with_db
from supportdesk.config import Settings
from supportdesk.db import Database
from supportdesk.mail import address, imap, service, smtp
from supportdesk.ticket_attachments.storage import Storage

app = typer.Typer(help="E-mail: take in a mail, check the SMTP settings.", no_args_is_help=True)

EX_DATAERR = 65  # sysexits.h: the input data was incorrect (an MTA bounces the mail)
EX_TEMPFAIL = 75  # sysexits.h: try again later (an MTA keeps the mail and retries)
READ_CHUNK = 1 << 20
TEST_TIMEOUT_S = 15.0


def summary(settings: Settings) -> str:
    """One line for `serve`: where mail goes out and comes in from, passwords masked."""
    out = f"out through {smtp.parse_url(settings.smtp_url)}" if settings.smtp_url else "out off"
    if settings.imap_url:
        incoming = f"in from {imap.parse_url(settings.imap_url)}"
        incoming += f" every {settings.imap_poll.total_seconds():g} s"
    else:
        incoming = "in off"
    return f"{out}, {incoming} (SUPPORTDESK_SMTP_URL, SUPPORTDESK_IMAP_URL)"


@app.command()
def ingest(
    files: list[str] = typer.Argument(
        None, help="RFC 5322 messages, one per file; '-' (or none) reads one from stdin"
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Take mail as the IMAP poller would: for an MTA that pipes each mail to a command, or a
    backlog of files in one run. One line per mail; exit 0 when every mail was accepted, 65
    when one was rejected (the reasons on stderr), 75 when mail could not be taken for now
    (the database unreachable, a setting wrong: the MTA keeps the mail and tries again)."""
    paths = files or ["-"]
    for path in paths:
        if path != "-" and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            fail(f"cannot read {path}: not a readable file")
    settings = load_settings(failure_code=EX_TEMPFAIL, database_url=database_url)
    max_bytes = service.limits(settings).max_bytes

    def read(path: str) -> tuple[bytes, int]:
        """The mail's first `max_bytes` + 1 bytes (all of it, unless too large to take) and
        its size: the rest of a huge mail is counted, never held."""
        with open(path, "rb") if path != "-" else contextlib.nullcontext(sys.stdin.buffer) as f:
            head = f.read(max_bytes + 1)
            size = len(head)
            while chunk := f.read(READ_CHUNK):
                size += len(chunk)
        return head, size

    async def action(db: Database) -> int:
        secret = await service.reply_secret(db, settings)
        inbox = service.Inbox(db, settings, Storage(settings.storage_dir), secret)
        rejected = 0
        for path in paths:
            outcome = await inbox.ingest(*read(path))
            where = "" if len(paths) == 1 else f"{path}: "
            if outcome.accepted:
                typer.echo(f"{where}{outcome.describe()}")
            else:
                rejected += 1
                typer.echo(f"error: {where}{outcome.describe()}", err=True)
        return rejected

    if run_with_db(settings, action, failure_code=EX_TEMPFAIL):
        raise typer.Exit(EX_DATAERR)


@app.command("test")
def send_test(
    to: str = typer.Option(..., "--to", help="Where the test mail goes"),
    smtp_url: str | None = typer.Option(
        None, "--smtp-url", help="smtp://user:pass@host:port [env SUPPORTDESK_SMTP_URL]"
    ),
) -> None:
    """Send one test mail through the configured SMTP server and print what it answered."""
    settings = load_settings(smtp_url=smtp_url)
    if settings.smtp_url is None:
        fail("no SMTP server: set SUPPORTDESK_SMTP_URL (or --smtp-url)")
    try:
        address.sender(to)
    except ValueError:
        fail(f"--to {to!r} is not an e-mail address")
    target = smtp.parse_url(settings.smtp_url)
    sender = address.sender(settings.mail_from)
    message = EmailMessage()
    message["From"] = sender.header()
    message["To"] = to
    message["Subject"] = "supportdesk test mail"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"This mail was sent by `supportdesk mail test` through {target}.\n"
        f"Links in supportdesk's mail point to {settings.base_url}\n"
    )

    async def send() -> str:
        async with smtp.Connection(target, sender.domain, TEST_TIMEOUT_S) as connection:
            return await connection.send(message, sender.address, [to])

    try:
        answer = asyncio.run(send())
    except (smtp.Unavailable, smtp.Deferred, smtp.Refused) as exc:
        fail(str(exc), 1)
    typer.echo(f"sent to {to} through {target}: the server answered 250 {answer.strip()}")
