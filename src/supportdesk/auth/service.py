"""Authentication of a request and management of keys (used by `auth.guard` and the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
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


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthenticated("The request is missing a valid bearer token.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("The request is missing a valid bearer token.")
    return token


async def authenticate(db: Database, header: str | None, address: str | None) -> ApiKey:
    """The key behind an Authorization header: 401 for a missing, unknown or disabled key,
    403 for an address outside its allow-list."""
    token_hash = hash_token(bearer_token(header))
    async with db.read() as conn:
        row = await repository.find_by_hash(conn, token_hash)
    if row is None or not hashes_match(row["token_hash"], token_hash) or not row["enabled"]:
        raise Unauthenticated("The provided API key is invalid or has been disabled.")
    key = repository.to_key(row)
    if not key.admits(address):
        raise Forbidden("You do not have permission to access this resource.")
    last_used = row["last_used_at"]
    now = datetime.now(UTC)
    if last_used is None or now - datetime.fromisoformat(last_used) >= TOUCH_INTERVAL:
        async with db.transaction() as conn:
            await repository.touch(conn, key.id, timestamps.to_text(now))
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
