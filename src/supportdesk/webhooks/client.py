"""The HTTP/1.1 client of webhook deliveries: one POST at a time per connection, connections
kept alive between deliveries, on asyncio streams with llhttp's response parser (`httptools`,
the parser uvicorn serves with).

A general-purpose client (httpx) cost the dispatcher about 0.6 ms of CPU per delivery, more
than the write that made the event; a delivery needs only this much of HTTP: write one
request, read one answer's status and two headers, and know whether the connection can carry
the next request. Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httptools
import httpx

from supportdesk.webhooks.delivery import TIMEOUT_S, Address, Outcome, parse_retry_after

# Answer bytes read (head and body) before the connection is given up; a longer answer is
# judged by its status line and headers, and its connection closed instead of kept.
RESPONSE_LIMIT = 64 * 1024
MAX_ERROR_LENGTH = 500
# An idle connection is closed after this long: servers close theirs after a few seconds
# (uvicorn after 5), and a request written into a connection the server is closing is lost.
KEEP_IDLE_S = 4.0
_READ = 64 * 1024


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trust store, loaded once per process (it takes tens of milliseconds)."""
    return ssl.create_default_context()


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL taken apart: where to connect, what to ask for, which name to verify."""

    tls: bool
    host: str  # the host as sent on the wire: IDNA-encoded, without brackets
    port: int
    path: bytes  # path and query
    authority: bytes  # the Host header: host[:port] as written in the URL
    credentials: bytes | None  # Basic authorization from the URL's user:password, if any

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def of(url: str) -> Target:
        parsed = httpx.URL(url)
        tls = parsed.scheme == "https"
        credentials = None
        if parsed.userinfo:
            pair = f"{parsed.username}:{parsed.password}".encode()
            credentials = b"Basic " + base64.b64encode(pair)
        return Target(
            tls,
            parsed.raw_host.decode("ascii"),
            parsed.port or (443 if tls else 80),
            parsed.raw_path or b"/",
            parsed.netloc,
            credentials,
        )


class _Stale(Exception):
    """A kept-alive connection was closed by the server before it took the request."""


class _Unanswered(Exception):
    """No whole answer came: the message says why."""


class _Answer:
    """The parser's callbacks: what one answer said. Interim (1xx) answers are skipped; bytes
    after the answer (a second answer, junk) are never parsed into it, and mean the connection
    is not reused."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.trailing = False

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if not self.complete:
                raise
            self.trailing = True

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.trailing

    def on_message_begin(self) -> None:
        self.trailing = self.complete

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if not self.complete:
            self.status = self.parser.get_status_code()
            self.head_done = self.status >= 200

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.status < 200:  # 100 Continue, 103 Early Hints: the answer is still to come
            self.headers.clear()
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    @property
    def usable(self) -> bool:
        """Still open, and nothing arrived while idle (a server closing an idle connection
        may first send a 408, which must not pass for the answer to the next request).
        StreamReader has no public view of what it holds unread."""
        return not self.reader.at_eof() and not getattr(self.reader, "_buffer", b"")

    def close(self) -> None:
        """At once: an unfinished exchange or an idle connection has nothing left to send."""
        self.writer.transport.abort()


def _request(target: Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n" % (
        target.path, target.authority, len(body)
    )]  # fmt: skip
    if target.credentials is not None:
        lines.append(b"authorization: %s\r\n" % target.credentials)
    lines.extend(f"{name}: {value}\r\n".encode() for name, value in headers.items())
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


class Sender:
    """Kept-alive connections by (host name, address, port, TLS), reused by the next delivery
    to the same place and closed after `KEEP_IDLE_S` idle.

    Requests go to an address checked by `delivery.resolve`, not to the host name (which could
    resolve elsewhere a moment later: DNS rebinding), with the name as `Host` and as the TLS
    server name, verified against the system's trust store. A connection is kept per host
    name, so one verified for one name never carries another name's request. No redirects, no
    proxies. A kept connection that the server closed with no answer to the request written on
    it is tried once more on a new connection: the server may have taken the request before
    closing, so that delivery can arrive twice, under one `webhook-id` (at least once)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int, bool], list[_Connection]] = {}

    @property
    def idle(self) -> int:
        """How many connections are kept open for the next deliveries."""
        return sum(len(connections) for connections in self._idle.values())

    def close(self) -> None:
        """Close every idle connection."""
        self.expire(0.0)

    def expire(self, idle_s: float = KEEP_IDLE_S) -> None:
        """Close the connections idle for `idle_s` or more."""
        now = time.monotonic()
        for key, connections in list(self._idle.items()):
            kept = []
            for connection in connections:
                if now - connection.idle_since < idle_s:
                    kept.append(connection)
                else:
                    connection.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    async def post(
        self, url: str, addresses: Sequence[Address], body: bytes, headers: Mapping[str, str]
    ) -> Outcome:
        """POST to the first address that accepts a connection, within `TIMEOUT_S` in all.
        Only a 2xx answer is a success; a redirect is reported, not followed."""
        target = Target.of(url)
        request = _request(target, body, headers)
        started = time.perf_counter()
        error = "no address to call"
        try:
            async with asyncio.timeout(TIMEOUT_S):
                for address in addresses:
                    key = (target.host, str(address), target.port, target.tls)
                    kept = self._kept(key)
                    if kept is not None:
                        try:
                            return await self._exchange(key, kept, request, started, reused=True)
                        except _Stale:
                            pass  # the server closed it meanwhile: a new connection follows
                    try:
                        connection = await self._open(target, address)
                    except OSError as exc:
                        error = f"cannot connect to {address}: {exc.strerror or exc}"
                        continue
                    return await self._exchange(key, connection, request, started, reused=False)
        except TimeoutError:
            error = f"no answer within {TIMEOUT_S:g} s"
        except OSError as exc:
            error = f"the connection failed: {exc.strerror or exc}"
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            error = f"not an HTTP/1.1 answer: {exc}"
        except _Unanswered as exc:
            error = str(exc)
        return Outcome(None, _elapsed_ms(started), error[:MAX_ERROR_LENGTH])

    def _kept(self, key: tuple[str, str, int, bool]) -> _Connection | None:
        """The most recently used idle connection for `key` (closing those idle too long)."""
        connections = self._idle.get(key)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            if now - connection.idle_since < KEEP_IDLE_S and connection.usable:
                return connection
            connection.close()
        return None

    async def _open(self, target: Target, address: Address) -> _Connection:
        reader, writer = await asyncio.open_connection(
            str(address),
            target.port,
            ssl=_tls() if target.tls else None,
            server_hostname=target.host if target.tls else None,
        )
        return _Connection(reader, writer)

    async def _exchange(
        self,
        key: tuple[str, str, int, bool],
        connection: _Connection,
        request: bytes,
        started: float,
        *,
        reused: bool,
    ) -> Outcome:
        """Write the request and read the answer. The connection goes back to the pool only
        when the answer was read whole and the server keeps it open; a cancellation, an error
        or an over-long answer closes it."""
        answer = _Answer()
        received = 0
        try:
            try:
                connection.writer.write(request)
                await connection.writer.drain()
                while not answer.complete and received <= RESPONSE_LIMIT:
                    chunk = await connection.reader.read(_READ)
                    if not chunk:
                        if answer.head_done:
                            break  # a body delimited by the connection's end
                        if reused and received == 0:
                            raise _Stale
                        raise _Unanswered("the connection closed before a complete answer")
                    received += len(chunk)
                    answer.feed(chunk)
            except (ConnectionResetError, BrokenPipeError):
                if reused and received == 0:
                    raise _Stale from None
                raise
            if not answer.head_done:
                raise _Unanswered(f"the answer's head exceeds {RESPONSE_LIMIT} bytes")
        finally:
            if answer.reusable:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(key, []).append(connection)
            else:
                connection.close()
        return _outcome(answer, started)


def _outcome(answer: _Answer, started: float) -> Outcome:
    status = answer.status
    if 200 <= status < 300:
        return Outcome(status, _elapsed_ms(started))
    error = f"HTTP {status}"
    if status in (301, 302, 303, 307, 308):
        location = answer.headers.get(b"location", b"?").decode("latin-1")
        error += f": redirect to {location} not followed"
    retry = answer.headers.get(b"retry-after")
    retry_after = parse_retry_after(
        None if retry is None else retry.decode("latin-1"), datetime.now(UTC)
    )
    return Outcome(status, _elapsed_ms(started), error[:MAX_ERROR_LENGTH], retry_after)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
