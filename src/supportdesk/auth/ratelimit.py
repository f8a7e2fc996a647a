"""Per-key rate limits (issue 5): a fixed one-minute window per API key, counted in a store
that every worker process shares.

- With `SUPPORTDESK_REDIS_URL` set, the counts live in Redis (`INCR` + `EXPIRE`), shared by
  every instance that uses the same Redis.
- Without it, they live in a small memory-mapped file under the storage folder, shared by
  every worker process of this host (a `flock` guards each read-modify-write, a few
  microseconds). Instances on other hosts need Redis to share limits.

A limit of 0 turns limiting off for the key (or, as the default, for every key).
"""

from __future__ import annotations

import abc
import fcntl
import mmap
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

WINDOW_S = 60
# the `meta` value naming this deployment in Redis (`supportdesk.db.meta.secret`)
DEPLOYMENT_KEY = "deployment_id"
_SLOTS = 4096
_SLOT = struct.Struct("<qqq")  # key id, window number, count


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The response's rate-limit headers, as ASGI sends them."""
        reset = str(self.reset_s).encode()
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", reset),
        ]
        if not self.allowed:
            headers.append((b"retry-after", reset))
        return headers


class Counter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, key_id: int, window: int) -> int:
        """Count one request of the key in the window; return the window's count so far."""

    async def close(self) -> None:
        return None


class FileCounter(Counter):
    """Counts in a memory-mapped file shared by the processes of one host."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = _SLOTS * _SLOT.size
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    async def hit(self, key_id: int, window: int) -> int:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            return self._hit(key_id, window)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _hit(self, key_id: int, window: int) -> int:
        """Open addressing from `key_id`'s home slot: the key's own slot if it has one on its
        chain (the chain ends at a never-used slot), else the first slot that is free or
        holds an earlier window, which it takes over."""
        reusable: int | None = None
        for probe in range(_SLOTS):
            offset = ((key_id + probe) % _SLOTS) * _SLOT.size
            slot_key, slot_window, count = _SLOT.unpack_from(self._map, offset)
            if slot_key == key_id:
                count = count + 1 if slot_window == window else 1
                _SLOT.pack_into(self._map, offset, key_id, window, count)
                return count
            if reusable is None and (slot_key == 0 or slot_window < window):
                reusable = offset
            if slot_key == 0:
                break
        if reusable is None:
            return 1  # every slot is in use this minute: let the request through
        _SLOT.pack_into(self._map, reusable, key_id, window, 1)
        return 1

    async def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class RedisCounter(Counter):
    """Counts in Redis, shared by every instance that names the same `deployment`: an id kept
    in the database (`DEPLOYMENT_KEY`), so two deployments that share a Redis database never
    count each other's key 1, key 2, ... together."""

    def __init__(self, url: str, deployment: str) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = f"supportdesk:{deployment}:ratelimit"

    async def hit(self, key_id: int, window: int) -> int:
        name = f"{self._prefix}:{key_id}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW_S * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, counter: Counter, default_limit: int) -> None:
        self.counter = counter
        self.default_limit = default_limit

    async def check(self, key_id: int, key_limit: int | None) -> Verdict | None:
        """None when the key is not limited; otherwise whether this request may pass."""
        limit = self.default_limit if key_limit is None else key_limit
        if limit <= 0:
            return None
        now = time.time()
        window = int(now // WINDOW_S)
        count = await self.counter.hit(key_id, window)
        reset = max(1, int((window + 1) * WINDOW_S - now + 0.999))
        return Verdict(count <= limit, limit, max(0, limit - count), reset)


def open_limiter(
    redis_url: str | None, storage_dir: str, default_limit: int, deployment: str
) -> RateLimiter:
    counter: Counter = (
        RedisCounter(redis_url, deployment)
        if redis_url
        else FileCounter(Path(storage_dir) / "ratelimit.bin")
    )
    return RateLimiter(counter, default_limit)
