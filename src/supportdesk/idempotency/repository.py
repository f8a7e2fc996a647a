"""All queries on `idempotency_keys`: one row per (API key, Idempotency-Key).

A row is created by a unique insert (ON CONFLICT DO NOTHING): of requests racing with one key,
across workers and instances, exactly one inserts it and runs. Every later change of a row is
a conditional UPDATE or DELETE naming the `created_at` its writer saw (or wrote), so a change
never lands on a row that someone else has taken over meanwhile: PostgreSQL re-checks the
condition against a concurrent winner's committed row, and SQLite runs one writer at a time.
Times are wire-format text, compared in the database and in Python (fixed width, so text order
is time order).
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, null, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from supportdesk.db import Conn, Row
from supportdesk.tables import idempotency_keys

c = idempotency_keys.c
_THIS = (c.api_key_id == bindparam("api_key_id"), c.key == bindparam("key"))
# PostgreSQL's INSERT ... ON CONFLICT construct; SQLite (3.24+) has the same syntax and
# SQLAlchemy's SQLite compiler renders it too.
_INSERT = (
    insert(idempotency_keys)
    .values(
        api_key_id=bindparam("api_key_id"),
        key=bindparam("key"),
        fingerprint=bindparam("fingerprint"),
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
    .on_conflict_do_nothing(index_elements=[c.api_key_id, c.key])
    .returning(c.api_key_id)
)
_FIND = select(c.fingerprint, c.status_code, c.headers, c.body, c.created_at, c.expires_at).where(
    *_THIS
)
# A new reservation in place of the row seen at `seen`: still in flight (abandoned by its
# process), or expired.
_REPLACE = (
    update(idempotency_keys)
    .where(*_THIS, c.created_at == bindparam("seen"))
    .where(or_(c.status_code.is_(None), c.expires_at <= bindparam("now")))
    .values(
        fingerprint=bindparam("fingerprint"),
        status_code=null(),
        headers=null(),
        body=null(),
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
)
_OURS = (*_THIS, c.status_code.is_(None), c.created_at == bindparam("reserved_at"))
_RECORD = (
    update(idempotency_keys)
    .where(*_OURS)
    .values(
        status_code=bindparam("status_code"),
        headers=bindparam("headers"),
        body=bindparam("body"),
    )
)
_RELEASE = delete(idempotency_keys).where(*_OURS)
_PURGE = delete(idempotency_keys).where(
    tuple_(c.api_key_id, c.key).in_(
        select(c.api_key_id, c.key)
        .where(c.expires_at <= bindparam("now"))
        .limit(bindparam("limit"))
    )
)


async def insert_new(
    conn: Conn, api_key_id: int, key: str, fingerprint: str, now: str, expires_at: str
) -> bool:
    """Reserve the key with an in-flight row; False when a row for it exists already."""
    params = {
        "api_key_id": api_key_id,
        "key": key,
        "fingerprint": fingerprint,
        "now": now,
        "expires_at": expires_at,
    }
    return await conn.fetch_one(_INSERT, params) is not None


async def find(conn: Conn, api_key_id: int, key: str) -> Row | None:
    return await conn.fetch_one(_FIND, {"api_key_id": api_key_id, "key": key})


async def replace(
    conn: Conn,
    api_key_id: int,
    key: str,
    seen: str,
    fingerprint: str,
    now: str,
    expires_at: str,
) -> bool:
    """Turn the abandoned or expired row seen with `created_at == seen` into a new
    reservation; False when it has changed since (answered, or taken over by another)."""
    params = {
        "api_key_id": api_key_id,
        "key": key,
        "seen": seen,
        "fingerprint": fingerprint,
        "now": now,
        "expires_at": expires_at,
    }
    return await conn.execute(_REPLACE, params) == 1


async def record(
    conn: Conn,
    api_key_id: int,
    key: str,
    reserved_at: str,
    status_code: int,
    headers: str,
    body: bytes,
) -> bool:
    """Store the answer of the reservation made at `reserved_at`; False when it is no longer
    ours (taken over as abandoned)."""
    params = {
        "api_key_id": api_key_id,
        "key": key,
        "reserved_at": reserved_at,
        "status_code": status_code,
        "headers": headers,
        "body": body,
    }
    return await conn.execute(_RECORD, params) == 1


async def release(conn: Conn, api_key_id: int, key: str, reserved_at: str) -> bool:
    """Delete the reservation made at `reserved_at` if it is still ours and unanswered."""
    params = {"api_key_id": api_key_id, "key": key, "reserved_at": reserved_at}
    return await conn.execute(_RELEASE, params) == 1


async def purge(conn: Conn, now: str, limit: int) -> int:
    """Delete up to `limit` rows expired by `now`; returns how many."""
    return await conn.execute(_PURGE, {"now": now, "limit": limit})
