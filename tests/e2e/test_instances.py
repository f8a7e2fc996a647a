"""Two `supportdesk serve --workers 2` instances on one PostgreSQL database, delivering to one
webhook endpoint on a local receiver (SPEC 10 and 11): the `webhooks` job's lease makes one
dispatcher of the four workers, so in normal running each event arrives exactly once; when the
instance holding the lease is killed with SIGKILL (just after it renewed the lease, the
longest wait), the other takes the lease over within 30 s and delivers every event, none
lost."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from supportdesk.auth.keys import hash_token
from tests.conftest import TEST_DATABASE, _recreate_database, postgres_url
from tests.e2e.conftest import Server, run_cli, serving, stop
from tests.e2e.receiver import (
    check_arrivals,
    create_webhook,
    expected,
    feed,
    missing,
    newest_event,
    receiving,
    wait_delivered,
    writing,
)

SECONDS = float(os.environ.get("SUPPORTDESK_INSTANCES_SECONDS", "3"))
TAKEOVER_S = 30.0  # SPEC 11: a lease is taken over within 30 s of its holder dying
MARGIN_S = 5.0  # for a loaded 2-core machine: polling, the last deliveries
PATTERNS = ["*"]


@pytest.fixture
def shared_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty PostgreSQL database for both instances; deliveries to 127.0.0.1 allowed."""
    request.getfixturevalue("postgres_database")
    asyncio.run(_recreate_database(f"{TEST_DATABASE}_instances"))
    monkeypatch.setenv("SUPPORTDESK_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("SUPPORTDESK_WEBHOOK_RETRY_SCHEDULE", ",".join(["1s"] * 12))
    return postgres_url(f"{TEST_DATABASE}_instances")


@contextmanager
def two_instances(tmp_path: Path, url: str) -> Iterator[tuple[Server, Server]]:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with serving(tmp_path / "a", url, "--workers", "2") as first:  # noqa: SIM117
        with serving(tmp_path / "b", url, "--workers", "2", token=first.demo_token) as second:
            yield first, second


def api(server: Server) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1/admin",
        headers={"Authorization": f"Bearer {server.demo_token}"},
        timeout=20,
    )


def webhooks_holder(server: Server) -> str | None:
    """The `webhooks` job's live lease holder (`host:pid:random`) as `/health` shows it."""
    response = httpx.get(f"{server.base_url}/health", timeout=5)
    assert response.status_code == 200, response.text
    jobs: dict[str, Any] = response.json()["jobs"]
    holder: str | None = jobs.get("webhooks", {}).get("holder")
    return holder


def instance_of(holder: str, servers: tuple[Server, ...]) -> Server | None:
    """The instance whose process group the holder's pid is in (a worker of its `serve`)."""
    pid = int(holder.rsplit(":", 2)[1])
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return next((s for s in servers if s.process.pid == group), None)


async def _renewal(url: str, within: float) -> None:
    """Return just after the `webhooks` lease's expiry moves: its holder renewed it."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        query = "SELECT expires_at FROM job_leases WHERE name = 'webhooks'"
        before = await conn.fetchval(query)
        async with asyncio.timeout(within):
            while True:
                if await conn.fetchval(query) != before:
                    return
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def setup_endpoint(server: Server, receiver_url: str) -> tuple[int, str]:
    """The endpoint (created now, so it receives what follows) and a customer to write for."""
    with api(server) as http:
        after = newest_event(http)
        create_webhook(http, receiver_url, PATTERNS)
        user: str = http.post("/users", json={"email": "pair@example.com"}).json()["data"]["id"]
    return after, user


@pytest.mark.timeout(240)
def test_one_dispatcher_for_two_instances_delivers_each_event_once(
    tmp_path: Path, shared_url: str
) -> None:
    with receiving() as receiver, two_instances(tmp_path, shared_url) as servers:
        after, user = setup_endpoint(servers[0], receiver.url("/hook"))
        holders = {webhooks_holder(servers[0])}
        with (
            writing(servers[0].base_url, servers[0].demo_token, user, pause=0.02) as via_a,
            writing(servers[1].base_url, servers[1].demo_token, user, pause=0.02) as via_b,
        ):
            time.sleep(SECONDS)
            holders.add(webhooks_holder(servers[1]))
        with api(servers[1]) as http:
            events = feed(http)
        wanted = {"/hook": expected(events, after, PATTERNS)}
        waited = wait_delivered(receiver, wanted, 30)
        time.sleep(2)  # time for a duplicate to arrive, if one would
        holders.add(webhooks_holder(servers[0]))
        logs = [server.output.read_text() for server in servers]
    requests = receiver.at("/hook")

    for writer in (via_a, via_b):
        assert writer.statuses and set(writer.statuses) <= {201}, sorted(set(writer.statuses))
        assert writer.failures == 0
    assert not any(missing(receiver, wanted).values()), missing(receiver, wanted)
    arrivals = check_arrivals(requests, wanted["/hook"], "/hook")
    assert arrivals.requests == arrivals.events == len(wanted["/hook"]), "a duplicate delivery"
    holders.discard(None)
    assert len(holders) == 1, f"the lease moved in normal running: {holders}"
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
    print(
        f"\ntwo instances: {len(via_a.statuses)} + {len(via_b.statuses)} writes, "
        f"{arrivals.events} events delivered once each ({arrivals.requests} requests), "
        f"the last {waited:.1f} s after the writes"
    )


@pytest.mark.timeout(240)
def test_the_survivor_takes_the_lease_after_kill_9_and_loses_nothing(
    tmp_path: Path, shared_url: str
) -> None:
    with receiving() as receiver, two_instances(tmp_path, shared_url) as servers:
        after, user = setup_endpoint(servers[0], receiver.url("/hook"))
        holder: list[str | None] = [None]

        def held() -> bool:
            holder[0] = webhooks_holder(servers[0])
            return holder[0] is not None

        wait_for(held, 30, "the webhooks lease to be taken")
        assert holder[0] is not None
        victim = instance_of(holder[0], servers)
        assert victim is not None, f"{holder[0]} is in neither instance"
        survivor = servers[1] if victim is servers[0] else servers[0]
        print(f"\nthe webhooks lease is held by {holder[0]} ({victim.base_url})")

        with writing(survivor.base_url, survivor.demo_token, user, pause=0.05) as writer:
            wait_for(lambda: len(receiver.requests) >= 5, 30, "deliveries to flow")
            # killed just after renewing: the lease then lasts longest after its holder died
            asyncio.run(_renewal(shared_url, 30))
            stop(victim.process, signal.SIGKILL)
            killed = time.monotonic()

            def taken_over() -> bool:
                now = webhooks_holder(survivor)
                return now is not None and instance_of(now, (survivor,)) is survivor

            takeover = wait_for(taken_over, TAKEOVER_S + MARGIN_S, "the survivor to take over")
            time.sleep(1)  # a few writes after the takeover too
        with api(survivor) as http:
            events = feed(http)
        wanted = {"/hook": expected(events, after, PATTERNS)}
        wait_delivered(
            receiver, wanted, max(0.0, killed + TAKEOVER_S + MARGIN_S - time.monotonic())
        )
        log = survivor.output.read_text()
    requests = receiver.at("/hook")

    assert writer.failures == 0 and set(writer.statuses) <= {201}, sorted(set(writer.statuses))
    after_kill = [r for r in requests if r.at > killed]
    assert not any(missing(receiver, wanted).values()), (
        f"taken over after {takeover:.1f} s, {len(after_kill)} requests since the kill "
        f"(the first after {after_kill[0].at - killed if after_kill else -1:.1f} s); missing "
        f"{missing(receiver, wanted)}"
    )
    arrivals = check_arrivals(requests, wanted["/hook"], "/hook")
    first_2xx: dict[int, float] = {}
    for request in requests:
        if request.delivered:
            first_2xx.setdefault(request.event_id, request.at)
    delivered = max(first_2xx.values()) - killed
    resumed = min((r.at for r in requests if r.at > killed), default=float("inf")) - killed
    assert takeover <= TAKEOVER_S + MARGIN_S
    assert delivered <= TAKEOVER_S + MARGIN_S
    assert "Traceback" not in log, log[-3000:]
    print(
        f"kill -9 of the holder: the survivor held the lease after {takeover:.1f} s, "
        f"its first delivery {resumed:.1f} s and every event delivered {delivered:.1f} s "
        f"after the kill; {arrivals.events} events in {arrivals.requests} requests "
        f"({arrivals.repeated} repeated), {len(writer.statuses)} writes through the survivor"
    )


WARM = 8  # requests that passed before the key is disabled


async def _disable(url: str, token: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        done = await conn.execute(
            "UPDATE api_keys SET enabled = false WHERE token_hash = $1", hash_token(token)
        )
        assert done == "UPDATE 1"
    finally:
        await conn.close()


def _status(server: Server, token: str) -> int:
    """One request on a new connection, so that each worker of the instance gets some."""
    response = httpx.get(
        f"{server.base_url}/api/v1/admin/tickets",
        params={"page[size]": "1"},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=10,
    )
    return response.status_code


@pytest.mark.timeout(120)
def test_a_disabled_key_is_refused_by_every_worker_of_every_instance_within_a_second(
    tmp_path: Path, shared_url: str
) -> None:
    """Issue 13: workers keep the keys they read for a moment (`auth.service.KeyCache`), yet
    a key disabled in the database is refused by all four workers of the two instances
    within one second of the commit. Requests run without pause on both instances from
    before the key is disabled until two seconds after."""
    with two_instances(tmp_path, shared_url) as servers:
        created = run_cli(
            "keys", "create", "--name", "soon off", "--all", "--database-url", shared_url
        )
        token = created.stdout.strip().splitlines()[-1]
        seen: list[tuple[float, int]] = []  # (when the request started, its status)
        stopping = threading.Event()

        def hammer(server: Server) -> None:
            while not stopping.is_set():
                started = time.monotonic()
                seen.append((started, _status(server, token)))

        threads = [threading.Thread(target=hammer, args=(s,)) for s in servers * 2]
        for thread in threads:
            thread.start()
        try:
            # the workers read the key and keep it: the key is disabled as soon as a few
            # requests passed, while what they read is fresh (a cache kept for seconds would
            # fail below); on a loaded machine the first requests can take a while
            deadline = time.monotonic() + 20
            while [status for _, status in seen].count(200) < WARM and time.monotonic() < deadline:
                time.sleep(0.01)
            disabling = time.monotonic()
            asyncio.run(_disable(shared_url, token))
            disabled = time.monotonic()  # committed
            time.sleep(2.0)
        finally:
            stopping.set()
            for thread in threads:
                thread.join(timeout=15)
    before = [status for at, status in seen if at < disabling]
    late = [status for at, status in seen if at >= disabled + 1.0]
    last = max((at - disabled for at, status in seen if status == 200), default=0.0)
    assert before.count(200) >= WARM, before
    assert len(late) >= 20 and set(late) == {401}
    assert last < 1.0
    print(f"\nkey disabled: last accepted {last * 1000:.0f} ms after the commit")
