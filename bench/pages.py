"""The browser's pages under load (issue 12): server time of the console's Needs-attention
queue and of a ticket page with 200 messages at 100k tickets, what each page costs to transfer
(with its assets, and with them cached), and 500 live pages held by one worker: every one of
them told of a change, how soon, and the worker's memory.

    uv run python bench/pages.py                      # SQLite, 100k tickets (seeded once)
    uv run python bench/pages.py --tickets 100000 --requests 300 --live 500

The server is `supportdesk serve --workers 1`. A page's time is measured at the client, one
request at a time over one keep-alive connection on 127.0.0.1: the server's time plus a
loopback round trip (about 0.1 ms). Every process started is stopped when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from run import (
    HERE,
    PYTHON,
    bench_key,
    cli,
    free_port,
    fresh_copy,
    prepare_database,
    server,
    worker_rss_mb,
)

PASSWORD = "bench-password"  # noqa: S105 (the bench users' throwaway password)
STAFF, CUSTOMER = "bench-staff@example.com", "bench-customer@example.com"
THREAD = 200  # messages on the ticket page measured
ASSETS = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def user(url: str, email: str, staff: bool) -> None:
    found = cli("users", "create", "--email", email, *(["--staff"] if staff else []),
                "--database-url", url)  # fmt: skip
    assert found.strip().isdigit()
    subprocess.run(
        [PYTHON, "-m", "supportdesk", "users", "set-password", email, "--password-stdin",
         "--database-url", url],
        input=PASSWORD + "\n", text=True, check=True, capture_output=True,
    )  # fmt: skip


def api(base: str, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.Client(base_url=f"{base}/api/v1/admin", headers=headers, timeout=30)


def user_id(client: httpx.Client, email: str) -> int:
    found = client.get("/users", params={"filter[email]": email}).json()["data"]
    return int(found[0]["id"])


def long_ticket(client: httpx.Client, customer: int, staff: int) -> int:
    """A ticket with `THREAD` messages, customer and staff by turns."""
    body = {"data": {"type": "tickets", "attributes": {"subject": "A long conversation",
                                                       "user_id": customer}}}  # fmt: skip
    ticket = int(client.post("/tickets", json=body).json()["data"]["id"])
    for number in range(THREAD):
        author = customer if number % 2 == 0 else staff
        text = f"Message {number}: " + "the printer in room 4 still jams on duplex jobs. " * 8
        message = {"data": {"type": "ticket_messages", "attributes": {
            "ticket_id": ticket, "user_id": author, "message": text}}}  # fmt: skip
        assert client.post("/ticket-messages", json=message).status_code == 201
    return ticket


def signed_in(base: str, email: str) -> httpx.Client:
    browser = httpx.Client(base_url=base, timeout=30, headers={"Accept-Encoding": "gzip"})
    form = browser.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = browser.post("/login", data={"csrf": csrf[1], "email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return browser


def timings(browser: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    for _ in range(20):  # warm-up: statement caches, template compilation
        browser.get(path)
    seen = []
    for _ in range(requests):
        started = time.perf_counter()
        response = browser.get(path)
        seen.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    seen.sort()
    return statistics.median(seen), seen[int(len(seen) * 0.99) - 1]


def transfer(browser: httpx.Client, path: str) -> tuple[int, int]:
    """Bytes on the wire (gzipped, as sent) of the page alone (its assets cached) and of the
    page with every asset it names."""
    response = browser.get(path)
    page = int(response.headers["content-length"])
    assets = 0
    for asset in sorted(set(ASSETS.findall(response.text))):
        fetched = browser.get(asset)
        assert fetched.status_code == 200
        assets += int(fetched.headers["content-length"])
    return page, page + assets


async def hold(port: int, cookies: list[tuple[str, str]], ready: asyncio.Event,
               started: list[float], arrived: list[float]) -> None:  # fmt: skip
    """Hold every page's event stream open; note when each is told of the change."""

    async def one(cookie: str, path: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        assert b" 200 " in status, status
        opened.append(None)
        if len(opened) == len(cookies):
            ready.set()
        while line := await reader.readline():
            if line.startswith(b"event: change"):
                arrived.append(time.perf_counter() - started[0])
                break
        writer.close()

    opened: list[None] = []
    await asyncio.gather(*(one(cookie, path) for cookie, path in cookies))


def live(port: int, pages: list[tuple[str, str]], change: object, master: int) -> dict[str, float]:
    async def main() -> dict[str, float]:
        ready = asyncio.Event()
        started: list[float] = [0.0]
        arrived: list[float] = []
        holding = asyncio.create_task(hold(port, pages, ready, started, arrived))
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1)
        rss_held = max(worker_rss_mb(master))
        started[0] = time.perf_counter()
        await asyncio.to_thread(change)  # type: ignore[arg-type]
        await asyncio.wait_for(holding, 30)
        arrived.sort()
        return {
            "pages": len(pages),
            "told": len(arrived),
            "p50_ms": statistics.median(arrived) * 1000,
            "p99_ms": arrived[int(len(arrived) * 0.99) - 1] * 1000,
            "rss_mb": rss_held,
        }

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--live", type=int, default=500)
    parser.add_argument("--data-dir", default=str(HERE / "data"))
    args = parser.parse_args()
    pristine = prepare_database("sqlite", args.tickets, Path(args.data_dir), "")
    url = fresh_copy("sqlite", pristine, "")
    token = bench_key(url)
    user(url, STAFF, staff=True)
    user(url, CUSTOMER, staff=False)
    logs = Path(tempfile.mkdtemp(prefix="supportdesk-pages-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", "1",
               "--log-level", "warning", "--storage-dir", str(logs / "storage")]  # fmt: skip
    with server(command, port, {"SUPPORTDESK_DATABASE_URL": url}, logs / "app.log") as app:
        client = api(base, token)
        customer, staff = user_id(client, CUSTOMER), user_id(client, STAFF)
        ticket = long_ticket(client, customer, staff)
        console, portal = signed_in(base, STAFF), signed_in(base, CUSTOMER)
        pages = {
            "console: Needs attention": (console, "/console/?queue=attention"),
            f"console: ticket, {THREAD} messages": (console, f"/console/tickets/{ticket}"),
            f"portal: ticket, {THREAD} messages": (portal, f"/portal/tickets/{ticket}"),
            "portal: my tickets": (portal, "/portal/"),
        }
        print(f"{args.tickets:,} tickets, SQLite, 1 worker, {args.requests} requests per page")
        print(f"{'page':34} {'p50 ms':>8} {'p99 ms':>8} {'KB cached':>10} {'KB first':>9}")
        for label, (browser, path) in pages.items():
            p50, p99 = timings(browser, path, args.requests)
            cached, first = transfer(browser, path)
            print(f"{label:34} {p50:8.1f} {p99:8.1f} {cached / 1024:10.1f} {first / 1024:9.1f}")

        def change() -> None:
            message = {"data": {"type": "ticket_messages", "attributes": {
                "ticket_id": ticket, "user_id": staff, "message": "Live!"}}}  # fmt: skip
            assert client.post("/ticket-messages", json=message).status_code == 201

        half = args.live // 2
        held = [("; ".join(f"{k}={v}" for k, v in console.cookies.items()),
                 f"/console/live?ticket={ticket}")] * half + [
                ("; ".join(f"{k}={v}" for k, v in portal.cookies.items()),
                 f"/portal/live?ticket={ticket}")] * (args.live - half)  # fmt: skip
        idle = max(worker_rss_mb(app.pid))
        found = live(port, held, change, app.pid)
        print(
            f"live pages: {found['told']:.0f} of {found['pages']:.0f} told of a change, "
            f"p50 {found['p50_ms']:.0f} ms, p99 {found['p99_ms']:.0f} ms from the write's "
            f"request; worker RSS {idle:.0f} MB idle, {found['rss_mb']:.0f} MB holding them"
        )


if __name__ == "__main__":
    main()
