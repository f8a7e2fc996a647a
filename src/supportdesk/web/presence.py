"""Who else is on a ticket's page (SPEC 14: "<name> is viewing / replying"). Each open console
page says so every few seconds (`console.js`); a mark not renewed within `TTL` has gone. Kept
in the database, so every worker and instance sees the same."""

from __future__ import annotations

from datetime import timedelta

from supportdesk import timestamps
from supportdesk.db import Database, IntegrityViolation, Row
from supportdesk.errors import ResourceNotFound, ValidationFailed
from supportdesk.web import repository

STATES = ("viewing", "replying")
TTL = timedelta(seconds=20)


async def update(db: Database, ticket_id: int, user_id: int, state: str) -> None:
    """`viewing` or `replying` (renewed), or `left`."""
    if state == "left":
        await leave(db, ticket_id, user_id)
        return
    if state not in STATES:
        raise ValidationFailed.field("state", "The state is viewing, replying or left.")
    try:
        async with db.transaction() as conn:
            await repository.set_presence(conn, ticket_id, user_id, state, timestamps.now())
    except IntegrityViolation:
        # no such ticket (a page left open on a ticket deleted since): 404, not a server error
        raise ResourceNotFound("tickets", ticket_id) from None


async def leave(db: Database, ticket_id: int, user_id: int) -> None:
    async with db.transaction() as conn:
        await repository.leave(conn, ticket_id, user_id)


async def others(db: Database, ticket_id: int, user_id: int) -> list[Row]:
    """Everyone else on the ticket's page now, who came first first."""
    async with db.read() as conn:
        rows = await repository.present(conn, ticket_id, timestamps.ago(TTL))
    return [row for row in rows if row["user_id"] != user_id]
