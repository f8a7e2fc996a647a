"""The api_keys table's queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import bindparam, delete, insert, select, update

from supportdesk import timestamps
from supportdesk.auth.keys import ApiKey, Network, parse_network
from supportdesk.db import Conn, Row
from supportdesk.tables import api_keys

_BY_HASH = select(api_keys).where(api_keys.c.token_hash == bindparam("token_hash"))
_ALL = select(api_keys).order_by(api_keys.c.id)
_COUNT = select(api_keys.c.id).limit(1)
_INSERT = (
    insert(api_keys)
    .values(
        name=bindparam("name"),
        token_hash=bindparam("token_hash"),
        permissions=bindparam("permissions"),
        allowed_ips=bindparam("allowed_ips"),
        enabled=bindparam("enabled"),
        rate_limit=bindparam("rate_limit"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(api_keys.c.id)
)
_TOUCH = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"))
    .values(last_used_at=bindparam("now"))
)
_SET_ENABLED = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"))
    .values(enabled=bindparam("enabled"), updated_at=bindparam("now"))
)
_DELETE = delete(api_keys).where(api_keys.c.id == bindparam("key_id"))


@lru_cache(maxsize=1024)
def _parse(permissions: str, allowed_ips: str) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Permission and address lists of a key row, parsed once per distinct text (every request
    authenticates; a key's lists rarely change, and a changed text is simply a new entry)."""
    networks = tuple(parse_network(text) for text in json.loads(allowed_ips))
    return frozenset(json.loads(permissions)), networks


def to_key(row: Row) -> ApiKey:
    permissions, networks = _parse(row["permissions"], row["allowed_ips"])
    return ApiKey(
        id=row["id"],
        name=row["name"],
        permissions=permissions,
        networks=networks,
        rate_limit=row["rate_limit"],
    )


async def find_by_hash(conn: Conn, token_hash: str) -> Row | None:
    return await conn.fetch_one(_BY_HASH, {"token_hash": token_hash})


async def any_exists(conn: Conn) -> bool:
    return await conn.fetch_value(_COUNT) is not None


async def list_all(conn: Conn) -> list[Row]:
    return await conn.fetch_all(_ALL)


async def create(
    conn: Conn,
    name: str,
    token_hash: str,
    permissions: Sequence[str],
    allowed_ips: Sequence[str],
    rate_limit: int | None = None,
) -> int:
    key_id: int = await conn.fetch_value(
        _INSERT,
        {
            "name": name,
            "token_hash": token_hash,
            "permissions": json.dumps(sorted(set(permissions))),
            "allowed_ips": json.dumps(list(allowed_ips)),
            "enabled": True,
            "rate_limit": rate_limit,
            "now": timestamps.now(),
        },
    )
    return key_id


async def touch(conn: Conn, key_id: int, now: str) -> None:
    await conn.execute(_TOUCH, {"key_id": key_id, "now": now})


async def set_enabled(conn: Conn, key_id: int, enabled: bool) -> bool:
    changed = await conn.execute(
        _SET_ENABLED, {"key_id": key_id, "enabled": enabled, "now": timestamps.now()}
    )
    return changed > 0


async def remove(conn: Conn, key_id: int) -> bool:
    return await conn.execute(_DELETE, {"key_id": key_id}) > 0
