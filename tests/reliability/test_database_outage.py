"""Issue 5: PostgreSQL stops under load. Requests answer 503 `database_unavailable` within a
second instead of hanging, /health says 503, and once PostgreSQL is back the same server
process serves again by itself."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _recreate_database, postgres_url
from tests.e2e.conftest import serving

pytestmark = pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None, reason="needs pg_ctlcluster to stop PostgreSQL"
)


def cluster(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        command += ["-m", "fast"]
    subprocess.run(command, check=True, timeout=60, capture_output=True)


async def load(base: str, token: str, seconds: float) -> list[tuple[float, int, str]]:
    """(duration, status, code) of every request made during `seconds`, 16 at a time."""
    seen: list[tuple[float, int, str]] = []
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"{base}/api/v1/admin", headers=headers, timeout=10
    ) as http:

        async def one() -> None:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await http.get("/tickets", params={"include": "user"})
                code = response.json().get("code", "") if response.status_code >= 400 else ""
                seen.append((time.monotonic() - started, response.status_code, code))

        await asyncio.gather(*(one() for _ in range(16)))
    return seen


def test_postgres_outage_and_recovery(tmp_path: Path, postgres_database: str) -> None:
    asyncio.run(_recreate_database("supportdesk_outage"))
    url = postgres_url("supportdesk_outage")
    with serving(tmp_path, url, "--workers", "2") as server:
        api = f"{server.base_url}/api/v1/admin"
        headers = {"Authorization": f"Bearer {server.demo_token}"}
        assert (
            httpx.post(f"{api}/users", json={"email": "a@example.com"}, headers=headers).status_code
            == 201
        )
        before = asyncio.run(load(server.base_url, server.demo_token, 2))
        assert {status for _, status, _ in before} == {200}
        stopped = False
        try:
            cluster("stop")
            stopped = True
            during = asyncio.run(load(server.base_url, server.demo_token, 3))
            health = httpx.get(f"{server.base_url}/health", timeout=5)
        finally:
            if stopped:
                cluster("start")
        restarted = time.monotonic()
        while httpx.get(f"{server.base_url}/health", timeout=5).status_code != 200:
            assert time.monotonic() - restarted < 30, "the server did not recover"
            time.sleep(0.1)
        recovery = time.monotonic() - restarted
        after = httpx.get(f"{api}/tickets", headers=headers, timeout=5)
    assert health.status_code == 503 and health.json() == {"status": "unavailable"}
    assert during, "no request was made while PostgreSQL was down"
    assert {(status, code) for _, status, code in during} == {(503, "database_unavailable")}
    slowest = max(duration for duration, _, _ in during)
    assert slowest < 1.0, f"a request took {slowest:.2f}s to fail"
    assert after.status_code == 200
    print(
        f"\noutage: {len(during)} requests answered 503 (slowest {slowest * 1000:.0f} ms); "
        f"recovered {recovery:.2f}s after PostgreSQL started"
    )
