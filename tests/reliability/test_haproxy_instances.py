"""Three `supportdesk serve --workers 1` instances behind haproxy (round robin, keep-alive on both
sides), on one PostgreSQL database and one Redis, under a mixed load through haproxy.

The instances share nothing but the database and Redis, so every check below is one that a
deployment behind a load balancer relies on:

- no acknowledged write is lost, and a read through any instance shows the writes a client
  had acknowledged through the others (`test_no_acknowledged_write_is_lost`);
- live streams, each held by one instance, carry the events of the writes made through all
  three, in id order, kept open through haproxy by the heartbeats
  (`test_every_stream_sees_every_event_in_id_order`);
- the webhooks job runs in one place: each event reaches the endpoint exactly once
  (`test_each_event_reaches_the_webhook_exactly_once`);
- a key's rate limit is counted once for all instances, in Redis
  (`test_the_rate_limit_is_shared_by_the_instances`).

The instances, haproxy, the webhook receiver and the load are set up once for the module;
SUPPORTDESK_HAPROXY_SECONDS sets how long the load runs (4 s by default).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from supportdesk.auth.ratelimit import WINDOW_S
from tests.conftest import TEST_DATABASE, _recreate_database, postgres_url
from tests.e2e.conftest import Server, run_cli, serving
from tests.e2e.receiver import (
    Receiver,
    check_arrivals,
    create_webhook,
    expected,
    feed,
    missing,
    newest_event,
    receiving,
    wait_delivered,
)
from tests.e2e.sse import StreamClient, ids_until
from tests.haproxy import haproxy_log, running_haproxy
from tests.reliability.test_rate_limit_shared import REDIS_URL, redis_reachable

pytestmark = pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")

INSTANCES = 3
CLIENTS = 16
SECONDS = float(os.environ.get("SUPPORTDESK_HAPROXY_SECONDS", "4"))
HEARTBEAT_S = 1.0  # the streams' heartbeat here: far below haproxy's 30 s `timeout server`
LIMIT = 30  # the rate-limited key's requests a minute
DELIVERY_WAIT_S = 30.0  # for the last webhook deliveries after the load, on a loaded machine
CATCH_UP_S = 20.0  # for the streams to read the last event after the load
PRIORITIES = ("low", "medium", "high", "urgent")
STREAM_PATH = "/api/v1/admin/events/stream"


@dataclass
class Cluster:
    servers: list[Server]
    url: str  # haproxy's, e.g. http://127.0.0.1:PORT
    token: str  # the demo key (no rate limit here: SUPPORTDESK_RATE_LIMIT_PER_MINUTE=0)
    database_url: str
    receiver: Receiver
    webhook_id: int
    webhook_after: int  # the newest event when the endpoint was created
    user: int  # the customer the load writes for
    haproxy_log: Path  # haproxy's output: its warnings, such as a server taken out

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1/admin",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=20,
        )


def process_of(response: httpx.Response) -> str:
    """The serving process: an `X-Request-ID` the server made starts with its process's
    random prefix (`supportdesk.observability`), one per instance with `--workers 1`."""
    return response.headers["x-request-id"][:16]


def webhooks_holder(server: Server) -> str | None:
    """The `webhooks` job's lease holder (`host:pid:random`) as the instance's `/health` says."""
    response = httpx.get(f"{server.base_url}/health", timeout=5)
    assert response.status_code == 200, response.text
    holder: str | None = response.json()["jobs"].get("webhooks", {}).get("holder")
    return holder


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll `check` until it holds; fail after `seconds`. Returns the seconds waited."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """An empty database `<TEST_DATABASE>_haproxy`, three instances on it sharing Redis db 15,
    haproxy in front, and a webhook endpoint subscribed to `*` on a local receiver."""
    request.getfixturevalue("postgres_database")  # skipped or failed as the suite says
    name = f"{TEST_DATABASE}_haproxy"
    asyncio.run(_recreate_database(name))
    database_url = postgres_url(name)
    tmp_path = tmp_path_factory.mktemp("haproxy")
    with pytest.MonkeyPatch.context() as env, ExitStack() as stack:
        env.setenv("SUPPORTDESK_REDIS_URL", REDIS_URL)
        # the demo key the load uses is not limited (nor counted in Redis); the key of the
        # rate-limit check has a limit of its own
        env.setenv("SUPPORTDESK_RATE_LIMIT_PER_MINUTE", "0")
        env.setenv("SUPPORTDESK_STREAM_HEARTBEAT", str(HEARTBEAT_S))
        env.setenv("SUPPORTDESK_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on 127.0.0.1
        env.setenv("SUPPORTDESK_WEBHOOK_RETRY_SCHEDULE", ",".join(["1s"] * 12))
        receiver = stack.enter_context(receiving())

        def start(n: int, token: str | None = None) -> Server:
            workdir = tmp_path / f"instance-{n}"
            workdir.mkdir()
            server: Server = stack.enter_context(
                serving(workdir, database_url, "--workers", "1", token=token)
            )
            return server

        # the first alone (it migrates the empty database and prints the demo key), then the
        # others at once; whichever started is stopped by the stack, even if another failed
        first = start(0)
        with ThreadPoolExecutor(INSTANCES - 1) as pool:
            rest = pool.map(start, range(1, INSTANCES), itertools.repeat(first.demo_token))
            servers = [first, *rest]
        ports = [int(server.base_url.rsplit(":", 1)[1]) for server in servers]
        proxy = stack.enter_context(running_haproxy(tmp_path / "haproxy", ports))
        log = haproxy_log(tmp_path / "haproxy", proxy)
        url = f"http://127.0.0.1:{proxy}"
        token = servers[0].demo_token
        with httpx.Client(
            base_url=f"{url}/api/v1/admin",
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        ) as http:
            after = newest_event(http)
            webhook_id = int(create_webhook(http, receiver.url("/hook"), ["*"]))
            created = http.post("/users", json={"email": "haproxy@example.com"})
            assert created.status_code == 201, created.text
            user = int(created.json()["data"]["id"])
        yield Cluster(servers, url, token, database_url, receiver, webhook_id, after, user, log)


@dataclass
class Mixed:
    """What the mixed load was told, by operation: acknowledged creations and updates, every
    status, transport errors, reads that missed an acknowledged write, serving processes."""

    tickets: dict[int, str] = field(default_factory=dict)  # id -> subject
    messages: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (ticket, text)
    priorities: dict[int, str] = field(default_factory=dict)  # ticket -> last acked priority
    statuses: dict[str, Counter[int]] = field(default_factory=dict)  # operation -> statuses
    failures: list[str] = field(default_factory=list)  # transport errors
    stale: list[str] = field(default_factory=list)  # a retrieve older than an acknowledged write
    processes: Counter[str] = field(default_factory=Counter)  # X-Request-ID prefix -> responses

    def saw(self, operation: str, response: httpx.Response) -> int:
        self.statuses.setdefault(operation, Counter())[response.status_code] += 1
        self.processes[process_of(response)] += 1
        return response.status_code

    def total(self) -> int:
        return sum(sum(counts.values()) for counts in self.statuses.values())


async def mixed_load(base_url: str, token: str, user: int, clients: int, seconds: float) -> Mixed:
    """`clients` concurrent clients through `base_url` for `seconds`: each creates tickets and
    messages on them, changes its own tickets' priority, lists tickets and retrieves its own.
    A client owns its tickets, so the last priority it had acknowledged is the one a retrieve
    (through whichever instance) and the database must show."""
    mixed = Mixed()
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    # idle connections expire well before haproxy's `timeout http-keep-alive` (10 s)
    limits = httpx.Limits(max_connections=clients, keepalive_expiry=1.0)

    async def client(http: httpx.AsyncClient, n: int) -> None:
        rng = random.Random(n)
        mine: list[int] = []
        while time.monotonic() < deadline:
            op = rng.random()
            try:
                if not mine or op < 0.25:
                    subject = f"haproxy {n}-{next(counter)}"
                    body = {"subject": subject, "user_id": user, "priority": rng.choice(PRIORITIES)}
                    r = await http.post("/tickets", json=body)
                    if mixed.saw("create ticket", r) == 201:
                        data = r.json()["data"]
                        ticket = int(data["id"])
                        mixed.tickets[ticket] = subject
                        mixed.priorities[ticket] = data["attributes"]["priority"]
                        mine.append(ticket)
                elif op < 0.45:
                    ticket = rng.choice(mine)
                    text = f"message {n}-{next(counter)}"
                    r = await http.post(
                        "/ticket-messages",
                        json={"ticket_id": ticket, "user_id": user, "message": text},
                    )
                    if mixed.saw("create message", r) == 201:
                        mixed.messages[int(r.json()["data"]["id"])] = (ticket, text)
                elif op < 0.65:
                    ticket = rng.choice(mine)
                    priority = rng.choice(PRIORITIES)
                    r = await http.patch(f"/tickets/{ticket}", json={"priority": priority})
                    if mixed.saw("update ticket", r) == 200:
                        mixed.priorities[ticket] = priority
                elif op < 0.8:
                    r = await http.get("/tickets", params={"page[size]": "10"})
                    mixed.saw("list tickets", r)
                else:
                    ticket = rng.choice(mine)
                    r = await http.get(f"/tickets/{ticket}")
                    if mixed.saw("retrieve ticket", r) == 200:
                        found = r.json()["data"]["attributes"]
                        wanted = (mixed.tickets[ticket], mixed.priorities[ticket])
                        if (found["subject"], found["priority"]) != wanted:
                            mixed.stale.append(f"ticket {ticket}: {found} after {wanted}")
            except httpx.TransportError as exc:
                mixed.failures.append(f"{type(exc).__name__}: {exc}")

    async with httpx.AsyncClient(
        base_url=f"{base_url}/api/v1/admin",
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=30,
    ) as http:
        await asyncio.gather(*(client(http, n) for n in range(clients)))
    return mixed


@dataclass
class Load:
    mixed: Mixed
    feed: list[tuple[int, str]]  # every event after the load: (id, name)
    start: int  # the newest event when the streams opened
    seen: list[list[int]]  # per stream, the event ids it read
    open_after: list[bool]  # per stream, still open once it had read the last event
    beating: list[bool]  # per stream, a heartbeat arrived after the last event
    seconds: float  # how long the load ran
    holders: set[str | None]  # the `webhooks` lease holders seen on the instances meanwhile


@pytest.fixture(scope="module")
def load(cluster: Cluster) -> Load:
    """Three streams opened through haproxy (round robin: one on each instance), then the
    mixed load; the streams are read until they reach the feed's last event."""
    with cluster.api() as http:
        start = newest_event(http)
    streams: list[StreamClient] = []
    try:
        for _ in range(INSTANCES):
            # from that cursor: a stream that opened without one would start at whatever was
            # newest once it connected, maybe after the first writes of the load
            stream = StreamClient(cluster.url, cluster.token, {"Last-Event-ID": str(start)})
            streams.append(stream)
            wait_for(_answered(stream), 20, "a stream to open")
            assert stream.status == 200, stream.status
        with sampling_holders(cluster.servers) as holders:
            began = time.monotonic()
            mixed = asyncio.run(
                mixed_load(cluster.url, cluster.token, cluster.user, CLIENTS, SECONDS)
            )
            took = time.monotonic() - began
        with cluster.api() as http:
            events = feed(http)
        last = events[-1][0]
        seen = [ids_until(stream, last, within=CATCH_UP_S) for stream in streams]
        open_after = [not stream.ended.is_set() for stream in streams]
        beating = [_heartbeat(stream, within=5 * HEARTBEAT_S) for stream in streams]
    finally:
        for stream in streams:
            stream.close()
    return Load(mixed, events, start, seen, open_after, beating, took, holders)


@contextmanager
def sampling_holders(servers: list[Server]) -> Iterator[set[str | None]]:
    """The `webhooks` lease holders each instance's `/health` names, sampled every half
    second (and at both ends) in a thread until the block ends."""
    holders: set[str | None] = set()
    stopping = threading.Event()

    def sample() -> None:
        while True:
            holders.update(webhooks_holder(server) for server in servers)
            if stopping.wait(0.5):
                return

    holders.update(webhooks_holder(server) for server in servers)
    thread = threading.Thread(target=sample, name="lease-sampler", daemon=True)
    thread.start()
    try:
        yield holders
    finally:
        stopping.set()
        thread.join(10)
    holders.update(webhooks_holder(server) for server in servers)


def _answered(stream: StreamClient) -> Callable[[], bool]:
    return lambda: stream.status is not None or stream.ended.is_set()


def _heartbeat(stream: StreamClient, within: float) -> bool:
    """Whether a comment line (a heartbeat) arrives on the stream within `within` seconds."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            if "comment" in stream.messages.get(timeout=left):
                return True
        except queue.Empty:
            return False
    return False


async def _stored(url: str) -> tuple[dict[int, tuple[str, str]], dict[int, tuple[int, str]]]:
    """The tickets (id -> subject, priority) and messages (id -> ticket, text) as stored."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        tickets = {
            r["id"]: (r["subject"], r["priority"])
            for r in await conn.fetch("SELECT id, subject, priority FROM tickets")
        }
        messages = {
            r["id"]: (r["ticket_id"], r["message"])
            for r in await conn.fetch("SELECT id, ticket_id, message FROM ticket_messages")
        }
        return tickets, messages
    finally:
        await conn.close()


def test_no_acknowledged_write_is_lost(cluster: Cluster, load: Load) -> None:
    """Every creation answered 201 is in the database with what was sent, and nothing was
    created that was not acknowledged; each ticket's priority is the last one its client had
    acknowledged; every retrieve, through whichever instance haproxy chose, showed the
    client's acknowledged writes (no instance serves a stale copy). No transport error: the
    timeouts of the client, haproxy and the servers are ordered. And the load really was
    spread: every instance answered a share of it."""
    mixed = load.mixed
    expected_status = {
        "create ticket": 201,
        "create message": 201,
        "update ticket": 200,
        "list tickets": 200,
        "retrieve ticket": 200,
    }
    assert mixed.failures == [], mixed.failures[:10]
    for operation, status in expected_status.items():
        counts = mixed.statuses.get(operation, Counter())
        assert set(counts) == {status}, (operation, dict(counts))
    assert mixed.total() >= 100, mixed.statuses
    assert mixed.stale == [], mixed.stale[:10]
    assert len(mixed.processes) == INSTANCES, mixed.processes
    tickets, messages = asyncio.run(_stored(cluster.database_url))
    assert {i: subject for i, (subject, _) in tickets.items()} == mixed.tickets
    assert {i: priority for i, (_, priority) in tickets.items()} == mixed.priorities
    assert messages == mixed.messages
    shares = ", ".join(str(n) for n in sorted(mixed.processes.values()))
    print(
        f"\nmixed load through haproxy: {mixed.total()} requests in {load.seconds:.1f} s by "
        f"{CLIENTS} clients ({shares} per instance), "
        + ", ".join(f"{op} {sum(c.values())}" for op, c in mixed.statuses.items())
        + f"; {len(mixed.tickets)} tickets and {len(mixed.messages)} messages all stored, "
        f"{len(mixed.priorities)} priorities as last acknowledged; 0 transport errors"
    )


def test_every_stream_sees_every_event_in_id_order(cluster: Cluster, load: Load) -> None:
    """Each stream, held by one instance, read every event the feed holds after its cursor
    (the writes of all three instances), exactly once and in id order; it was still open
    afterwards and heartbeats kept arriving through haproxy. Once closed, the three streams'
    access log records show they were held by the three instances."""
    wanted = [event_id for event_id, _ in load.feed if event_id > load.start]
    assert len(wanted) >= 100, len(wanted)
    for n, ids in enumerate(load.seen):
        assert ids == wanted, (
            f"stream {n}: {len(ids)} of {len(wanted)} events; missing "
            f"{sorted(set(wanted) - set(ids))[:10]}, order broken at "
            f"{[(a, b) for a, b in itertools.pairwise(ids) if b <= a][:10]}"
        )
    assert all(load.open_after), load.open_after
    assert all(load.beating), load.beating

    def streams_per_instance() -> list[int]:
        return [
            server.output.read_text().count(f"GET {STREAM_PATH} 200") for server in cluster.servers
        ]

    # the access log record of a stream is written when it ends (the client closed it)
    wait_for(lambda: sum(streams_per_instance()) >= INSTANCES, 10, "the streams to end")
    assert streams_per_instance() == [1] * INSTANCES, streams_per_instance()
    print(
        f"\nstreams: {len(load.seen)} (one per instance) each read the {len(wanted)} events of "
        "the load in id order; heartbeats kept them open through haproxy"
    )


async def _settled(url: str, webhook_id: int, last: int) -> bool:
    """The endpoint's cursor has passed `last` and none of its deliveries is pending: no
    attempt is left to make, so no further request (a duplicate) can come."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        cursor = await conn.fetchval("SELECT event_cursor FROM webhooks WHERE id = $1", webhook_id)
        pending = await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries"
            " WHERE webhook_id = $1 AND state <> 'delivered'",
            webhook_id,
        )
        return bool(cursor >= last and pending == 0)
    finally:
        await conn.close()


def test_each_event_reaches_the_webhook_exactly_once(cluster: Cluster, load: Load) -> None:
    """Every event of the feed since the endpoint was created reached the receiver, each
    under its own `webhook-id` exactly once (one request per event: no instance dispatched
    what another had), first arrivals in id order; the `webhooks` lease stayed with one
    process throughout (sampled on every instance during the load and after the
    deliveries)."""
    wanted = {"/hook": expected(load.feed, cluster.webhook_after, ["*"])}
    waited = wait_delivered(cluster.receiver, wanted, DELIVERY_WAIT_S)
    assert not any(missing(cluster.receiver, wanted).values()), missing(cluster.receiver, wanted)
    last = load.feed[-1][0]
    wait_for(
        lambda: asyncio.run(_settled(cluster.database_url, cluster.webhook_id, last)),
        DELIVERY_WAIT_S,
        "every delivery to be recorded",
    )
    requests = cluster.receiver.at("/hook")
    arrivals = check_arrivals(requests, wanted["/hook"], "/hook")
    ids = Counter(request.webhook_id for request in requests)
    assert arrivals.requests == arrivals.events == len(wanted["/hook"]), "a duplicate delivery"
    assert set(ids.values()) == {1}, [i for i, n in ids.items() if n > 1][:10]
    holders = load.holders | {webhooks_holder(server) for server in cluster.servers}
    assert len(holders) == 1 and None not in holders, holders
    print(
        f"\nwebhooks: {arrivals.events} events delivered once each ({arrivals.requests} "
        f"requests, one dispatcher: {holders.pop()}), the last {waited:.1f} s after the load"
    )


def limited_key(url: str) -> tuple[int, str]:
    """A new key limited to LIMIT requests a minute, made with the CLI: (id, token)."""
    created = run_cli(
        "keys", "create", "--name", "haproxy rl", "--all", "--rate-limit", str(LIMIT),
        "--database-url", url,
    )  # fmt: skip
    lines = created.stdout.strip().splitlines()
    key_id = int(lines[0].split("Created API key ", 1)[1].split()[0])
    return key_id, lines[-1]


async def burst(url: str, token: str, count: int) -> list[httpx.Response]:
    """`count` requests at once through haproxy, each on its own connection to it."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=count, keepalive_expiry=1.0)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=20) as http:
        return await asyncio.gather(
            *(
                http.get(f"{url}/api/v1/admin/tickets", params={"page[size]": "1"})
                for _ in range(count)
            )
        )


def test_the_rate_limit_is_shared_by_the_instances(cluster: Cluster) -> None:
    """A key limited to LIMIT requests a minute sends 2 x LIMIT at once through haproxy, which
    spreads them over the three instances: exactly LIMIT pass and the rest are answered 429,
    so the instances count in one place (Redis). Without the shared store each instance
    would count alone and let up to LIMIT through itself. The burst must fall in one
    one-minute window: one that straddled a window's end is repeated with a new key."""
    for _ in range(2):
        _, token = limited_key(cluster.database_url)
        window = int(time.time() // WINDOW_S)
        responses = asyncio.run(burst(cluster.url, token, 2 * LIMIT))
        if int(time.time() // WINDOW_S) == window:
            break
    else:
        pytest.fail("two bursts straddled a rate-limit window")
    statuses = Counter(response.status_code for response in responses)
    by_process: dict[str, Counter[int]] = {}
    for response in responses:
        by_process.setdefault(process_of(response), Counter())[response.status_code] += 1
    assert len(by_process) == INSTANCES, by_process
    assert statuses == {200: LIMIT, 429: LIMIT}, (statuses, by_process)
    print(
        f"\nrate limit {LIMIT}/min: {2 * LIMIT} requests through haproxy, "
        f"{statuses[200]} accepted and {statuses[429]} refused (429); per instance "
        + ", ".join(f"{dict(c)}" for c in by_process.values())
    )


def test_no_instance_logged_an_error_nor_left_haproxy(cluster: Cluster) -> None:
    """None of the three instances logged a traceback or an error during the module, and
    haproxy never took one out of the rotation (a failed `/health` check would)."""
    for server in cluster.servers:
        for line in server.output.read_text().splitlines():
            assert "Traceback" not in line, line
            if line.startswith("{"):
                assert json.loads(line).get("level") not in ("error", "critical"), line
    haproxy = cluster.haproxy_log.read_text()
    assert "is DOWN" not in haproxy and "ALERT" not in haproxy, haproxy
