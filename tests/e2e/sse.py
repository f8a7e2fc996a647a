"""A server-sent-events client for tests: a thread reading one stream into a queue."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

TIMEOUT_S = 20


class StreamClient:
    """An SSE client in a thread: each parsed message (or comment) lands on `messages`."""

    def __init__(self, base_url: str, token: str, headers: dict[str, str] | None = None) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self.ended = threading.Event()
        self._url = f"{base_url}/api/v1/admin/events/stream"
        self._headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(TIMEOUT_S, read=60)) as http,
                http.stream("GET", self._url, headers=self._headers) as response,
            ):
                self.status = response.status_code
                message: dict[str, Any] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.messages.put({"comment": line})
                    elif not line:
                        if message:
                            self.messages.put(message)
                        message = {}
                    else:
                        name, _, value = line.partition(": ")
                        message[name] = value
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def events(self, count: int, within: float = TIMEOUT_S) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while len(found) < count:
            item = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if "event" in item:
                found.append(item)
        return found

    def close(self) -> None:
        self._stop.set()


@contextmanager
def streaming(base_url: str, token: str, **headers: str) -> Iterator[StreamClient]:
    client = StreamClient(base_url, token, headers)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while client.status is None and not client.ended.is_set():
            assert time.monotonic() < deadline, "the stream did not open"
            time.sleep(0.02)
        yield client
    finally:
        client.close()


def ids_until(client: StreamClient, last_id: int, within: float) -> list[int]:
    """The event ids the client reads until it has read `last_id` (or the time is up)."""
    ids: list[int] = []
    deadline = time.monotonic() + within
    while not ids or ids[-1] < last_id:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            item = client.messages.get(timeout=remaining)
        except queue.Empty:
            break
        if "id" in item:
            ids.append(int(item["id"]))
    return ids
