"""Events benchmarks (issue 9): stream fan-out, webhook latency and dispatch, write cost.

    uv run python bench/events.py streams --clients 1000 --events 200 --rate 10
    uv run python bench/events.py latency --rate 200 --seconds 10
    uv run python bench/events.py dispatch --events 2000 --endpoints 1,10
    uv run python bench/events.py writes --streams 100 --endpoints 2

Every server and receiver it starts is stopped when it ends; all traffic stays on 127.0.0.1.

`streams`: one `supportdesk serve --workers 1` on a fresh SQLite or PostgreSQL database,
`--clients` SSE clients on raw sockets in this process, then `--events` ticket creations at
`--rate` per second. For every (event, client) pair it takes the time from the moment the
creating request was sent (an upper bound of its commit) to the client reading the event, and
prints the share of pairs delivered, p50/p99/max and the worker's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvloop
from run import (
    HERE,
    PYTHON,
    SHAPES,
    _row_count,
    bench_key,
    cli,
    drive,
    ensure_wrk,
    free_port,
    fresh_copy,
    prepare_database,
    server,
    worker_rss_mb,
)

from supportdesk.timestamps import FORMAT

_ID = re.compile(rb"(?m)^id: (\d+)$")


class StreamClient:
    """One SSE connection; `arrivals[id]` is when this client read that event (unless it only
    `drains`: reads and discards, costing the shared CPU next to nothing)."""

    def __init__(self, drains: bool = False) -> None:
        self.arrivals: dict[int, float] = {}
        self.drains = drains

    async def run(self, port: int, token: str, opened: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = (
            "GET /api/v1/admin/events/stream HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n", 1)[0], head
        opened.set()
        tail = b""
        try:
            while chunk := await reader.read(65536):
                if self.drains:
                    continue
                now = time.monotonic()
                text = tail + chunk
                cut = text.rfind(b"\n")
                for match in _ID.finditer(text, 0, cut + 1):
                    self.arrivals.setdefault(int(match.group(1)), now)
                tail = text[cut + 1 :]
        finally:
            writer.close()


async def fan_out(
    port: int, token: str, clients: int, events: int, rate: float
) -> dict[str, float]:
    streams = [StreamClient() for _ in range(clients)]
    opened = [asyncio.Event() for _ in streams]
    tasks = []
    for stream, flag in zip(streams, opened, strict=True):
        tasks.append(asyncio.create_task(stream.run(port, token, flag)))
        if len(tasks) % 50 == 0:
            await asyncio.sleep(0.05)  # do not flood the accept queue
    await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in opened)), 120)
    sent: list[float] = []
    api = f"http://127.0.0.1:{port}/api/v1/admin"
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        user = (await http.post("/users", json={"email": "bench@example.com"})).json()["data"]
        await asyncio.sleep(1.0)  # the user's event reaches everyone before timing starts
        start = time.monotonic()
        for n in range(events):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            sent.append(time.monotonic())
            response = await http.post("/tickets", json={"subject": f"b{n}", "user_id": user["id"]})
            assert response.status_code == 201, response.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = sorted({i for s in streams for i in s.arrivals})
        if len(ids) >= events + 1 and all(len(s.arrivals) >= events + 1 for s in streams):
            break
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # one driver writing one ticket at a time: the timed events are the last `events` ids
    newest = max(i for s in streams for i in s.arrivals)
    first_id = newest - events + 1
    timed = {first_id + k: sent[k] for k in range(events)}
    latencies = [
        (s.arrivals[event_id] - at) * 1000
        for s in streams
        for event_id, at in timed.items()
        if event_id in s.arrivals
    ]
    latencies.sort()
    pairs = clients * events
    return {
        "delivered": len(latencies) / pairs,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": latencies[-1],
    }


def streams(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-events-"))
    url, token = fresh_database(data, args.database_url)
    port = free_port()
    command = [
        PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--storage-dir", str(data / "storage"),
    ]  # fmt: skip
    env = {"SUPPORTDESK_DATABASE_URL": url}
    with server(command, port, env, data / "serve.log") as process:
        figures = asyncio.run(fan_out(port, token, args.clients, args.events, args.rate))
        rss = worker_rss_mb(process.pid)
    print(
        f"{args.clients} stream clients, {args.events} events at {args.rate}/s, one worker "
        f"({url.split(':')[0]}):"
    )
    print(f"{'delivered':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'worker RSS MB':>14}")
    print(
        f"{figures['delivered']:10.4f} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} "
        f"{figures['max_ms']:8.1f} {max(rss):14.0f}"
    )


WEBHOOK_ENV = {"SUPPORTDESK_WEBHOOK_ALLOW_PRIVATE": "1"}


def fresh_database(data: Path, url: str | None) -> tuple[str, str]:
    """A migrated database (a new SQLite file unless `url`) and an all-permissions key."""
    url = url or f"sqlite:///{data / 'events.db'}"
    cli("migrate", "--database-url", url)
    return url, bench_key(url)


def serve_command(port: int, data: Path, workers: int, *extra: str) -> list[str]:
    return [
        PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--storage-dir", str(data / "storage"), *extra,
    ]  # fmt: skip


def receiver_command(port: int) -> list[str]:
    return [PYTHON, str(HERE / "receiver.py"), "--port", str(port)]


def subscribe(api: str, token: str, url: str, events: list[str]) -> str:
    """A new webhook endpoint; returns its id."""
    response = httpx.post(
        f"{api}/webhooks",
        json={"url": url, "events": events},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    endpoint: str = response.json()["data"]["id"]
    return endpoint


def arrivals(receiver: int) -> list[list[object]]:
    found: list[list[object]] = httpx.get(
        f"http://127.0.0.1:{receiver}/arrivals", timeout=30
    ).json()
    return found


async def create_tickets(
    api: str, token: str, count: int, rate: float | None, in_flight: int = 32
) -> dict[int, float]:
    """Create `count` tickets (at `rate` per second, or as fast as `in_flight` requests go);
    returns each ticket's id -> the Unix time its request was sent."""
    sent: dict[int, float] = {}
    limit = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30,
        limits=httpx.Limits(max_connections=in_flight),
    ) as http:  # fmt: skip
        # a new address each time: a --database-url database is used again by later runs
        email = f"load-{time.time_ns()}@example.com"
        user = (await http.post("/users", json={"email": email})).json()["data"]
        start = time.monotonic()

        async def one(n: int) -> None:
            if rate:
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            async with limit:
                for attempt in range(3):  # a kept-alive connection the server just closed
                    at = time.time()
                    try:
                        response = await http.post(
                            "/tickets", json={"subject": f"t{n}", "user_id": user["id"]}
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                assert response.status_code == 201, response.text
                sent[int(response.json()["data"]["id"])] = at

        await asyncio.gather(*(one(n) for n in range(count)))
    return sent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


@dataclass(frozen=True)
class Setup:
    data: Path
    api: str
    token: str
    receiver: int
    env: dict[str, str]


@contextmanager
def webhook_setup(database_url: str | None, *serve_extra: str) -> Iterator[tuple[Setup, str]]:
    """A fresh database with a key, the receiver and `serve --workers 2` on free ports."""
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-events-"))
    url, token = fresh_database(data, database_url)
    port, receiver = free_port(), free_port()
    env = {"SUPPORTDESK_DATABASE_URL": url, **WEBHOOK_ENV}
    with (
        server(receiver_command(receiver), receiver, {}, data / "receiver.log"),
        server(serve_command(port, data, 2, *serve_extra), port, env, data / "serve.log"),
    ):
        api = f"http://127.0.0.1:{port}/api/v1/admin"
        yield Setup(data, api, token, receiver, env), url


def latency(args: argparse.Namespace) -> None:
    """Commit-to-receiver latency of webhook deliveries at a steady rate of ticket creations:
    from the event's `occurred_at` (written in the transaction, just before its commit) to its
    first arrival at the receiver; and, for comparison, from the creating request's start."""
    with webhook_setup(args.database_url) as (setup, url):
        api, token, receiver = setup.api, setup.token, setup.receiver
        subscribe(api, token, f"http://127.0.0.1:{receiver}/hook", ["ticket.created"])
        count = int(args.rate * args.seconds)
        sent = asyncio.run(create_tickets(api, token, count, args.rate))
        deadline = time.monotonic() + 60
        while len(found := arrivals(receiver)) < count and time.monotonic() < deadline:
            time.sleep(0.5)
    first: dict[object, tuple[float, str]] = {}
    for at, _id, ticket, _path, occurred in found:
        first.setdefault(ticket, (float(at), str(occurred)))  # type: ignore[arg-type]
    from_commit = [
        (at - datetime.strptime(occurred, FORMAT).replace(tzinfo=UTC).timestamp()) * 1000
        for at, occurred in first.values()
    ]
    from_request = [(first[t][0] - at) * 1000 for t, at in sent.items() if t in first]
    print(f"webhook latency, {count} events at {args.rate:.0f}/s, 2 workers ({url.split(':')[0]}):")
    print(f"{'from':>8} {'delivered':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, waits in (("commit", from_commit), ("request", from_request)):
        print(
            f"{name:>8} {len(waits) / count:10.4f} {percentile(waits, 0.5):8.1f} "
            f"{percentile(waits, 0.99):8.1f} {max(waits):8.1f}"
        )


def dispatch(args: argparse.Namespace) -> None:
    """Dispatcher throughput: a backlog of events queued while no job runs, then one
    `supportdesk worker` delivering it to a local receiver."""
    print(f"dispatcher throughput, {args.events} events backlog:")
    print(f"{'endpoints':>10} {'deliveries':>11} {'seconds':>8} {'per second':>11}")
    for endpoints in (int(n) for n in args.endpoints.split(",")):
        with webhook_setup(args.database_url, "--no-jobs") as (setup, _url):
            api, token, receiver, env, data = (
                setup.api, setup.token, setup.receiver, setup.env, setup.data
            )  # fmt: skip
            for n in range(endpoints):
                subscribe(api, token, f"http://127.0.0.1:{receiver}/h{n}", ["ticket.*"])
            asyncio.run(create_tickets(api, token, args.events, None))
            wanted = args.events * endpoints
            worker = [PYTHON, "-m", "supportdesk", "worker", "--log-level", "warning"]
            with subprocess_running(worker, env, data / "worker.log"):
                deadline = time.monotonic() + 300
                while len(found := arrivals(receiver)) < wanted and time.monotonic() < deadline:
                    time.sleep(0.5)
        times = sorted(float(at) for at, *_ in found)  # type: ignore[arg-type]
        span = times[-1] - times[0]
        print(f"{endpoints:10d} {len(found):11d} {span:8.2f} {len(found) / span:11.0f}")


@contextmanager
def subprocess_running(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
            start_new_session=True,
        )  # fmt: skip
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def writes(args: argparse.Namespace) -> None:
    """Create-ticket and create-message throughput with and without webhook endpoints and
    stream clients attached, `--rounds` of each in one run, ordered A B B A A B ...: a server
    that slows down through a run (tables and their dead rows grow) weighs on both alike,
    where A B A B always measured B later."""
    wrk = ensure_wrk()
    pristine = prepare_database(args.db, args.tickets, Path(args.data_dir), args.postgres_url)
    url = fresh_copy(args.db, pristine, args.postgres_url)
    token = bench_key(url)
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-events-"))
    port, receiver = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api/v1/admin"
    env = {"SUPPORTDESK_DATABASE_URL": url, **WEBHOOK_ENV}
    users = asyncio.run(_row_count(url, "users"))
    shapes = [shape for shape in SHAPES if shape.name in ("create ticket", "create message")]
    totals: dict[tuple[str, bool], list[float]] = {}
    order = [False, True, True, False] * (args.rounds // 2) + [False, True] * (args.rounds % 2)
    with (
        server(receiver_command(receiver), receiver, {}, data / "receiver.log"),
        server(serve_command(port, data, 2), port, env, data / "serve.log"),
    ):
        streams = BackgroundStreams(port, token)
        endpoints: list[str] = []
        auth = {"Authorization": f"Bearer {token}"}
        try:
            for attached in order:
                if attached and not streams.running:
                    endpoints = [
                        subscribe(api, token, f"http://127.0.0.1:{receiver}/h{n}", ["*"])
                        for n in range(args.endpoints)
                    ]
                    streams.start(args.streams)
                if not attached and streams.running:
                    streams.stop()
                    for endpoint in endpoints:
                        httpx.delete(f"{api}/webhooks/{endpoint}", headers=auth)
                for shape in shapes:
                    figures = drive(wrk, port, shape, token, args.tickets, users, args.duration, 32)
                    totals.setdefault((shape.name, attached), []).append(figures.rps)
                    print(
                        f"  {shape.name:15} attached={attached!s:5} {figures.rps:7.0f} req/s",
                        flush=True,
                    )
        finally:
            streams.stop()
    print(
        f"writes with {args.endpoints} webhook endpoints and {args.streams} stream clients "
        f"attached vs none ({args.db}, {args.tickets} tickets, 2 workers, 32 connections):"
    )
    print(f"{'request':15} {'none req/s':>11} {'attached':>9} {'ratio':>6}")
    for shape in shapes:
        plain = statistics.mean(totals[(shape.name, False)])
        loaded = statistics.mean(totals[(shape.name, True)])
        print(f"{shape.name:15} {plain:11.0f} {loaded:9.0f} {loaded / plain:6.2f}")


class BackgroundStreams:
    """Stream clients on their own event loop in a thread, reading and discarding events."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: list[asyncio.Future[None]] = []

    def start(self, count: int) -> None:
        self._loop = uvloop.new_event_loop()
        opened = threading.Event()

        async def run() -> None:
            flags = [asyncio.Event() for _ in range(count)]
            self._clients = [
                asyncio.ensure_future(StreamClient(drains=True).run(self.port, self.token, flag))
                for flag in flags
            ]
            await asyncio.gather(*(flag.wait() for flag in flags))
            opened.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(run(), self._loop)
        assert opened.wait(60), "the stream clients did not connect"
        self.running = True

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            clients = self._clients

            async def close() -> None:
                for client in clients:
                    client.cancel()
                await asyncio.gather(*clients, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
        self._clients = []
        self._loop = self._thread = None
        self.running = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fan = commands.add_parser("streams", help="fan-out to many stream clients from one worker")
    fan.add_argument("--clients", type=int, default=1000)
    fan.add_argument("--events", type=int, default=200)
    fan.add_argument("--rate", type=float, default=10.0)
    fan.add_argument("--database-url", help="default: a fresh SQLite file")
    late = commands.add_parser("latency", help="webhook latency at a steady event rate")
    late.add_argument("--rate", type=float, default=200.0)
    late.add_argument("--seconds", type=float, default=10.0)
    late.add_argument("--database-url", help="default: a fresh SQLite file")
    send = commands.add_parser("dispatch", help="dispatcher throughput on a backlog")
    send.add_argument("--events", type=int, default=2000)
    send.add_argument("--endpoints", default="1,10", help="comma-separated endpoint counts")
    send.add_argument("--database-url", help="default: a fresh SQLite file")
    load = commands.add_parser("writes", help="write throughput with webhooks and streams")
    load.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    load.add_argument("--tickets", type=int, default=10_000)
    load.add_argument("--streams", type=int, default=100)
    load.add_argument("--endpoints", type=int, default=2)
    load.add_argument("--duration", type=int, default=8)
    load.add_argument("--rounds", type=int, default=2, help="runs of each (none, attached)")
    load.add_argument("--data-dir", default=str(HERE / "data"))
    load.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    {"streams": streams, "latency": latency, "dispatch": dispatch, "writes": writes}[args.command](
        args
    )


if __name__ == "__main__":
    main()
