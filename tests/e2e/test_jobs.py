"""The background jobs as processes: `serve` runs them in its workers, `serve --no-jobs` does
not, `supportdesk worker` runs them by itself and releases its leases on SIGTERM; and
`supportdesk events prune`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import STARTUP_TIMEOUT_S, Server, run_cli, serving, stop

AUTOCLOSE_AFTER = "1s"


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextmanager
def working(tmp_path: Path, database_url: str, env: dict[str, str]) -> Iterator[Path]:
    """`supportdesk worker` until the block ends (SIGTERM); yields its output file once it
    said which jobs it runs."""
    output = tmp_path / "worker.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "supportdesk", "worker", "--database-url", database_url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "Running jobs:" in output.read_text() or process.poll() is not None,
            STARTUP_TIMEOUT_S,
            "the worker to start",
        )
        assert process.poll() is None, output.read_text()
        yield output
    finally:
        stop(process)
    assert process.returncode == 0, output.read_text()


def health_jobs(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/health", timeout=5)
    assert response.status_code == 200
    jobs: dict[str, Any] = response.json()["jobs"]
    return jobs


def answered_ticket(http: httpx.Client) -> str:
    """A ticket staff answered just now: `replied`, and stale after AUTOCLOSE_AFTER."""
    customer = http.post("/users", json={"email": "c@example.com"}).json()["data"]["id"]
    staff = http.post("/users", json={"email": "s@example.com", "role_id": 1}).json()["data"]["id"]
    ticket: str = http.post("/tickets", json={"subject": "Hi", "user_id": customer}).json()["data"][
        "id"
    ]
    http.post("/ticket-messages", json={"ticket_id": ticket, "user_id": staff, "message": "Done"})
    return ticket


def test_the_worker_runs_autoclose_and_serve_no_jobs_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTDESK_AUTOCLOSE_AFTER", AUTOCLOSE_AFTER)  # the server's too
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with (
        serving(tmp_path, url, "--no-jobs") as server,
        httpx.Client(
            base_url=f"{server.base_url}/api/v1/admin",
            headers={"Authorization": f"Bearer {server.demo_token}"},
            timeout=10,
        ) as http,
    ):
        assert "Jobs: off" in server.output.read_text()

        def status() -> str:
            value: str = http.get(f"/tickets/{ticket}").json()["data"]["attributes"]["status"]
            return value

        ticket = answered_ticket(http)
        time.sleep(1.5)  # stale now; a server running autoclose would close it at its start
        assert status() == "replied"
        assert health_jobs(server) == {}

        with working(tmp_path, url, {}) as output:
            running = "Running jobs: autoclose, idempotency, prune, webhooks (as "
            assert running in output.read_text()
            wait_for(lambda: status() == "closed", 15, "the worker to close the ticket")
            job = health_jobs(server)["autoclose"]
            assert job["last_success_at"] is not None and job["last_error"] is None
            holder = job["holder"]
            assert holder is not None and holder in output.read_text()
            history = http.get(f"/tickets/{ticket}/history").json()["data"]
            assert history[-1]["attributes"]["actor"] == {"type": "system", "id": None}
        assert "leases released" in output.read_text()
        assert health_jobs(server)["autoclose"]["holder"] is None


def test_serve_runs_the_jobs_in_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTDESK_EVENTS_RETAIN", "180d")
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with serving(tmp_path, url, "--workers", "2") as server:
        assert "Jobs: autoclose, idempotency, prune" in server.output.read_text()

        def ran() -> bool:
            jobs = health_jobs(server)
            return all(jobs.get(name, {}).get("last_success_at") for name in ("autoclose", "prune"))

        wait_for(ran, 15, "the server's workers to run the jobs")
        holders = {job["holder"] for job in health_jobs(server).values()}
        assert None not in holders


def test_events_prune_removes_old_events_and_says_how_many(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    run_cli("migrate", "--database-url", url)
    for n in range(3):
        run_cli("users", "create", "--email", f"u{n}@example.com", "--database-url", url)
    with sqlite3.connect(tmp_path / "prune.db") as conn:
        conn.execute(
            "UPDATE events SET occurred_at = '2000-01-01T00:00:00.000000Z' WHERE id IN (1, 2)"
        )
    result = run_cli("events", "prune", "--older-than", "180d", "--database-url", url)
    assert result.stdout.strip() == "2 event(s) removed"
    with sqlite3.connect(tmp_path / "prune.db") as conn:
        assert conn.execute("SELECT id FROM events").fetchall() == [(3,)]
    again = run_cli("events", "prune", "--older-than", "180d", "--database-url", url)
    assert again.stdout.strip() == "0 event(s) removed"
    bad = run_cli("events", "prune", "--older-than", "soon", "--database-url", url, check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: invalid duration 'soon': use a number and s, m, h, d or w (7d)"
    ]
