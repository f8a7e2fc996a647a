"""The pure parts of idempotency (SPEC 12): the header's syntax, a request's fingerprint, which
answers are kept, and the stored answer a repeat gets back.

What counts as "the same request": the method, the path, the raw query string, the media type
(without parameters) and the body bytes. A multipart body is compared without its boundary,
which clients draw at random for every request (httpx, requests, curl): two uploads are the
same when their bytes differ only in the boundary, so a client's retry of an upload replays.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from supportdesk.errors import InvalidIdempotencyKey

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
# How long an answer is kept (SPEC 12), and after how long a reservation that never answered
# (its process died, or lost the database before it could record) is taken over by a repeat.
TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)
MAX_LENGTH = 255
# 1..255 visible ASCII characters (RFC 9110's VCHAR: no space, no control character).
_KEY = re.compile(f"[!-~]{{1,{MAX_LENGTH}}}")
# The response headers a replay repeats; the rest (request id, rate limit) are the repeat's own.
REPLAYED_HEADERS = frozenset({"content-type", "location", "etag"})


def parse_key(values: list[str]) -> str:
    """The Idempotency-Key of a request that sent the header (`values`: every occurrence);
    InvalidIdempotencyKey (400) for an empty, too long, non-ASCII or repeated one."""
    if len(values) != 1:
        raise InvalidIdempotencyKey("Send one Idempotency-Key header, not several.")
    value = values[0]
    if not _KEY.fullmatch(value):
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key header must be 1 to {MAX_LENGTH} visible ASCII characters "
            "(no spaces)."
        )
    return value


def _media_type(content_type: str) -> tuple[str, bytes | None]:
    """The lowercased media type and, for a multipart one, its boundary."""
    media, *params = content_type.split(";")
    media = media.strip().lower()
    boundary = None
    if media.startswith("multipart/"):
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "boundary" and value.strip().strip('"'):
                boundary = value.strip().strip('"').encode("latin-1")
    return media, boundary


class Fingerprint:
    """SHA-256 hex of a request, fed its body chunk by chunk as it arrives. The method, path,
    query and media type are length-prefixed, then each piece of the body contributes its own
    SHA-256, so no two requests share an encoding. The body is one piece, or a multipart body
    the pieces between its delimiters, so the boundary itself never counts."""

    def __init__(self, method: str, path: str, query: bytes, content_type: str) -> None:
        media, boundary = _media_type(content_type)
        self._outer = hashlib.sha256()
        for part in (method.upper().encode(), path.encode(), query, media.encode()):
            self._outer.update(len(part).to_bytes(8, "big"))
            self._outer.update(part)
        self._delimiter = b"--" + boundary if boundary else b""
        self._piece = hashlib.sha256()
        self._tail = b""  # the end of the body so far that may begin a delimiter

    def update(self, chunk: bytes) -> None:
        delimiter = self._delimiter
        if not delimiter:
            self._piece.update(chunk)
            return
        data = self._tail + chunk
        while (at := data.find(delimiter)) >= 0:
            self._piece.update(data[:at])
            self._next_piece()
            data = data[at + len(delimiter) :]
        keep = len(delimiter) - 1
        self._piece.update(data[:-keep])
        self._tail = data[-keep:]

    def _next_piece(self) -> None:
        self._outer.update(self._piece.digest())
        self._piece = hashlib.sha256()

    def hexdigest(self) -> str:
        """The fingerprint, once the whole body has been fed."""
        self._piece.update(self._tail)
        self._tail = b""
        self._next_piece()
        return self._outer.hexdigest()


def fingerprint(method: str, path: str, query: bytes, content_type: str, body: bytes) -> str:
    """The fingerprint of a request whose whole body is at hand."""
    digest = Fingerprint(method, path, query, content_type)
    digest.update(body)
    return digest.hexdigest()


def is_kept(status: int) -> bool:
    """Whether an answer is the request's answer, kept and replayed: every 2xx, 3xx and 4xx but
    429 (the rate limit: a later try may pass). 5xx are faults or an unavailable database:
    the key is released, and a retry runs again."""
    return status < 500 and status != 429


@dataclass(frozen=True)
class StoredResponse:
    """An answer as it is replayed: status, the `REPLAYED_HEADERS` it had, and its body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Replay(Exception):
    """Raised by the guard for a repeat of an answered request; `jsonapi.errors` renders the
    stored answer with `Idempotent-Replayed: true`."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__(f"replay of a {response.status} answer")
        self.response = response
