"""The two halves of an idempotent request: `begin`, called by `auth.guard.authorize` once the
caller is authenticated, allowed and within its rate limit, reserves the key (or answers a
repeat); `Recorder`, a pure ASGI middleware, stores the request's answer before sending it,
or releases the key when there is no answer to keep.

Requests without the header pay a header lookup in the guard and, for POSTs, a pass-through
`send` wrapper here; nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.idempotency import service
from supportdesk.idempotency.keys import (
    HEADER,
    REPLAYED_HEADERS,
    Fingerprint,
    StoredResponse,
    is_kept,
    parse_key,
)
from supportdesk.idempotency.service import Reservation
from supportdesk.jsonapi.body import buffer_body, close_buffered, is_multipart
from supportdesk.jsonapi.requests import database, settings

logger = logging.getLogger("supportdesk.idempotency")

_STATE = "idempotency"  # the request's Reservation, in scope["state"]


async def begin(request: Request, api_key_id: int) -> None:
    """For a POST that sends Idempotency-Key: 400 for a malformed key; read the body (413 past
    the largest body the request's content type may have) and fingerprint the request; then
    reserve the key for it, or raise the repeat's answer (Replay, 409 in flight, 422 reused)."""
    key = parse_key(request.headers.getlist(HEADER))
    config = settings(request)
    limit = config.max_upload_bytes if is_multipart(request) else config.max_body_bytes
    scope = request.scope
    content_type = request.headers.get("content-type", "")
    digest = Fingerprint("POST", scope["path"], scope["query_string"], content_type)
    await buffer_body(request, limit, digest.update)
    reservation = await service.reserve(database(request), api_key_id, key, digest.hexdigest())
    scope.setdefault("state", {})[_STATE] = reservation


def _answer(messages: list[Message]) -> StoredResponse:
    start = messages[0]
    headers = {}
    for name, value in start.get("headers", []):
        text = name.decode("latin-1").lower()
        if text in REPLAYED_HEADERS:
            headers[text] = value.decode("latin-1")
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return StoredResponse(start["status"], headers, body)


async def _finish(reservation: Reservation, answer: StoredResponse | None) -> None:
    """Store a kept answer, or release the key. Shielded: a request being cancelled still
    settles its key. A database failure here is logged, not raised: the answer still goes out,
    and the row left in flight is taken over once abandoned."""
    with anyio.CancelScope(shield=True):
        try:
            if answer is not None and is_kept(answer.status):
                if not await service.record(reservation, answer):
                    logger.warning(
                        "the Idempotency-Key reservation of key %s was taken over before this "
                        "request answered; its answer is not stored",
                        reservation.api_key_id,
                    )
            else:
                await service.release(reservation)
        except Exception:
            logger.exception("could not settle an Idempotency-Key reservation")


class Recorder:
    """Pure ASGI middleware, inside `RequestContext` (so the request id and rate limit headers
    of each answer are its own, never stored). For a request `begin` reserved: holds the
    response back until its last body part, stores it (`keys.is_kept`) or releases the key,
    then sends it, so a retry after the answer always finds it. A request that raises, or ends
    without a complete response, releases its key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        held: list[Message] = []
        reservation: Reservation | None = None

        async def send_settled(message: Message) -> None:
            nonlocal reservation
            if message["type"] == "http.response.start":
                reservation = state.pop(_STATE, None)
            if reservation is None:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                settled, reservation = reservation, None
                await _finish(settled, _answer(held))
                for part in held:
                    await send(part)

        try:
            await self.app(scope, receive, send_settled)
        finally:
            close_buffered(scope)
            unsettled = reservation or state.pop(_STATE, None)
            if unsettled is not None:
                await _finish(unsettled, None)
