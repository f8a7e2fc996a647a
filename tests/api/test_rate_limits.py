"""Per-key rate limits: 429 with Retry-After and RateLimit-* headers, per-key and global
limits, 0 for none."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.auth.ratelimit import WINDOW_S, FileCounter
from supportdesk.auth.service import create_key
from supportdesk.config import Settings
from tests.conftest import Secrets


def away_from_the_minute_boundary() -> None:
    """A test that counts requests must not straddle two windows."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < 5:
        time.sleep(left + 0.1)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url, storage_dir=str(tmp_path / "s"), rate_limit_per_minute=5
    )


async def key_client(app: FastAPI, secrets: Secrets, rate_limit: int | None) -> httpx.AsyncClient:
    _, token = await create_key(app.state.db, "limited", ["*"], [], rate_limit)
    secrets.tokens.append(token)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t/api/v1/admin",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_the_global_limit_and_its_headers(app: FastAPI, secrets: Secrets) -> None:
    away_from_the_minute_boundary()
    async with await key_client(app, secrets, None) as http:
        responses = [await http.get("/tickets") for _ in range(7)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 2
    assert [r.headers["ratelimit-remaining"] for r in responses] == [
        "4",
        "3",
        "2",
        "1",
        "0",
        "0",
        "0",
    ]
    assert all(r.headers["ratelimit-limit"] == "5" for r in responses)
    refused = responses[-1]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["retry-after"] == refused.headers["ratelimit-reset"]
    assert "retry-after" not in responses[0].headers


async def test_a_keys_own_limit_and_zero_for_none(app: FastAPI, secrets: Secrets) -> None:
    away_from_the_minute_boundary()
    async with (
        await key_client(app, secrets, 2) as tight,
        await key_client(app, secrets, 0) as free,
    ):
        assert [(await tight.get("/tickets")).status_code for _ in range(3)] == [200, 200, 429]
        responses = [await free.get("/tickets") for _ in range(12)]
    assert {r.status_code for r in responses} == {200}
    assert "ratelimit-limit" not in responses[0].headers


async def test_keys_are_counted_apart(app: FastAPI, secrets: Secrets) -> None:
    away_from_the_minute_boundary()
    async with await key_client(app, secrets, 3) as one, await key_client(app, secrets, 3) as two:
        assert [(await one.get("/tickets")).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert (await two.get("/tickets")).status_code == 200


async def test_the_file_counter_shares_counts_between_openers(tmp_path: Path) -> None:
    a, b = FileCounter(tmp_path / "rl.bin"), FileCounter(tmp_path / "rl.bin")
    assert [await a.hit(7, 100), await b.hit(7, 100), await a.hit(7, 100)] == [1, 2, 3]
    assert await b.hit(7, 101) == 1  # a new window starts over
    assert await a.hit(7 + 4096, 101) == 1  # same home slot, another key
    assert await b.hit(7, 101) == 2
    await a.close()
    await b.close()
