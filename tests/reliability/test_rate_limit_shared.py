"""The rate limit holds across worker processes (a file shared by this host's workers) and
across instances (Redis): two workers, or two servers, never let more through than the limit."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from pathlib import Path

import httpx
import pytest

from supportdesk.auth.ratelimit import WINDOW_S, RedisCounter
from tests.e2e.conftest import run_cli, serving

LIMIT = 40
REDIS_URL = os.environ.get("SUPPORTDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


async def fire(urls: list[str], token: str, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        responses = await asyncio.gather(
            *(http.get(f"{urls[n % len(urls)]}/api/v1/admin/tickets") for n in range(count))
        )
    return [r.status_code for r in responses]


def limited_key(url: str) -> str:
    """A key limited to LIMIT requests a minute, made with the CLI."""
    created = run_cli(
        "keys", "create", "--name", "rl", "--all", "--rate-limit", str(LIMIT), "--database-url", url
    )
    return created.stdout.strip().splitlines()[-1]


def settle_window() -> None:
    left = WINDOW_S - time.time() % WINDOW_S
    if left < 10:
        time.sleep(left + 0.1)


def test_limit_across_two_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    with serving(tmp_path, url, "--workers", "2") as server:
        token = limited_key(url)
        settle_window()
        statuses = asyncio.run(fire([server.base_url], token, LIMIT + 30))
    assert statuses.count(200) == LIMIT and statuses.count(429) == 30


@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")
def test_limit_across_two_instances_through_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    monkeypatch.setenv("SUPPORTDESK_REDIS_URL", REDIS_URL)
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    with serving(first_dir, url) as one:
        token = limited_key(url)
        with serving(second_dir, url, token=token) as two:
            settle_window()
            statuses = asyncio.run(fire([one.base_url, two.base_url], token, LIMIT + 30))
    assert statuses.count(200) == LIMIT and statuses.count(429) == 30


@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")
async def test_deployments_sharing_a_redis_database_count_apart() -> None:
    """The counters are named by the deployment's id (kept in its database) before the key's:
    key 1 of one deployment and key 1 of another, on one Redis database, count apart; two
    instances of one deployment count together."""
    first, second = secrets.token_hex(8), secrets.token_hex(8)
    counters = [RedisCounter(REDIS_URL, first), RedisCounter(REDIS_URL, first)]
    other = RedisCounter(REDIS_URL, second)
    try:
        assert [await counter.hit(1, 7) for counter in counters * 2] == [1, 2, 3, 4]
        assert await other.hit(1, 7) == 1
    finally:
        for counter in (*counters, other):
            await counter.close()
