"""supportdesk.mail.imap against a real dovecot (tests/mail/conftest.py), and against three
tiny fake servers for what a healthy dovecot never does: stay silent, refuse keywords, hang
up in the middle of a session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from supportdesk.mail.imap import (
    PROCESSED,
    Fetched,
    ImapTarget,
    Mailbox,
    MailboxError,
    parse_url,
)
from tests.mail.dovecot import PASSWORD, Dovecot


def message(number: int, body: bytes = b"") -> bytes:
    return (
        b"From: Customer <customer@example.com>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: Help %d\r\n"
        b"Message-ID: <%d@example.com>\r\n"
        b"\r\n"
        b"Message %d.\r\n%s" % (number, number, number, body)
    )


async def read_all(target: ImapTarget, limit: int = 100) -> list[Fetched]:
    async with Mailbox(target) as mailbox:
        return await mailbox.unprocessed(limit)


async def test_unprocessed_returns_the_mail_oldest_first_byte_for_byte(mailbox: Dovecot) -> None:
    # Bodies that look like protocol: a line ending in a literal's size, parentheses, 8 bits.
    raws = [
        message(1, b"a line that ends like a literal {12}\r\n"),
        message(2, b"(unbalanced (parentheses\r\n) and \xe4\xf6\xfc in Latin-1\r\n"),
        message(3, b"* 3 FETCH (UID 99 BODY[] {5}\r\n"),
    ]
    for raw in raws:
        mailbox.append(raw)
    uids = sorted(mailbox.flags(), key=int)

    expected = [Fetched(uid, raw, len(raw)) for uid, raw in zip(uids, raws, strict=True)]
    assert await read_all(parse_url(mailbox.url)) == expected
    assert all(fetched.whole for fetched in expected)
    # BODY.PEEK[]: reading set no flag
    assert mailbox.flags() == {uid: set() for uid in uids}


async def test_limit_takes_the_oldest(mailbox: Dovecot) -> None:
    raws = [message(number) for number in range(5)]
    for raw in raws:
        mailbox.append(raw)
    async with Mailbox(parse_url(mailbox.url)) as box:
        assert [fetched.data for fetched in await box.unprocessed(2)] == raws[:2]
        assert [fetched.data for fetched in await box.unprocessed(1)] == raws[:1]
        with pytest.raises(ValueError, match="at least 1"):
            await box.unprocessed(0)


async def test_marked_mail_is_not_returned_again(mailbox: Dovecot) -> None:
    for number in range(4):
        mailbox.append(message(number))
    target = parse_url(mailbox.url)
    async with Mailbox(target) as box:
        first, second, third, fourth = await box.unprocessed(10)
        await box.mark_processed([first.uid, third.uid])  # not consecutive: "1,3"
        await box.mark_processed([])
        assert await box.unprocessed(10) == [second, fourth]

    assert mailbox.flags() == {
        first.uid: {PROCESSED, "\\Seen"},
        second.uid: set(),
        third.uid: {PROCESSED, "\\Seen"},
        fourth.uid: set(),
    }
    # a new session, with mail that came after the marking
    mailbox.append(message(5))
    remaining = await read_all(target)
    assert [fetched.uid for fetched in remaining[:2]] == [second.uid, fourth.uid]
    assert [fetched.data for fetched in remaining] == [second.data, fourth.data, message(5)]


async def test_mail_deleted_in_a_mail_client_is_skipped(mailbox: Dovecot) -> None:
    mailbox.append(message(1))
    mailbox.append(message(2))
    first = min(mailbox.flags(), key=int)
    mailbox.store(first, "\\Deleted")
    assert [fetched.data for fetched in await read_all(parse_url(mailbox.url))] == [message(2)]


async def test_a_wrong_password_is_one_line_without_the_password(dovecot: Dovecot) -> None:
    target = replace(parse_url(dovecot.url), password="not-the-password")
    with pytest.raises(MailboxError) as raised:
        await read_all(target)
    assert str(raised.value) == (
        f"IMAP login failed for support@127.0.0.1:{dovecot.port} (wrong user or password)"
    )
    assert raised.value.__context__ is None


async def test_the_password_is_not_logged(
    mailbox: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert await read_all(parse_url(mailbox.url)) == []
    assert "Sending" in caplog.text  # aioimaplib's DEBUG lines were captured
    assert "w0rd" not in caplog.text  # a part of PASSWORD that escaping leaves alone


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_closed_port_cannot_be_reached() -> None:
    port = closed_port()
    target = parse_url(f"imap://support:secret@127.0.0.1:{port}/INBOX")
    with pytest.raises(MailboxError) as raised:
        await read_all(target)
    assert str(raised.value) == f"cannot reach the IMAP server 127.0.0.1:{port}: connection refused"


async def test_a_missing_mailbox_is_named(dovecot: Dovecot) -> None:
    target = replace(parse_url(dovecot.url), mailbox="Nope")
    with pytest.raises(MailboxError) as raised:
        await read_all(target)
    assert str(raised.value) == f"the IMAP server 127.0.0.1:{dovecot.port} has no mailbox 'Nope'"


async def test_a_mailbox_name_with_a_space_and_an_umlaut(dovecot: Dovecot) -> None:
    dovecot.create_mailbox('"Support Eing&AOQ-nge"')  # modified UTF-7 of "Support Eingänge"
    target = parse_url(dovecot.url.replace("/INBOX", "/Support%20Eing%C3%A4nge"))
    assert target.mailbox == "Support Eingänge"
    assert await read_all(target) == []


async def test_imaps_with_a_trusted_certificate(
    mailbox: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mailbox.ca_file))
    mailbox.append(message(1))
    target = parse_url(mailbox.tls_url)
    assert target.tls
    async with Mailbox(target) as box:
        [(uid, raw, _)] = await box.unprocessed(10)
        assert raw == message(1)
        await box.mark_processed([uid])
    assert mailbox.flags() == {uid: {PROCESSED, "\\Seen"}}


async def test_imaps_with_an_untrusted_certificate(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(MailboxError) as raised:
        await read_all(parse_url(dovecot.tls_url))
    assert str(raised.value).startswith(
        f"the TLS certificate of the IMAP server 127.0.0.1:{dovecot.tls_port} is not trusted: "
    )


def test_parse_url() -> None:
    target = parse_url("imaps://support%40example.com:p%40ss%2Fw%25rd%3A@mail.example.com/INBOX")
    assert target == ImapTarget(
        "mail.example.com", 993, "support@example.com", "p@ss/w%rd:", "INBOX", tls=True
    )
    assert repr(target) == "imaps://support@example.com:***@mail.example.com:993/INBOX"
    assert str(target) == repr(target)
    assert "p@ss" not in f"{target} {target!r} {[target]}"

    assert parse_url("imap://u:pw@mail.example.com") == ImapTarget(
        "mail.example.com", 143, "u", "pw", "INBOX", tls=False
    )
    assert parse_url("imap://u:pw@[::1]:1143/Support%20Mail/2024") == ImapTarget(
        "::1", 1143, "u", "pw", "Support Mail/2024", tls=False
    )
    assert str(parse_url("imaps://u:pw@[::1]:1993/")) == "imaps://u:***@[::1]:1993/INBOX"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("https://u:secret@host/INBOX", "starts with imaps:// or imap://"),
        ("imap:/u:secret@host/INBOX", "names no host"),
        ("imap://u:secret@:143/INBOX", "names no host"),
        ("imaps://:secret@host/INBOX", "names no user"),
        ("imaps://u@host/INBOX", "has no password"),
        ("imaps://u:@host/INBOX", "has no password"),
        ("imaps://u:secret@host:99999/INBOX", "port"),
        ("imaps://u:secret@host:abc/INBOX", "port"),
        ("imaps://u:secret@host/INBOX?starttls=1", "no query"),
        ("imaps://u:sec%0D%0Aret@host/INBOX", "control character"),
        ("imaps://u:secret@host/IN%00BOX", "control character"),
    ],
)
def test_parse_url_refuses(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        parse_url(url)
    assert "secret" not in str(raised.value)
    assert "sec" not in str(raised.value).replace("second", "")
    assert "\n" not in str(raised.value)


async def test_a_25_mb_message_comes_back_intact(mailbox: Dovecot) -> None:
    line = b"".join(bytes([33 + (i % 90)]) for i in range(76)) + b"\r\n"
    raw = message(1, line * (25 * 1024 * 1024 // len(line)))
    assert len(raw) > 25_000_000
    mailbox.append(raw)
    async with Mailbox(parse_url(mailbox.url)) as box:
        [(uid, fetched, size)] = await box.unprocessed(10)
        assert (fetched, size) == (raw, len(raw))
        await box.mark_processed([uid])
        assert await box.unprocessed(10) == []


async def test_a_message_over_the_limit_comes_without_its_body(mailbox: Dovecot) -> None:
    small, large = message(1), message(2, b"x" * 5000 + b"\r\n")
    mailbox.append(small)
    mailbox.append(large)
    async with Mailbox(parse_url(mailbox.url)) as box:
        first, second = await box.unprocessed(10, max_bytes=len(small))
    assert (first.data, first.size, first.whole) == (small, len(small), True)
    assert second.size == len(large)
    assert not second.whole
    assert b"xxx" not in second.data
    assert b"Message-ID: <2@example.com>" in second.data
    assert b"From: Customer <customer@example.com>" in second.data
    assert b"Subject: Help 2" in second.data
    assert mailbox.flags() == {first.uid: set(), second.uid: set()}


async def test_a_backlog_of_1000_in_batches_of_100(mailbox: Dovecot) -> None:
    raws = [message(number) for number in range(1000)]
    for raw in raws:
        mailbox.append(raw)
    seen: list[Fetched] = []
    async with Mailbox(parse_url(mailbox.url)) as box:
        # more than aioimaplib parses in one FETCH answer: fetched FETCH_CHUNK at a time
        assert [fetched.data for fetched in await box.unprocessed(1000)] == raws
    started = time.perf_counter()
    async with Mailbox(parse_url(mailbox.url)) as box:
        while batch := await box.unprocessed(100):
            assert len(batch) == 100
            seen.extend(batch)
            await box.mark_processed([fetched.uid for fetched in batch])
    elapsed = time.perf_counter() - started
    assert [fetched.data for fetched in seen] == raws
    uids = [int(fetched.uid) for fetched in seen]
    assert len(set(uids)) == 1000
    assert uids == sorted(uids)
    assert all(flags == {PROCESSED, "\\Seen"} for flags in mailbox.flags().values())
    assert elapsed < 30, f"1,000 mails took {elapsed:.1f} s"


# What a healthy dovecot never does, from a fake server on 127.0.0.1.

Conversation = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_server(conversation: Conversation) -> AsyncIterator[ImapTarget]:
    server = await asyncio.start_server(conversation, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield parse_url(f"imap://support:secret@127.0.0.1:{port}/INBOX")
    finally:
        server.close()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()
    writer.close()


def imap_until_select(permanent_flags: bytes) -> Conversation:
    """Greets, logs in, selects with these PERMANENTFLAGS, logs out; hangs up on anything
    else."""

    async def conversation(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK fake IMAP ready\r\n")
        while line := await reader.readline():
            tag, command = line.split()[:2]
            if command == b"CAPABILITY":
                writer.write(b"* CAPABILITY IMAP4rev1\r\n%s OK done\r\n" % tag)
            elif command in (b"LOGIN", b"LOGOUT"):
                writer.write(b"%s OK done\r\n" % tag)
            elif command == b"SELECT":
                writer.write(
                    b"* OK [PERMANENTFLAGS %s] flags\r\n%s OK [READ-WRITE] done\r\n"
                    % (permanent_flags, tag)
                )
            else:
                break
            await writer.drain()
        writer.close()

    return conversation


async def test_a_silent_server_times_out() -> None:
    async with fake_server(silent) as target:
        started = time.monotonic()
        with pytest.raises(MailboxError) as raised:
            async with Mailbox(target, timeout=0.3):
                pass
    assert str(raised.value) == f"IMAP server {target.address} did not answer within 0.3 s"
    assert time.monotonic() - started < 3


async def test_a_mailbox_without_keywords_is_refused() -> None:
    async with fake_server(imap_until_select(b"(\\Seen \\Deleted)")) as target:
        with pytest.raises(MailboxError) as raised:
            async with Mailbox(target, timeout=2):
                pass
    assert str(raised.value) == (
        f"the mailbox 'INBOX' on the IMAP server {target.address} does not let support set "
        f"the keyword {PROCESSED} (read-only?)"
    )


async def test_a_server_hanging_up_mid_session() -> None:
    async with fake_server(imap_until_select(b"(\\Seen \\*)")) as target:
        started = time.monotonic()
        with pytest.raises(MailboxError) as raised:
            async with Mailbox(target, timeout=5) as box:
                await box.unprocessed(10)
        # neither the command nor leaving the block waited for the timeout
        assert time.monotonic() - started < 2
    assert str(raised.value) == f"the IMAP server {target.address} closed the connection"


def test_the_password_is_not_in_the_fixture_url_unencoded(dovecot: Dovecot) -> None:
    assert PASSWORD not in dovecot.url
    assert parse_url(dovecot.url).password == PASSWORD
