"""Reading the support mailbox over IMAP, for the poller of SPEC 13 ("In").

Handled mail is marked with an IMAP keyword (`PROCESSED`) rather than moved or deleted: the
mailbox stays as the mail provider shows it, people can still read the mail there, and the
next poll, by this instance or another, skips it. Sizes are asked first (`RFC822.SIZE`): a
mail over the size limit is never downloaded, only the header fields that say who sent it.
Bodies are fetched with `BODY.PEEK[]`, so fetching does not set `\\Seen`; the keyword and
`\\Seen` are set together once a batch has been handled, in one `UID STORE`. Everything goes
by UID, never by sequence number: sequence numbers shift when another client expunges mail
between two commands, UIDs do not.

aioimaplib carries the protocol, with these things added around it. Every wait is bounded:
aioimaplib bounds a FETCH only per chunk received (so a 25 MB message on a slow link is not
cut off, and that stays so here) and a `UID STORE` not at all, and when the server hangs up it
leaves the command waiting. Its exceptions and the server's NO and BAD answers become
`MailboxError`, one line without the password. LOGIN's user and SELECT's mailbox are sent as
quoted strings, the mailbox in modified UTF-7: aioimaplib sends both as given. Large batches
are fetched `FETCH_CHUNK` at a time, and aioimaplib's DEBUG line of the LOGIN is dropped (both
explained where they are defined).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import re
import ssl
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import aioimaplib

# The keyword set on mail that has been handled; `$` marks it as a client's own keyword.
PROCESSED = "$Supportdesk"
# NUL, CR and LF would end the command line they are sent in; the other controls have no
# business in a user name, a password or a mailbox name either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A message in a UID FETCH answer: its head line ends with the size of the literal that
# follows (the message); the UID is in the head line or in the line after the literal.
_FETCH_HEAD = re.compile(rb"\d+ FETCH \(.*BODY\[[^\]]*\] \{\d+\}$")
_UID = re.compile(rb"[( ]UID (\d+)")
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)")
# What is fetched of a mail too large to take: enough to record who sent what.
_ENVELOPE = "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)]"
# aioimaplib parses each chunk it receives recursively, a few stack frames per line: a FETCH
# answer of some 300 small messages in one chunk exceeds Python's recursion limit, which kills
# the connection. A larger batch is fetched this many messages per UID FETCH.
FETCH_CHUNK = 100
# After the server hung up, what it sent before is given this long to reach the command.
_HANG_UP_GRACE_S = 0.1


class _NoLoginLine(logging.Filter):
    """aioimaplib logs every line it sends at DEBUG, masking the password as given; but it
    sends the password escaped (a backslash before each `"` and `\\`), and then the mask
    misses it. The LOGIN line is dropped instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.msg if isinstance(record.msg, str) else ""
        return not (text.startswith("Sending") and " LOGIN " in text)


logging.getLogger("aioimaplib.aioimaplib").addFilter(_NoLoginLine())


class MailboxError(Exception):
    """The mailbox cannot be read or marked: one line a person can act on, naming the server
    and never the password."""


@dataclass(frozen=True, repr=False)
class ImapTarget:
    """Where the support mailbox is and how to log in to it (`SUPPORTDESK_IMAP_URL`)."""

    host: str
    port: int
    user: str
    password: str
    mailbox: str
    tls: bool

    @property
    def address(self) -> str:
        """`host:port`, an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}:***@{self.address}/{self.mailbox}"

    __repr__ = __str__


def parse_url(url: str) -> ImapTarget:
    """`imaps://user:password@host:993/INBOX` (TLS; port 993 unless given) or
    `imap://user:password@host/INBOX` (plain; port 143). User, password and mailbox are
    percent-decoded; the mailbox is INBOX unless named. A ValueError says in one line what is
    wrong, never quoting the URL, which holds the password."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError("an IMAP URL starts with imaps:// or imap://")
    if parts.query or parts.fragment:
        raise ValueError("an IMAP URL has no query or fragment: imaps://user:password@host/INBOX")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the IMAP URL's port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("the IMAP URL names no host")
    if not parts.username:
        raise ValueError("the IMAP URL names no user: imaps://user:password@host/INBOX")
    if not parts.password:
        raise ValueError("the IMAP URL has no password: imaps://user:password@host/INBOX")
    user, password = unquote(parts.username), unquote(parts.password)
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    if any(_CONTROL.search(value) for value in (user, password, mailbox)):
        raise ValueError("the IMAP URL's user, password or mailbox holds a control character")
    tls = parts.scheme == "imaps"
    return ImapTarget(parts.hostname, port or (993 if tls else 143), user, password, mailbox, tls)


class Fetched(NamedTuple):
    """A message of the mailbox: its UID, its size on the server, and its bytes as stored, or
    only its From, Subject and Message-ID header fields when it is over the size limit."""

    uid: str
    data: bytes
    size: int

    @property
    def whole(self) -> bool:
        return len(self.data) == self.size


class Mailbox:
    """One IMAP session on the target's mailbox: `async with Mailbox(target) as mailbox:`
    connects, logs in and selects the mailbox read-write; leaving the block logs out.

    `timeout` bounds every wait for the server (for a FETCH, each wait for the next chunk of
    the answer). A Mailbox that raised MailboxError has a connection in an unknown state: leave
    the block, and the next poll opens a new one."""

    def __init__(self, target: ImapTarget, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout
        self._client: Any = None  # aioimaplib.IMAP4, which has no type hints
        self._usable = False
        self._hang_up: asyncio.Future[None]  # done when the connection is gone

    async def __aenter__(self) -> Mailbox:
        tls = ssl.create_default_context() if self.target.tls else None
        self._hang_up = asyncio.get_running_loop().create_future()
        self._client = aioimaplib.IMAP4(
            self.target.host,
            self.target.port,
            timeout=self.timeout,
            conn_lost_cb=self._lost,
            ssl_context=tls,
        )
        try:
            await self._connect()
            await self._login()
            await self._select()
        except BaseException:
            self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Log out, then close the connection whatever the server did; a connection that is
        lost or broke is only closed."""
        try:
            if self._usable:
                with contextlib.suppress(MailboxError):
                    await self._command(self._client.logout())
        finally:
            self._close()

    async def unprocessed(self, limit: int, max_bytes: int | None = None) -> list[Fetched]:
        """Up to `limit` messages without the PROCESSED keyword (nor `\\Deleted`), the lowest
        UID, the oldest, first. A message larger than `max_bytes` comes without its body. One
        UID SEARCH, then per `FETCH_CHUNK` messages one UID FETCH of the sizes and one of the
        bodies (and one of the header fields of those too large)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        found = await self._command(
            self._client.uid_search("UNKEYWORD", PROCESSED, "UNDELETED", charset=None)
        )
        self._check(found, "UID SEARCH")
        # aioimaplib hands over `* SEARCH 3 4 5` as b"3 4 5"; the last line is the tagged one's
        words = (word for line in found.lines[:-1] for word in line.split())
        uids = sorted(int(word) for word in words if word.isdigit())[:limit]
        messages: list[Fetched] = []
        for start in range(0, len(uids), FETCH_CHUNK):
            sizes = await self._sizes(uids[start : start + FETCH_CHUNK])
            small = [uid for uid, size in sizes.items() if max_bytes is None or size <= max_bytes]
            large = [uid for uid in sizes if uid not in small]
            fetched = await self._fetch(small, "BODY.PEEK[]") | await self._fetch(large, _ENVELOPE)
            messages.extend(Fetched(str(uid), fetched[uid], sizes[uid]) for uid in sorted(fetched))
        return messages

    async def _sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """The size of each of these messages that still exists, by UID."""
        answer = await self._command(self._client.uid("fetch", _uid_set(uids), "(RFC822.SIZE)"))
        self._check(answer, "UID FETCH")
        sizes: dict[int, int] = {}
        for line in answer.lines[:-1]:
            uid, size = _UID.search(bytes(line)), _SIZE.search(bytes(line))
            if uid is not None and size is not None:
                sizes[int(uid[1])] = int(size[1])
        return sizes

    async def _fetch(self, uids: Sequence[int], item: str) -> dict[int, bytes]:
        if not uids:
            return {}
        answer = await self._command(
            self._client.uid("fetch", _uid_set(uids), f"(UID {item})"), per_chunk=True
        )
        self._check(answer, "UID FETCH")
        return _bodies(answer.lines)

    async def mark_processed(self, uids: Sequence[str]) -> None:
        """Set PROCESSED and `\\Seen` on these messages, in one UID STORE."""
        if not uids:
            return
        stored = await self._command(
            self._client.uid(
                "store",
                _uid_set(int(uid) for uid in uids),
                "+FLAGS.SILENT",
                f"({PROCESSED} \\Seen)",
            )
        )
        self._check(stored, "UID STORE")

    async def _connect(self) -> None:
        where = self.target.address
        try:
            await self._client.wait_hello_from_server()
        except TimeoutError:
            raise self._silent() from None
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(
                f"the TLS certificate of the IMAP server {where} is not trusted: "
                f"{exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            raise MailboxError(f"TLS with the IMAP server {where} failed: {exc.reason}") from None
        except ConnectionRefusedError:
            raise MailboxError(
                f"cannot reach the IMAP server {where}: connection refused"
            ) from None
        except OSError as exc:
            raise MailboxError(
                f"cannot reach the IMAP server {where}: {exc.strerror or exc}"
            ) from None
        self._usable = True

    async def _login(self) -> None:
        target = self.target
        answer = await self._command(
            self._client.login(aioimaplib.quoted(target.user), target.password)
        )
        if answer.result == "OK":
            return
        text = _text(answer)
        reason = "(wrong user or password)" if "[AUTHENTICATIONFAILED]" in text else f": {text}"
        raise MailboxError(f"IMAP login failed for {target.user}@{target.address} {reason}")

    async def _select(self) -> None:
        """SELECT the mailbox, and make sure the keyword can be kept there: a server that
        drops it would hand over the same mail at every poll."""
        name, where = self.target.mailbox, self.target.address
        wire_name = aioimaplib.quoted(_modified_utf7(name))
        answer = await self._command(self._client.select(wire_name))
        if answer.result != "OK":
            listed = await self._command(self._client.list('""', wire_name))
            if listed.result == "OK" and len(listed.lines) == 1:  # only the tagged line
                raise MailboxError(f"the IMAP server {where} has no mailbox {name!r}")
            raise MailboxError(f"cannot open the mailbox {name!r} on {where}: {_text(answer)}")
        permanent = b" ".join(line for line in answer.lines if b"[PERMANENTFLAGS" in line)
        if b"\\*" not in permanent and PROCESSED.encode() not in permanent:
            raise MailboxError(
                f"the mailbox {name!r} on the IMAP server {where} does not let "
                f"{self.target.user} set the keyword {PROCESSED} (read-only?)"
            )

    async def _command(self, call: Awaitable[Any], *, per_chunk: bool = False) -> Any:
        """The answer to one command, or MailboxError. Bounded in all by `timeout` or, when
        `per_chunk`, by aioimaplib's timer, which starts again with every chunk received; and
        ended when the server hangs up."""
        command = asyncio.ensure_future(call)
        try:
            async with asyncio.timeout(None if per_chunk else self.timeout):
                await asyncio.wait({command, self._hang_up}, return_when=asyncio.FIRST_COMPLETED)
                if not command.done():
                    await asyncio.wait({command}, timeout=_HANG_UP_GRACE_S)
            if not command.done():
                raise MailboxError(f"the IMAP server {self.target.address} closed the connection")
            return command.result()
        except (TimeoutError, aioimaplib.CommandTimeout):
            raise self._silent() from None
        except (aioimaplib.AioImapException, OSError) as exc:
            self._usable = False
            raise MailboxError(
                f"the IMAP session with {self.target.address} failed: {exc!s:.200}"
            ) from None
        finally:
            command.cancel()

    def _check(self, answer: Any, command: str) -> None:
        if answer.result != "OK":
            raise MailboxError(
                f"the IMAP server {self.target.address} refused {command} on the mailbox "
                f"{self.target.mailbox!r}: {_text(answer)}"
            )

    def _silent(self) -> MailboxError:
        self._usable = False
        return MailboxError(
            f"IMAP server {self.target.address} did not answer within {self.timeout:g} s"
        )

    def _lost(self, _exc: Exception | None) -> None:
        self._usable = False
        if not self._hang_up.done():
            self._hang_up.set_result(None)

    def _close(self) -> None:
        self._usable = False
        transport = self._client.protocol.transport
        if transport is not None:
            transport.close()


def _text(answer: Any) -> str:
    """The server's words in the tagged line of an answer."""
    lines = answer.lines
    return bytes(lines[-1]).decode("utf-8", "replace") if lines else str(answer.result)


def _uid_set(uids: Iterable[int]) -> str:
    """`1:3,7,9:10`: consecutive UIDs as ranges, so a batch of a backlog is a short line."""
    runs: list[list[int]] = []
    for uid in sorted(set(uids)):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(first) if first == last else f"{first}:{last}" for first, last in runs)


def _bodies(lines: Sequence[bytes | bytearray]) -> dict[int, bytes]:
    """The messages of a UID FETCH answer by UID. aioimaplib hands each as its head line, the
    literal (a bytearray) and the closing line; other FETCH lines (flag changes another
    client made meanwhile) are skipped."""
    found: dict[int, bytes] = {}
    for index, line in enumerate(lines[:-2]):
        if isinstance(line, bytearray) or not _FETCH_HEAD.match(line):
            continue
        body, tail = lines[index + 1], lines[index + 2]
        uid = _UID.search(line) or _UID.search(bytes(tail))
        if uid is not None and isinstance(body, bytearray):
            found[int(uid[1])] = bytes(body)
    return found


def _modified_utf7(name: str) -> str:
    """A mailbox name as IMAP sends it (RFC 3501 5.1.3): printable ASCII as itself (`&` as
    `&-`), anything else as `&`, base64 of UTF-16 with `,` for `/`, `-`."""
    parts = []
    for printable, run in itertools.groupby(name, lambda char: " " <= char <= "~"):
        text = "".join(run)
        if printable:
            parts.append(text.replace("&", "&-"))
        else:
            encoded = base64.b64encode(text.encode("utf-16-be")).decode("ascii")
            parts.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
    return "".join(parts)
