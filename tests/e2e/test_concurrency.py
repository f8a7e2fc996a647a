"""The server's own concurrency never surfaces as an error: two workers, many clients writing
and reading at once, on SQLite (no "database is locked") and on PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import serving

WRITES = 300
CONCURRENCY = 32


async def _storm(base: str, token: str) -> list[int]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"{base}/api/v1/admin", headers=headers, limits=limits, timeout=30
    ) as http:
        owner = (await http.post("/users", json={"email": "storm@example.com"})).json()["data"][
            "id"
        ]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(n: int) -> int:
            async with gate:
                if n % 3 == 2:
                    return (
                        await http.get("/tickets", params={"sort": "-id", "include": "user"})
                    ).status_code
                response = await http.post(
                    "/tickets", json={"subject": f"storm {n}", "user_id": owner}
                )
                if response.status_code == 201 and n % 2:
                    ticket = response.json()["data"]["id"]
                    patched = await http.patch(f"/tickets/{ticket}", json={"priority": "high"})
                    return patched.status_code if patched.status_code != 200 else 201
                return response.status_code

        return await asyncio.gather(*(one(n) for n in range(WRITES)))


def test_two_workers_concurrent_writes(tmp_path: Path, empty_database_url: str) -> None:
    with serving(tmp_path, empty_database_url, "--workers", "2") as server:
        statuses = asyncio.run(_storm(server.base_url, server.demo_token))
        assert sorted(set(statuses)) == [200, 201], statuses
        created = statuses.count(201)
        total = httpx.get(
            f"{server.base_url}/api/v1/admin/tickets",
            headers={"Authorization": f"Bearer {server.demo_token}"},
        ).json()["meta"]["total"]
        assert total == created == WRITES - WRITES // 3
        log = server.output.read_text()
        assert "locked" not in log and "Traceback" not in log


def test_an_idle_connection_outlives_a_clients_own_keep_alive(tmp_path: Path) -> None:
    """A client that keeps an idle connection for 5 s (httpx's default) may send on it at the
    last moment: the server must not close it at the same time. One connection, two requests
    six seconds apart, both answered."""
    with serving(tmp_path, f"sqlite:///{tmp_path / 'idle.db'}") as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        request = f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            for pause in (0.0, 6.0):
                time.sleep(pause)
                conn.sendall(request)
                assert read_response(conn).startswith(b"HTTP/1.1 200 ")


def read_response(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length: its head and body may arrive in
    separate reads (the server writes them apart), and what is left of one must not be taken
    for the start of the next."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        body += chunk
    assert len(body) == length, "more than one response"
    return head + b"\r\n\r\n" + body
