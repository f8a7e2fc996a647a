"""Authentication of a request and management of keys (used by `auth.guard` and the CLI)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from supportdesk import timestamps
from supportdesk.auth import repository
from supportdesk.auth.keys import (
    ApiKey,
    hash_token,
    hashes_match,
    new_token,
    normalise_permission,
    parse_network,
)
from supportdesk.db import Database
from supportdesk.errors import Forbidden, Unauthenticated

# `last_used_at` is written at most once a minute per key, so authentication stays a read.
TOUCH_INTERVAL = timedelta(seconds=60)
# How long a worker trusts a key it has read: a key disabled, deleted or changed (by the CLI,
# in any process of any instance) is refused by every worker within this, under the second
# issue 13 allows, with no message between processes to lose.
KEY_CACHE_TTL_S = 0.5


@dataclass(slots=True)
class _Known:
    key: ApiKey
    last_used: datetime | None
    until: float  # time.monotonic() after which the key is read again


class KeyCache:
    """The keys this worker found in the last `ttl` seconds, by the Authorization header that
    named them, so that a busy key costs one read every `ttl` seconds, not one per request,
    and a request of a known key neither parses its header nor hashes its token. The worker
    sees each token on every request anyway; the cache keeps them in its memory only. Only
    keys that were found and enabled are kept, each under its one header `Bearer <token>`:
    an unknown token, or a known one written otherwise (other spaces, other case), is looked
    up every time, and cannot fill the cache (bounded besides, least recently used first
    out)."""

    def __init__(self, ttl: float = KEY_CACHE_TTL_S, size: int = 1024) -> None:
        self._ttl = ttl
        self._size = size
        self._known: OrderedDict[str, _Known] = OrderedDict()

    def get(self, header: str) -> _Known | None:
        known = self._known.get(header)
        if known is None:
            return None
        if time.monotonic() >= known.until:
            del self._known[header]
            return None
        self._known.move_to_end(header)
        return known

    def put(self, header: str, key: ApiKey, last_used: datetime | None) -> _Known:
        known = self._known[header] = _Known(key, last_used, time.monotonic() + self._ttl)
        self._known.move_to_end(header)
        if len(self._known) > self._size:
            self._known.popitem(last=False)
        return known


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthenticated("The request is missing a valid bearer token.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("The request is missing a valid bearer token.")
    return token


async def authenticate(
    db: Database, keys: KeyCache, header: str | None, address: str | None
) -> ApiKey:
    """The key behind an Authorization header: 401 for a missing, unknown or disabled key,
    403 for an address outside its allow-list."""
    known = keys.get(header) if header else None
    if known is None:
        token = bearer_token(header)
        token_hash = hash_token(token)
        async with db.read() as conn:
            row = await repository.find_by_hash(conn, token_hash)
        if row is None or not hashes_match(row["token_hash"], token_hash) or not row["enabled"]:
            raise Unauthenticated("The provided API key is invalid or has been disabled.")
        last_used = row["last_used_at"]
        found = repository.to_key(row)
        used = None if last_used is None else datetime.fromisoformat(last_used)
        canonical = f"Bearer {token}"
        if header == canonical:
            known = keys.put(canonical, found, used)
        else:
            known = _Known(found, used, 0.0)
    key = known.key
    if not key.admits(address):
        raise Forbidden("You do not have permission to access this resource.")
    now = datetime.now(UTC)
    if known.last_used is None or now - known.last_used >= TOUCH_INTERVAL:
        async with db.transaction() as conn:
            await repository.touch(conn, key.id, timestamps.to_text(now))
        known.last_used = now
    return key


def require(key: ApiKey, permission: str) -> None:
    if not key.allows(permission):
        raise Forbidden(f"This action is unauthorized: the API key lacks `{permission}`.")


async def create_key(
    db: Database,
    name: str,
    permissions: Sequence[str],
    allowed_ips: Sequence[str],
    rate_limit: int | None = None,
) -> tuple[int, str]:
    """A new key; returns its id and the token, which is not stored and cannot be shown again.
    ValueError for an unknown permission or a malformed address."""
    perms = [normalise_permission(p) for p in permissions]
    networks = [str(parse_network(ip)) for ip in allowed_ips]
    if not name.strip():
        raise ValueError("a key needs a name")
    if rate_limit is not None and rate_limit < 0:
        raise ValueError("a rate limit is a number of requests per minute, 0 for none")
    token = new_token()
    async with db.transaction() as conn:
        key_id = await repository.create(
            conn, name.strip(), hash_token(token), perms, networks, rate_limit
        )
    return key_id, token
