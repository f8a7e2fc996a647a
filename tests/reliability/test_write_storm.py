"""Issue 5: concurrent writers lose nothing, and neither does a `kill -9` in the middle of them.

Two workers, 64 clients creating tickets, messages and attachments and updating tickets, for
SUPPORTDESK_STORM_SECONDS (30 by default), on SQLite and on PostgreSQL. Afterwards the database
is read directly and must hold exactly what was acknowledged, and the events must have reached
the live streams and the webhook endpoints attached during the storm."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from supportdesk.db import Database, open_database
from supportdesk.tables import events, ticket_attachments, ticket_messages, tickets
from supportdesk.ticket_attachments.storage import Storage
from tests.e2e.conftest import Server, serving, stop
from tests.e2e.receiver import (
    check_arrivals,
    create_webhook,
    expected,
    newest_event,
    receiving,
    wait_delivered,
)
from tests.e2e.sse import StreamClient, ids_until
from tests.reliability.storm import Acknowledged, storm

SECONDS = float(os.environ.get("SUPPORTDESK_STORM_SECONDS", "30"))
CLIENTS = 64
# webhook endpoints attached during the storm, and how long their last deliveries may take
ENDPOINTS = {"/tickets": ["ticket.*", "ticket_attachment.*"], "/all": ["*"]}
DELIVERY_WAIT_S = 60.0


def api(server: Server) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1/admin",
        headers={"Authorization": f"Bearer {server.demo_token}"},
        timeout=20,
    )


def customer(base_url: str, token: str) -> int:
    response = httpx.post(
        f"{base_url}/api/v1/admin/users",
        json={"email": "storm@example.com"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return int(response.json()["data"]["id"])


async def _read(url: str) -> dict[str, object]:
    db: Database = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            found_tickets = {
                r["id"]: (r["subject"], r["priority"])
                for r in await conn.fetch_all(select(tickets))
            }
            found_messages = {
                r["id"]: (r["ticket_id"], r["message"])
                for r in await conn.fetch_all(select(ticket_messages))
            }
            found_files = {
                r["id"]: (r["stored_name"], r["filesize"])
                for r in await conn.fetch_all(select(ticket_attachments))
            }
            orphans = await conn.fetch_value(
                select(func.count())
                .select_from(
                    ticket_messages.outerjoin(tickets, tickets.c.id == ticket_messages.c.ticket_id)
                )
                .where(tickets.c.id.is_(None))
            )
            integrity = (
                await conn.fetch_value(text("PRAGMA integrity_check"))
                if db.dialect == "sqlite"
                else "ok"
            )
            foreign = (
                await conn.fetch_all(text("PRAGMA foreign_key_check"))
                if db.dialect == "sqlite"
                else []
            )
        return {
            "tickets": found_tickets,
            "messages": found_messages,
            "files": found_files,
            "orphans": orphans,
            "integrity": integrity,
            "foreign": foreign,
        }
    finally:
        await db.close()


def check_files(storage_dir: Path, found: dict[str, object], acked: Acknowledged) -> None:
    storage = Storage(storage_dir)
    files: dict[int, tuple[str, int]] = found["files"]  # type: ignore[assignment]
    for attachment_id, content in acked.attachments.items():
        stored_name, size = files[attachment_id]
        path = storage.locate(stored_name)
        assert path is not None and path.read_bytes() == content and size == len(content)
    on_disk = (
        {p.name for p in storage.files.rglob("*") if p.is_file()}
        if storage.files.exists()
        else set()
    )
    assert on_disk == {name for name, _ in files.values()}, (
        "a file without a row, or a row without a file"
    )
    assert not storage.pending.exists() or not any(storage.pending.iterdir())


async def _events(url: str) -> list[dict[str, object]]:
    db: Database = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            rows = await conn.fetch_all(select(events).order_by(events.c.id))
        return [dict(row) for row in rows]
    finally:
        await db.close()


def check_events(feed: list[dict[str, object]], acked: Acknowledged) -> None:
    """One event per acknowledged write, in commit order: each acknowledged creation has
    exactly one `*.created` event, and every event of a ticket comes after its creation."""
    created: dict[str, list[object]] = {}
    for event in feed:
        if str(event["event"]).endswith(".created"):
            created.setdefault(str(event["event"]), []).append(event["resource_id"])
    for name, acknowledged in (
        ("ticket.created", acked.tickets),
        ("ticket_message.created", acked.messages),
        ("ticket_attachment.created", acked.attachments),
    ):
        ids = created.get(name, [])
        assert sorted(ids) == sorted(acknowledged), name  # type: ignore[type-var]
    ticket_born = {e["resource_id"]: e["id"] for e in feed if e["event"] == "ticket.created"}
    for event in feed:
        if event["event"] != "ticket.created" and event["ticket_id"] is not None:
            assert event["id"] > ticket_born[event["ticket_id"]]  # type: ignore[operator]
    patched = sum(
        1 for e in feed if e["event"] == "ticket.updated" and "priority" in str(e["changes"])
    )
    assert patched <= len(acked.statuses)


@pytest.mark.timeout(300)
def test_concurrent_writers_keep_exactly_what_was_acknowledged(
    tmp_path: Path, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also (issue 9) with three live streams attached: the feed holds one event per
    acknowledged write, in commit order, and every stream client saw every event. And with two
    webhook endpoints on a local receiver: every event each subscribed to reached it, first
    arrivals in id order (`tests.e2e.receiver.check_arrivals`)."""
    monkeypatch.setenv("SUPPORTDESK_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on 127.0.0.1
    monkeypatch.setenv("SUPPORTDESK_WEBHOOK_RETRY_SCHEDULE", ",".join(["1s"] * 12))
    with (
        receiving() as receiver,
        serving(tmp_path, empty_database_url, "--workers", "2") as server,
    ):
        with api(server) as http:
            after = newest_event(http)
            for path, patterns in ENDPOINTS.items():
                create_webhook(http, receiver.url(path), patterns)
        user = customer(server.base_url, server.demo_token)
        with api(server) as http:
            start = newest_event(http)
        # from that cursor (Last-Event-ID): a stream that opened without one would start at
        # whatever was newest once it connected, maybe after the storm's first writes
        streams = [
            StreamClient(server.base_url, server.demo_token, {"Last-Event-ID": str(start)})
            for _ in range(3)
        ]
        try:
            deadline = time.monotonic() + 20
            while any(stream.status is None for stream in streams):
                assert time.monotonic() < deadline, "the streams did not open"
                time.sleep(0.02)
            acked = asyncio.run(storm(server.base_url, server.demo_token, user, CLIENTS, SECONDS))
            feed = asyncio.run(_events(empty_database_url))
            last = int(feed[-1]["id"])  # type: ignore[call-overload]
            seen = [ids_until(stream, last, within=30) for stream in streams]
        finally:
            for stream in streams:
                stream.close()
        names = [(int(e["id"]), str(e["event"])) for e in feed]  # type: ignore[call-overload]
        wanted = {path: expected(names, after, patterns) for path, patterns in ENDPOINTS.items()}
        waited = wait_delivered(receiver, wanted, DELIVERY_WAIT_S)
        log = server.output.read_text()
    assert acked.failures == []
    assert set(acked.statuses) <= {200, 201}, sorted(set(acked.statuses))
    assert len(acked.statuses) > 500
    assert "locked" not in log and "Traceback" not in log
    found = asyncio.run(_read(empty_database_url))
    assert {i: s for i, (s, _) in found["tickets"].items()} == acked.tickets  # type: ignore[attr-defined]
    assert found["messages"] == acked.messages
    for ticket, priority in acked.priorities.items():
        assert found["tickets"][ticket][1] == priority  # type: ignore[index]
    assert found["orphans"] == 0 and found["integrity"] == "ok" and found["foreign"] == []
    check_files(tmp_path / "storage", found, acked)
    check_events(feed, acked)
    after_start = [event_id for event_id, _ in names if event_id > start]
    for ids in seen:
        assert ids == after_start
    hooks = []
    for path, ids in wanted.items():
        arrivals = check_arrivals(receiver.at(path), ids, path)
        hooks.append(f"{path} {arrivals.events} ({arrivals.repeated} repeated)")
    print(
        f"\nstorm: {len(acked.statuses)} writes acknowledged in {SECONDS:.0f}s, all found; "
        f"{len(feed)} events, every one seen by each of {len(streams)} streams; webhooks: "
        f"{', '.join(hooks)} events delivered, the last {waited:.1f} s after the streams"
    )


def test_kill_9_mid_storm_loses_no_acknowledged_write(
    tmp_path: Path, empty_database_url: str
) -> None:
    with serving(tmp_path, empty_database_url, "--workers", "2") as server:
        token = server.demo_token
        user = customer(server.base_url, token)
        timer = threading.Timer(SECONDS / 2, stop, args=(server.process, signal.SIGKILL))
        timer.start()
        try:
            acked = asyncio.run(storm(server.base_url, token, user, CLIENTS, SECONDS))
        finally:
            timer.cancel()
    assert acked.failures, "the server was not killed during the storm"
    assert all(status < 500 for status in acked.statuses)
    # restart on the same database and storage: recovery settles the files left pending
    with serving(tmp_path, empty_database_url, "--workers", "2", token=token) as again:
        assert httpx.get(f"{again.base_url}/health").status_code == 200
    found = asyncio.run(_read(empty_database_url))
    found_tickets: dict[int, tuple[str, str]] = found["tickets"]  # type: ignore[assignment]
    for ticket, subject in acked.tickets.items():
        assert found_tickets[ticket][0] == subject
    for message, row in acked.messages.items():
        assert found["messages"][message] == row  # type: ignore[index]
    assert found["orphans"] == 0 and found["integrity"] == "ok" and found["foreign"] == []
    check_files(tmp_path / "storage", found, acked)
    print(
        f"\nkill -9: {len(acked.statuses)} writes acknowledged before the kill, "
        f"all found; {len(found_tickets) - len(acked.tickets)} unacknowledged tickets committed"
    )
