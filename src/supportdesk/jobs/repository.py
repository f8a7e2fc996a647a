"""All queries on the job leases (table `job_leases`, one row per job).

A lease is taken with two statements in one transaction: insert the job's row if it is missing
(ON CONFLICT DO NOTHING), then one conditional UPDATE that succeeds only when the lease is free,
expired or already ours. PostgreSQL re-checks the UPDATE's condition against the row a
concurrent winner committed, and SQLite runs one writer at a time, so of processes racing for a
lease exactly one sees a row count of 1. Times are wire-format text compared in the database
(fixed width, so text order is time order on SQLite); the instances' clocks are assumed to
agree to well within a lease.
"""

from __future__ import annotations

from sqlalchemy import bindparam, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from supportdesk.db import Conn, Row
from supportdesk.tables import job_leases

c = job_leases.c
# PostgreSQL's INSERT ... ON CONFLICT construct; SQLite (3.24+) has the same syntax and
# SQLAlchemy's SQLite compiler renders it too.
_ADD = (
    insert(job_leases)
    .values(name=bindparam("name"))
    .on_conflict_do_nothing(index_elements=[c.name])
)
_TAKE = (
    update(job_leases)
    .where(c.name == bindparam("name"))
    .where(
        or_(
            c.holder == bindparam("me"),
            c.holder.is_(None),
            c.expires_at < bindparam("now"),
        )
    )
    .values(holder=bindparam("me"), expires_at=bindparam("expires_at"))
)
_RELEASE = (
    update(job_leases).where(c.holder == bindparam("me")).values(holder=null(), expires_at=null())
)
_SUCCEEDED = (
    update(job_leases).where(c.name == bindparam("name")).values(last_success_at=bindparam("at"))
)
_FAILED = (
    update(job_leases)
    .where(c.name == bindparam("name"))
    .values(last_error=bindparam("error"), last_error_at=bindparam("at"))
)
_ALL = select(job_leases).order_by(c.name)


async def take(conn: Conn, name: str, holder: str, now: str, expires_at: str) -> bool:
    """Take or renew the lease of job `name` for `holder` until `expires_at`; True when it is
    `holder`'s now. Call inside a write transaction."""
    await conn.execute(_ADD, {"name": name})
    params = {"name": name, "me": holder, "now": now, "expires_at": expires_at}
    return await conn.execute(_TAKE, params) == 1


async def release(conn: Conn, holder: str) -> int:
    """Give up every lease `holder` holds; returns how many."""
    return await conn.execute(_RELEASE, {"me": holder})


async def succeeded(conn: Conn, name: str, at: str) -> None:
    await conn.execute(_SUCCEEDED, {"name": name, "at": at})


async def failed(conn: Conn, name: str, error: str, at: str) -> None:
    await conn.execute(_FAILED, {"name": name, "error": error, "at": at})


async def leases(conn: Conn) -> list[Row]:
    """Every job's row, by name."""
    return await conn.fetch_all(_ALL)
