"""Webhook checks for whole-process tests: a receiver on 127.0.0.1 in its own threads
(`http.server`), which records every request and answers as the test says; a writer thread
that makes events; and the checks of what reached the receiver against the events feed.

The API tests' receiver (`tests/webhooks.py`) runs in the test's event loop beside an app in
the same process; this one serves `supportdesk serve` subprocesses from plain threads, so
tests that are not async can use it and it keeps answering while the test blocks."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson

HOLD_S = 20.0  # the longest a held request waits for its release


@dataclass(frozen=True)
class Request:
    """One request as the receiver saw it, and the status it answered (0: held, and answered
    503 to a sender that was killed meanwhile)."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() at arrival
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(self.body)
        return loaded

    @property
    def event_id(self) -> int:
        return int(self.payload["data"]["id"])

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


# (path, that path's request number from 1) -> the status to answer
Policy = Callable[[str, int], int]


def always_ok(path: str, n: int) -> int:
    return 200


def every_third_fails(path: str, n: int) -> int:
    """500 to the third, sixth, ... request of each path; 200 otherwise. A failed event's retry
    is the next request of its path, so no event fails twice in a row."""
    return 500 if n % 3 == 0 else 200


class Receiver:
    """Answers POSTs by `policy`, records each one (in arrival order) with its answer."""

    def __init__(self, policy: Policy = always_ok) -> None:
        self.policy = policy
        self.base_url = ""
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._counts: dict[str, int] = {}
        self._hold_next = False
        self.held = threading.Event()  # set when a held request has arrived
        self.release = threading.Event()  # lets the held request answer

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def at(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def hold_next(self) -> None:
        """Keep the next request waiting (no answer) until `release` is set: the test can then
        kill its sender with a delivery in flight. It is recorded with status 0 and answered
        503."""
        self.held.clear()
        self.release.clear()
        with self._lock:
            self._hold_next = True

    def _arrived(self, path: str, headers: dict[str, str], body: bytes) -> int:
        at = time.monotonic()
        with self._lock:
            n = self._counts[path] = self._counts.get(path, 0) + 1
            hold, self._hold_next = self._hold_next, False
            status = 0 if hold else self.policy(path, n)
            self._requests.append(Request(path, headers, body, at, status))
        if hold:
            self.held.set()
            self.release.wait(HOLD_S)
            return 503
        return status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the dispatcher's client expects
    # the status line and headers go out in one write and the body in another: with Nagle's
    # algorithm the second would wait for the sender's delayed ACK, 40 ms a request
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = self.server.receiver._arrived(self.path, headers, body)
        with contextlib.suppress(OSError):  # a sender killed meanwhile
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender killed mid-request resets its connection: not the receiver's error."""


@contextmanager
def receiving(policy: Policy = always_ok) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1 until the block ends; its threads are stopped
    (a held request is released first)."""
    receiver = Receiver(policy)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = receiver
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="webhook-receiver")
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        thread.join(10)
        server.server_close()


class Writer(threading.Thread):
    """Creates tickets and messages on them through `base_url` until `stopping` is set, a write
    every `pause` seconds. A test may point `base_url` at another server meanwhile; transport
    errors (a server killed) are counted and the writing goes on."""

    def __init__(self, base_url: str, token: str, user: str, pause: float = 0.1) -> None:
        super().__init__(name="writer", daemon=True)
        self.base_url = base_url
        self.user = user
        self.pause = pause
        self.stopping = threading.Event()
        self.statuses: list[int] = []
        self.failures = 0
        self._headers = {"Authorization": f"Bearer {token}"}

    def run(self) -> None:
        ticket: str | None = None
        with httpx.Client(headers=self._headers, timeout=10) as http:
            for n in itertools.count():
                if self.stopping.is_set():
                    return
                api = f"{self.base_url}/api/v1/admin"
                try:
                    if ticket is None or n % 3 == 0:
                        subject = f"webhook writer {n}"
                        response = http.post(
                            f"{api}/tickets", json={"subject": subject, "user_id": self.user}
                        )
                        if response.status_code == 201:
                            ticket = response.json()["data"]["id"]
                    else:
                        response = http.post(
                            f"{api}/ticket-messages",
                            json={"ticket_id": ticket, "user_id": self.user, "message": f"m{n}"},
                        )
                    self.statuses.append(response.status_code)
                except httpx.TransportError:
                    self.failures += 1
                self.stopping.wait(self.pause)


@contextmanager
def writing(base_url: str, token: str, user: str, pause: float = 0.1) -> Iterator[Writer]:
    """A `Writer` until the block ends; it is always stopped and joined."""
    writer = Writer(base_url, token, user, pause)
    writer.start()
    try:
        yield writer
    finally:
        writer.stopping.set()
        writer.join(30)
        assert not writer.is_alive(), "the writer did not stop"


def create_webhook(http: httpx.Client, url: str, events: list[str]) -> str:
    """A new endpoint (through an `api` client); returns its id."""
    response = http.post("/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    webhook_id: str = response.json()["data"]["id"]
    return webhook_id


def feed(http: httpx.Client, after: int = 0) -> list[tuple[int, str]]:
    """Every event after `after` from `GET /events` (through an `api` client): (id, name)."""
    events: list[tuple[int, str]] = []
    while True:
        response = http.get("/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()["data"]
        if not page:
            return events
        events += [(int(e["id"]), e["attributes"]["event"]) for e in page]
        after = events[-1][0]


def newest_event(http: httpx.Client) -> int:
    """The newest event's id (0 for none): an endpoint created now receives the events after it."""
    events = feed(http)
    return events[-1][0] if events else 0


def matches(patterns: Sequence[str], name: str) -> bool:
    """SPEC 10's subscription rule, written out independently of the product's: `*`, a family
    such as `ticket.*` (not `ticket_message.*`), or a name; `webhook.test` only by request."""
    if name == "webhook.test":
        return False
    return any(
        pattern == "*"
        or pattern == name
        or (pattern.endswith(".*") and name.startswith(pattern[:-1]))
        for pattern in patterns
    )


def expected(events: Sequence[tuple[int, str]], after: int, patterns: Sequence[str]) -> list[int]:
    """The ids of the events an endpoint created when `after` was the newest must receive."""
    return [event_id for event_id, name in events if event_id > after and matches(patterns, name)]


def missing(receiver: Receiver, wanted: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """Per path, the wanted event ids not yet answered 2xx there."""
    requests = receiver.requests
    return {
        path: missing_of([r for r in requests if r.path == path], ids)
        for path, ids in wanted.items()
    }


def wait_delivered(receiver: Receiver, wanted: Mapping[str, Sequence[int]], within: float) -> float:
    """Wait until every wanted event was answered 2xx at its path, or `within` seconds; returns
    the seconds waited (the assertions that follow say what is missing on a timeout)."""
    started = time.monotonic()
    while any(missing(receiver, wanted).values()):
        if time.monotonic() - started > within:
            break
        time.sleep(0.2)
    return time.monotonic() - started


@dataclass
class Arrivals:
    requests: int
    events: int
    repeated: int  # events that arrived more than once
    failed: int  # requests not answered 2xx


def check_arrivals(requests: Sequence[Request], wanted: Sequence[int], path: str) -> Arrivals:
    """What one endpoint received, against the events it must receive (`wanted`, in id order):

    - exactly the wanted events arrived (nothing unsubscribed, nothing from before its
      creation), every one of them answered 2xx at least once;
    - every request of one event carries the same `webhook-id`, `evt_<event id>`, and the same
      body, whose `data` is that event;
    - first arrivals are in increasing event id order. A first arrival is the first request of
      an event whatever the receiver answered: that is the order a receiver observes, and the
      dispatcher's rule (an endpoint's queue goes out in order and stops at a failure until it
      is retried) makes it hold for every attempt, not only for the successful ones. The first
      2xx of each event are checked too: with a retry schedule longer than any run of
      failures here, no event is given up, so they also follow id order."""
    assert not missing_of(requests, wanted), (path, missing_of(requests, wanted)[:20])
    by_event: dict[int, list[Request]] = {}
    for request in requests:
        by_event.setdefault(request.event_id, []).append(request)
    assert sorted(by_event) == list(wanted), (path, sorted(set(by_event) - set(wanted))[:20])
    for event_id, attempts in by_event.items():
        assert {r.webhook_id for r in attempts} == {f"evt_{event_id}"}, (path, event_id)
        assert len({r.body for r in attempts}) == 1, (path, event_id, "bodies differ")
        payload = attempts[0].payload
        assert payload["type"] == payload["data"]["attributes"]["event"], (path, event_id)
    firsts = list(dict.fromkeys(r.event_id for r in requests))
    assert firsts == sorted(firsts), (path, "first arrivals out of id order", _disorder(firsts))
    first_ok = list(dict.fromkeys(r.event_id for r in requests if r.delivered))
    assert first_ok == sorted(first_ok), (path, "first 2xx out of id order", _disorder(first_ok))
    return Arrivals(
        requests=len(requests),
        events=len(by_event),
        repeated=sum(1 for attempts in by_event.values() if len(attempts) > 1),
        failed=sum(1 for r in requests if not r.delivered),
    )


def missing_of(requests: Sequence[Request], wanted: Sequence[int]) -> list[int]:
    delivered = {r.event_id for r in requests if r.delivered}
    return [i for i in wanted if i not in delivered]


def _disorder(ids: Sequence[int]) -> list[tuple[int, int]]:
    """The first few places where an id follows a greater one."""
    return [(a, b) for a, b in itertools.pairwise(ids) if b < a][:10]
