"""The live stream through real `supportdesk serve` processes: resuming, heartbeats, a clean
stop with streams open, and two instances on one PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_DATABASE, _recreate_database, postgres_url
from tests.e2e.conftest import Server, serving
from tests.e2e.sse import TIMEOUT_S, StreamClient, streaming


def api(server: Server, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1/admin",
        headers={"Authorization": f"Bearer {token or server.demo_token}"},
        timeout=TIMEOUT_S,
    )


def test_stream_resume_heartbeat_and_a_clean_stop(
    tmp_path: Path, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTDESK_STREAM_HEARTBEAT", "0.5")
    with serving(tmp_path, empty_database_url, "--workers", "2") as server, api(server) as http:
        user = http.post("/users", json={"email": "a@example.com"}).json()["data"]["id"]
        with streaming(server.base_url, server.demo_token) as live:
            assert live.status == 200
            ticket = http.post("/tickets", json={"subject": "Live", "user_id": user})
            (created,) = live.events(1)
            assert created["event"] == "ticket.created"
            document = json.loads(created["data"])
            assert document["type"] == "events"
            assert document["id"] == created["id"]
            assert document["attributes"]["data"]["subject"] == "Live"
            assert document["attributes"]["resource"]["id"] == int(ticket.json()["data"]["id"])
            # silence brings comment lines
            deadline = time.monotonic() + 5
            while "comment" not in live.messages.get(timeout=5):
                assert time.monotonic() < deadline

        # resume from the user's creation: the user event is skipped, the rest replayed (the
        # demo staff login `serve` made is an earlier user.created)
        created_users = http.get("/events", params={"filter[event]": "user.created"}).json()
        (first,) = [
            event
            for event in created_users["data"]
            if event["attributes"]["resource"]["id"] == int(user)
        ]
        http.post(
            "/ticket-messages",
            json={"ticket_id": ticket.json()["data"]["id"], "user_id": user, "message": "m"},
        )
        with streaming(
            server.base_url, server.demo_token, **{"Last-Event-ID": first["id"]}
        ) as again:
            replay = again.events(3)
            assert [m["event"] for m in replay] == [
                "ticket.created",
                "ticket_message.created",
                "ticket.updated",
            ]
            ids = [int(m["id"]) for m in replay]
            assert ids == sorted(ids) and ids[0] > int(first["id"])
            with (
                streaming(server.base_url + "", server.demo_token) as filtered_off,
                api(server) as other,
            ):
                assert filtered_off.status == 200
                filtered = other.get(
                    "/events/stream",
                    params={"filter[event]": "nope.*"},
                )
                assert filtered.status_code == 400

            # the server stops promptly with streams open, and they end cleanly
            started = time.monotonic()
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=15)
            assert time.monotonic() - started < 10
            assert again.ended.wait(5)
        assert server.process.returncode == 0
        assert "Traceback" not in server.output.read_text()


def test_two_instances_on_one_postgresql(tmp_path: Path, request: Any) -> None:
    """A stream client on one instance sees a write made through the other within a second."""
    request.getfixturevalue("postgres_database")
    asyncio.run(_recreate_database(f"{TEST_DATABASE}_pair"))
    url = postgres_url(f"{TEST_DATABASE}_pair")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with serving(tmp_path / "a", url, "--workers", "2") as first:  # noqa: SIM117
        with serving(tmp_path / "b", url, "--workers", "2", token=first.demo_token) as second:
            with api(second) as through_b:
                user = through_b.post("/users", json={"email": "b@example.com"}).json()["data"][
                    "id"
                ]
                streams = [StreamClient(first.base_url, first.demo_token) for _ in range(4)]
                try:
                    deadline = time.monotonic() + TIMEOUT_S
                    while any(s.status is None for s in streams):
                        assert time.monotonic() < deadline
                        time.sleep(0.02)
                    for i in range(5):
                        started = time.monotonic()
                        through_b.post("/tickets", json={"subject": f"via B {i}", "user_id": user})
                        for live in streams:
                            (seen,) = live.events(1, within=1.0)
                            assert (
                                json.loads(seen["data"])["attributes"]["data"]["subject"]
                                == f"via B {i}"
                            )
                        assert time.monotonic() - started < 1.0
                finally:
                    for live in streams:
                        live.close()
