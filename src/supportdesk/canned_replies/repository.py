"""All queries on canned replies."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from supportdesk.db import Conn, Row
from supportdesk.db.listing import AnyOf, Contains, Lister, Listing
from supportdesk.db.writes import Writer
from supportdesk.queries import ListQuery
from supportdesk.tables import canned_replies

_GET = select(canned_replies).where(canned_replies.c.id == bindparam("canned_reply_id"))
# Row lock on PostgreSQL for read-modify-write (see tickets.repository)
_GET_FOR_UPDATE = _GET.with_for_update()
# INSERT / UPDATE / DELETE by id
writer = Writer(canned_replies)

# A small table, counted and scanned as it is: a LIKE on the name needs no trigram index.
_lister = Lister(
    Listing(
        table=canned_replies,
        filters={
            "id": AnyOf(canned_replies.c.id),
            "department": AnyOf(canned_replies.c.department),
            "name": Contains(canned_replies.c.name),
        },
        sorts={
            "id": canned_replies.c.id,
            "name": canned_replies.c.name,
            "department": canned_replies.c.department,
            "created_at": canned_replies.c.created_at,
            "updated_at": canned_replies.c.updated_at,
        },
    )
)


async def get(conn: Conn, canned_reply_id: int, *, for_update: bool = False) -> Row | None:
    statement = _GET_FOR_UPDATE if for_update else _GET
    return await conn.fetch_one(statement, {"canned_reply_id": canned_reply_id})


async def page(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    return await _lister.page(conn, query)
