"""Events benchmarks (issue 9): live-stream fan-out from one worker.

    uv run python bench/events.py streams --clients 1000 --events 200 --rate 10

`streams`: one `supportdesk serve --workers 1` on a fresh SQLite or PostgreSQL database,
`--clients` SSE clients on raw sockets in this process, then `--events` ticket creations at
`--rate` per second. For every (event, client) pair it takes the time from the moment the
creating request was sent (an upper bound of its commit) to the client reading the event, and
prints the share of pairs delivered, p50/p99/max and the worker's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from run import PYTHON, cli, free_port, server, worker_rss_mb

_ID = re.compile(rb"(?m)^id: (\d+)$")


class StreamClient:
    """One SSE connection; `arrivals[id]` is when this client read that event."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}

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
    url = args.database_url or f"sqlite:///{data / 'events.db'}"
    cli("migrate", "--database-url", url)
    created = cli(
        "keys", "create", "--name", "bench", "--all", "--rate-limit", "100000000",
        "--database-url", url,
    )  # fmt: skip
    token = created.strip().splitlines()[-1]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fan = commands.add_parser("streams", help="fan-out to many stream clients from one worker")
    fan.add_argument("--clients", type=int, default=1000)
    fan.add_argument("--events", type=int, default=200)
    fan.add_argument("--rate", type=float, default=10.0)
    fan.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    if args.command == "streams":
        streams(args)


if __name__ == "__main__":
    main()
