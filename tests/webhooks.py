"""Webhook test helpers: a real receiver on 127.0.0.1, and the dispatcher driven step by step."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import update
from starlette.requests import Request

from supportdesk import timestamps
from supportdesk.jobs.runner import JobContext
from supportdesk.jobs.webhooks import step
from supportdesk.tables import webhook_deliveries, webhooks
from supportdesk.webhooks.client import Sender


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """An ASGI app served by uvicorn in the test's own event loop. Each path answers with the
    `Answer`s queued for it in `script`, in order, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[Answer]] = {}
        self.base_url = ""
        self.arrived = threading.Event()  # set by every request (the receiver has its own thread)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        headers = dict(request.headers)
        self.received.append(Received(scope["path"], headers, body, time.monotonic()))
        self.arrived.set()
        queued = self.script.get(scope["path"])
        answer = queued.pop(0) if queued else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        raw = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver served by uvicorn on a free port of 127.0.0.1, in a thread with its own event
    loop, so it does not take turns with the dispatcher under test."""
    receiver = Receiver()
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (a response written in parts
    # would otherwise wait for the delayed ACK, 40 ms a request)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    receiver.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        receiver, loop="asyncio", lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="receiver")
    sock.listen()  # connections wait in the backlog until uvicorn accepts them
    thread.start()
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


async def dispatch(app: FastAPI) -> None:
    """One step of the dispatcher, as the job runner would run it."""
    context = JobContext(app.state.db, app.state.settings, app.state.bus, "test")
    sender = Sender()
    try:
        await step(context, sender)
    finally:
        sender.close()


async def create(client: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, Any]:
    response = await client.post("/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def attempts(client: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    """The endpoint's delivery log, oldest first."""
    response = await client.get(f"/webhooks/{webhook_id}/deliveries?sort=id&per_page=100")
    assert response.status_code == 200, response.text
    return [item["attributes"] | {"id": item["id"]} for item in response.json()["data"]]


async def make_due(app: FastAPI, **values: Any) -> None:
    """Move every pending delivery's due time to now (instead of waiting out a retry), and
    set any other columns of every endpoint (`failing_since`, ...)."""
    now = timestamps.now()
    async with app.state.db.transaction() as conn:
        pending = webhook_deliveries.c.state == "pending"
        await conn.execute(update(webhook_deliveries).where(pending).values(next_attempt_at=now))
        await conn.execute(
            update(webhooks).where(webhooks.c.enabled).values(next_attempt_at=now, **values)
        )
