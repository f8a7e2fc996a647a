"""A webhook receiver for the benchmarks: answers every POST with 204 at once and remembers,
per request, when it arrived (Unix time), its `webhook-id`, the event's ticket id and when
the event was recorded (`occurred_at`, inside the writing transaction: just before its
commit).
`GET /arrivals` returns them as JSON; `DELETE /arrivals` forgets them.

    uvicorn --app-dir bench receiver:app --port 9100 --loop uvloop --http httptools
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

arrivals: list[tuple[float, str, int | None, str, str]] = []


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    method, path = scope["method"], scope["path"]
    if method == "POST":
        at = time.time()
        body = orjson.loads(await _body(receive))
        headers = dict(scope["headers"])
        attributes = body["data"]["attributes"]
        arrivals.append(
            (
                at,
                headers.get(b"webhook-id", b"").decode(),
                attributes.get("ticket_id"),
                path,
                attributes["occurred_at"],
            )
        )
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if method == "DELETE":
        arrivals.clear()
    payload = orjson.dumps(arrivals if method == "GET" else [])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})
