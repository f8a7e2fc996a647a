"""`auth.service.KeyCache`: a worker trusts a key it read for `ttl` seconds at most."""

from __future__ import annotations

import time

import pytest

from supportdesk.auth.keys import ApiKey
from supportdesk.auth.service import KEY_CACHE_TTL_S, KeyCache


def key(key_id: int) -> ApiKey:
    return ApiKey(id=key_id, name=f"k{key_id}", permissions=frozenset({"*"}), networks=())


def test_the_cache_lasts_well_under_the_second_issue_13_allows() -> None:
    assert KEY_CACHE_TTL_S <= 0.5


def test_a_key_is_kept_for_the_ttl_then_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = KeyCache(ttl=0.5)
    assert cache.get("h1") is None
    cache.put("h1", key(1), None)
    now[0] += 0.49
    found = cache.get("h1")
    assert found is not None and found.key.id == 1
    now[0] += 0.01
    assert cache.get("h1") is None  # expired: the caller reads the database again


def test_the_least_recently_used_key_leaves_first() -> None:
    cache = KeyCache(ttl=60, size=2)
    cache.put("h1", key(1), None)
    cache.put("h2", key(2), None)
    assert cache.get("h1") is not None  # h1 used last: h2 is the oldest now
    cache.put("h3", key(3), None)
    assert cache.get("h2") is None
    assert cache.get("h1") is not None and cache.get("h3") is not None
