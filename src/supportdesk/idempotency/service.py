"""Reserving an Idempotency-Key, storing the answer, releasing it, purging expired keys.

The row is the truth, shared by every worker and instance: `reserve` commits an in-flight row
in its own transaction before the request runs, so a repeat arriving anywhere finds it; the
answer is stored (or the row deleted) after the request, by `record` or `release`. A process
that dies in between leaves an in-flight row, which a repeat takes over once it is
`keys.ABANDONED_AFTER` old. That window is the one gap: a request whose writes committed but
whose process died before `record` runs again when retried after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from supportdesk import timestamps
from supportdesk.db import Database, Row
from supportdesk.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from supportdesk.idempotency import repository
from supportdesk.idempotency.keys import ABANDONED_AFTER, TTL, Replay, StoredResponse

logger = logging.getLogger("supportdesk.idempotency")

# Tries of one `reserve`: another request may release, answer or take over the row between
# our insert and our read; after this many such races the repeat is told to retry (409).
ATTEMPTS = 3
PURGE_BATCH = 1000


@dataclass(frozen=True)
class Reservation:
    """A key this request holds: its row was inserted (or taken over) with `created_at ==
    reserved_at`, which every later change of the row names."""

    db: Database
    api_key_id: int
    key: str
    reserved_at: str


def _stored(row: Row) -> StoredResponse:
    headers: dict[str, str] = orjson.loads(row["headers"]) if row["headers"] else {}
    return StoredResponse(int(row["status_code"]), headers, bytes(row["body"] or b""))


async def reserve(db: Database, api_key_id: int, key: str, fingerprint: str) -> Reservation:
    """Hold `key` for this request, or answer a repeat: Replay (the stored answer) for the
    same request answered before, IdempotencyKeyReused (422) for a different request,
    IdempotencyKeyInFlight (409) while the first one runs. An expired row counts as absent;
    an in-flight row older than ABANDONED_AFTER is taken over."""
    for _ in range(ATTEMPTS):
        moment = datetime.now(UTC)
        now = timestamps.to_text(moment)
        expires_at = timestamps.to_text(moment + TTL)
        async with db.transaction() as conn:
            if await repository.insert_new(conn, api_key_id, key, fingerprint, now, expires_at):
                return Reservation(db, api_key_id, key, now)
            row = await repository.find(conn, api_key_id, key)
            if row is None:
                continue  # released since our insert: try again
            expired = row["expires_at"] <= now
            abandoned = row["status_code"] is None and row["created_at"] <= timestamps.to_text(
                moment - ABANDONED_AFTER
            )
            if not expired:
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyKeyReused()
                if row["status_code"] is not None:
                    raise Replay(_stored(row))
                if not abandoned:
                    raise IdempotencyKeyInFlight()
            seen = row["created_at"]
            if await repository.replace(conn, api_key_id, key, seen, fingerprint, now, expires_at):
                if abandoned:
                    logger.warning(
                        "took over the Idempotency-Key reservation of key %s made at %s, "
                        "which never answered",
                        api_key_id,
                        seen,
                    )
                return Reservation(db, api_key_id, key, now)
    raise IdempotencyKeyInFlight()


async def record(reservation: Reservation, answer: StoredResponse) -> bool:
    """Store the request's answer for its repeats; False if the reservation was taken over
    meanwhile (the request outlived ABANDONED_AFTER), when the taker's answer is kept."""
    headers = orjson.dumps(dict(answer.headers)).decode()
    async with reservation.db.transaction() as conn:
        return await repository.record(
            conn,
            reservation.api_key_id,
            reservation.key,
            reservation.reserved_at,
            answer.status,
            headers,
            answer.body,
        )


async def release(reservation: Reservation) -> None:
    """Free the key of a request that had no answer to keep (a fault, an unavailable database,
    a rate limit), so that a retry runs again."""
    async with reservation.db.transaction() as conn:
        await repository.release(
            conn, reservation.api_key_id, reservation.key, reservation.reserved_at
        )


async def purge(db: Database) -> int:
    """Delete every expired key; returns how many. In batches of PURGE_BATCH, each its own
    transaction, so writers wait for one batch at most. Repeatable beside a running server."""
    now = timestamps.now()
    removed = 0
    while True:
        async with db.transaction() as conn:
            batch = await repository.purge(conn, now, PURGE_BATCH)
        removed += batch
        if batch < PURGE_BATCH:
            return removed
