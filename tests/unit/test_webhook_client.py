"""The webhook HTTP client against real sockets on 127.0.0.1: a scripted server that answers
each request with raw bytes, so every way an answer can be framed (length, chunks, the
connection's end, interim answers, garbage) and every way a connection can end is tried.
TLS against a certificate of a throwaway CA (trustme)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trustme

from supportdesk.webhooks import client, delivery
from supportdesk.webhooks.client import Sender

LOCAL = [ipaddress.ip_address("127.0.0.1")]
BODY = b'{"type":"user.created"}'
HEADERS = {"webhook-id": "evt_1", "content-type": "application/json"}
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
CLOSE = None  # close the connection instead of answering


@dataclass
class Scripted:
    """Answers request n with `answers[n]` (raw bytes, or CLOSE), then with OK; closes the
    connection after an answer that says `connection: close`."""

    answers: list[bytes | None] = field(default_factory=list)
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)  # (head, body)
    connections: int = 0
    closed: int = 0  # connections the client ended
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed += 1
                    return
                length = next(
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                self.requests.append((head, await reader.readexactly(length)))
                answer = self.answers.pop(0) if self.answers else OK
                if answer is CLOSE:
                    return
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    return
        finally:
            writer.close()


@asynccontextmanager
async def serving(scripted: Scripted, tls: ssl.SSLContext | None = None) -> AsyncIterator[Scripted]:
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0, ssl=tls)
    scripted.port = server.sockets[0].getsockname()[1]
    try:
        yield scripted
    finally:
        server.close()
        for writer in scripted.writers:  # the handlers still reading end, and see EOF
            writer.close()
        await asyncio.sleep(0.01)


async def post(sender: Sender, url: str) -> delivery.Outcome:
    return await sender.post(url, LOCAL, BODY, HEADERS)


async def twice(answer: bytes) -> tuple[delivery.Outcome, delivery.Outcome, int]:
    """Two deliveries through one sender to a server that answers the first with `answer`
    (then OK); with how many connections they took."""
    sender = Sender()
    async with serving(Scripted([answer])) as server:
        url = f"http://127.0.0.1:{server.port}/"
        first, second = await post(sender, url), await post(sender, url)
        sender.close()
    return first, second, server.connections


async def test_the_request_and_a_kept_alive_connection() -> None:
    sender = Sender()
    async with serving(Scripted()) as server:
        url = f"http://127.0.0.1:{server.port}/hooks/in?x=1"
        outcomes = [await post(sender, url) for _ in range(3)]
        sender.close()
        await asyncio.sleep(0.05)
    assert [o.status_code for o in outcomes] == [200, 200, 200]
    assert all(o.delivered and o.error is None for o in outcomes)
    assert server.connections == 1 and server.closed == 1
    head, body = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hooks/in?x=1 HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}" in lines
    assert "webhook-id: evt_1" in lines and f"content-length: {len(BODY)}" in lines
    assert body == BODY


KEPT, ENDED = 1, 2  # connections two requests took


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n",
            KEPT,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", KEPT),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n", KEPT),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok", KEPT),
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthe body ends with the connection", ENDED),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok", ENDED),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n" + b"x" * 1048576, ENDED),
    ],
    ids=[
        "chunked",
        "no-content",
        "interim-answer-first",
        "http-1.0-keep-alive",
        "until-closed",
        "connection-close",
        "over-long",
    ],
)
async def test_answers_framed_every_way_and_whether_their_connection_is_kept(
    answer: bytes, connections: int
) -> None:
    first, second, taken = await twice(answer)
    assert first.delivered and second.delivered
    assert taken == connections


async def test_a_kept_connection_the_server_dropped_is_replaced_once() -> None:
    sender = Sender()
    async with serving(Scripted([OK, CLOSE])) as server:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await post(sender, url)).delivered
        # the second request reaches the kept connection, which the server closes unanswered,
        # as one closing an idle connection at that moment would: it goes out again on a new one
        outcome = await post(sender, url)
        sender.close()
    assert outcome.delivered
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_new_connection_closed_unanswered_is_a_failure() -> None:
    sender = Sender()
    async with serving(Scripted([CLOSE])) as server:
        outcome = await post(sender, f"http://127.0.0.1:{server.port}/")
    assert outcome.status_code is None
    assert outcome.error == "the connection closed before a complete answer"


async def test_failures_redirects_and_retry_after() -> None:
    sender = Sender()
    answers: list[bytes | None] = [
        b"HTTP/1.1 302 Found\r\nlocation: http://elsewhere/\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 503 Busy\r\nRetry-After: 120\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n",
    ]
    async with serving(Scripted(answers)) as server:
        url = f"http://127.0.0.1:{server.port}/"
        moved, busy, gone = [await post(sender, url) for _ in range(3)]
        sender.close()
    assert (moved.status_code, moved.error) == (
        302,
        "HTTP 302: redirect to http://elsewhere/ not followed",
    )
    assert (busy.status_code, busy.error, busy.retry_after) == (503, "HTTP 503", 120)
    assert gone.gone and not gone.delivered
    assert len(server.requests) == 3  # the redirect was not followed


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"hello\r\n\r\n", "not an HTTP/1.1 answer"),
        (b"HTTP/1.1 200 OK\r\nx-long: " + b"a" * 100_000, "the answer's head exceeds"),
    ],
    ids=["garbage", "endless-head"],
)
async def test_malformed_answers_are_failures(answer: bytes, error: str) -> None:
    sender = Sender()
    async with serving(Scripted([answer])) as server:
        outcome = await post(sender, f"http://127.0.0.1:{server.port}/")
    assert outcome.status_code is None
    assert outcome.error is not None and outcome.error.startswith(error)


async def test_no_answer_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "TIMEOUT_S", 0.2)
    sender = Sender()
    silent = asyncio.Event()

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await silent.wait()
        writer.close()

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await post(sender, f"http://127.0.0.1:{port}/")
    finally:
        silent.set()
        server.close()
    assert (outcome.status_code, outcome.error) == (None, "no answer within 0.2 s")
    assert sender.idle == 0  # the connection of an unanswered request is not kept


async def test_the_next_address_when_one_refuses() -> None:
    sender = Sender()
    async with serving(Scripted()) as server:
        addresses = [ipaddress.ip_address("::1"), *LOCAL]  # nothing listens on ::1 here
        outcome = await sender.post(f"http://localhost:{server.port}/", addresses, BODY, HEADERS)
        sender.close()
    assert outcome.delivered
    assert f"host: localhost:{server.port}" in server.requests[0][0].decode()


async def test_idle_connections_expire() -> None:
    sender = Sender()
    async with serving(Scripted()) as server:
        assert (await post(sender, f"http://127.0.0.1:{server.port}/")).delivered
        sender.expire(idle_s=60)
        assert sender.idle == 1
        sender.expire(idle_s=0)
        assert sender.idle == 0
        await asyncio.sleep(0.05)
    assert server.closed == 1


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def _tls_server(authority: trustme.CA, names: list[str]) -> tuple[ssl.SSLContext, list[str]]:
    """A server context for a certificate naming `hooks.example`, and the server names (SNI)
    clients asked for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hooks.example").configure_cert(context)

    def seen(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(str(name))

    context.sni_callback = seen  # type: ignore[assignment]
    return context, names


async def test_https_verifies_the_host_name_it_asked_for(
    authority: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    monkeypatch.setattr(client, "_tls", lambda: trusting)
    context, names = _tls_server(authority, [])
    sender = Sender()
    async with serving(Scripted(), context) as server:
        good = await post(sender, f"https://hooks.example:{server.port}/in")
        wrong = await post(sender, f"https://other.example:{server.port}/in")
        sender.close()
    assert good.delivered
    assert names == ["hooks.example", "other.example"]
    assert wrong.status_code is None and wrong.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in wrong.error and "other.example" in wrong.error
    assert f"host: hooks.example:{server.port}" in server.requests[0][0].decode()


async def test_https_trusts_only_the_system_store(authority: trustme.CA) -> None:
    context, _ = _tls_server(authority, [])
    sender = Sender()
    async with serving(Scripted(), context) as server:
        outcome = await post(sender, f"https://hooks.example:{server.port}/in")
    assert outcome.status_code is None and outcome.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert server.requests == []


@pytest.mark.parametrize(
    "answer",
    [
        OK + b"junk that is no answer",
        OK + b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\na body a 204 must not have",
    ],
    ids=["junk", "a-second-answer", "body-on-204"],
)
async def test_bytes_after_the_answer_do_not_change_it_and_end_the_connection(
    answer: bytes,
) -> None:
    first, second, taken = await twice(answer)
    assert first.delivered and first.error is None
    assert second.delivered
    assert taken == 2


async def test_what_an_idle_connection_received_is_not_taken_for_the_next_answer() -> None:
    timeout = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    sender = Sender()
    idle: list[asyncio.StreamWriter] = []

    async def answer_then_time_out(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n" + BODY)
        writer.write(OK)
        if not idle:  # the first connection: the server gives up on it while it is idle
            idle.append(writer)
            await asyncio.sleep(0.05)
            writer.write(timeout)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(answer_then_time_out, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await post(sender, f"http://127.0.0.1:{port}/")).delivered
        await asyncio.sleep(0.2)
        outcome = await post(sender, f"http://127.0.0.1:{port}/")
        sender.close()
    finally:
        server.close()
    assert outcome.delivered, outcome


async def test_credentials_in_the_url_are_sent_as_basic_authorization() -> None:
    sender = Sender()
    async with serving(Scripted()) as server:
        outcome = await post(sender, f"http://hook:s%40cret@127.0.0.1:{server.port}/in")
        sender.close()
    assert outcome.delivered
    head = server.requests[0][0].decode()
    assert "authorization: Basic aG9vazpzQGNyZXQ=" in head.split("\r\n")  # hook:s@cret
    assert f"host: 127.0.0.1:{server.port}" in head.split("\r\n")
