"""Request ids, access logs and the headers other layers leave for the response (issue 5).

Every response carries `X-Request-ID`: the client's own when it sent a sane one (1-128
characters of letters, digits, `.`, `_`, `-`), a new random one otherwise. Every request leaves
one access log record with its method, path, status, duration and the id of the API key that
made it; `logs.JsonFormatter` writes them as JSON lines. Request bodies, query strings and
headers are never logged, so no token or password can reach a log line through here.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("supportdesk.access")

_SANE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _SANE.match(text):
                return text
            break
    return new_request_id()


# A new request id: this process's random prefix and a counter, 32 hex digits like a UUID's.
# Unique across processes and instances (64 random bits each) without a system call and a
# UUID object per request.
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count()


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):016x}"


class RequestContext:
    """Pure ASGI middleware: request id in, request id out, one access log record. Headers a
    route put in `request.state.response_headers` (the rate limit's, as ASGI header pairs) are
    added to the response, whatever Response object the route returned."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                    *state.get("response_headers", ()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                            "key_id": state.get("key_id"),
                            "client": (scope.get("client") or (None,))[0],
                        }
                    },
                )
