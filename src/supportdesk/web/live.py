"""Live pages (SPEC 14): each open console or portal page holds one event stream
(`EventSource`), fed by the worker's event bus like `/events/stream`. It carries no content,
only that something changed (`event: change`, the event's id, name and ticket): the page then
reads itself again and swaps in what changed, through the same access checks as any page. A
customer's stream carries only the events of their own tickets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from supportdesk.db import Row
from supportdesk.events import log
from supportdesk.events.service import stream
from supportdesk.tickets import repository as tickets
from supportdesk.tickets.resource import TICKETS
from supportdesk.web import forms, pages

router = APIRouter(include_in_schema=False)
MAX_LIVE_TICKETS = 200
_NAMES = ("ticket.", "ticket_message.", "ticket_attachment.")


def _change(row: Row) -> bytes:
    data = orjson.dumps({"id": row["id"], "event": row["event"], "ticket_id": row["ticket_id"]})
    return b"id: %d\nevent: change\ndata: %s\n\n" % (row["id"], data)


def _cursor(request: Request) -> int | None:
    last = request.headers.get("last-event-id", "")
    if last == "0":  # from the start of the log
        return 0
    return forms.id_param(last)


def _response(request: Request, selection: log.Selection) -> Response:
    body = stream(request.app.state.db, request.app.state.bus, _cursor(request), selection, _change)
    headers = {**pages.SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _ticket_param(request: Request) -> tuple[int, ...]:
    found = forms.id_param(request.query_params.get("ticket"))
    return () if found is None else (found,)


@router.get("/console/live")
async def console_live(request: Request) -> Response:
    """Every ticket change, or one ticket's (`?ticket=ID`)."""
    await forms.staff(request)
    return _response(request, log.Selection(prefixes=_NAMES, ticket_ids=_ticket_param(request)))


def _data(row: Row) -> dict[str, Any]:
    data: dict[str, Any] = log.parsed(row["data"])
    return data


@dataclass(frozen=True)
class _Theirs(log.Selection):
    """The events of a customer's tickets, internal notes left out (not even the news that one
    was written reaches the portal). With `follow`, also the tickets that become theirs while
    the stream runs (opened by them or given to them: a ticket's own events carry its
    `user_id`), so a list page shows a new ticket too; a ticket given to someone else is
    dropped after the event that tells the page so."""

    owner_id: int = 0
    theirs: set[int] = field(default_factory=set)
    follow: bool = True

    def matches(self, row: Row) -> bool:
        if not super().matches(row):
            return False
        ticket_id = row["ticket_id"]
        if self.follow and row["resource"]["type"] == TICKETS.type and ticket_id is not None:
            if _data(row).get("user_id") == self.owner_id:
                self.theirs.add(ticket_id)
            elif ticket_id in self.theirs:
                self.theirs.discard(ticket_id)
                return True
        if ticket_id not in self.theirs or row["event"].startswith("ticket_attachment."):
            return False  # a file comes with its message, whose event is enough (notes': none)
        return not (row["event"].startswith("ticket_message.") and _data(row).get("internal"))


@router.get("/portal/live")
async def portal_live(request: Request) -> Response:
    """The changes of the customer's own tickets (one, with `?ticket=ID`): their newest
    `MAX_LIVE_TICKETS`, and any that become theirs, when no ticket is named."""
    me = await forms.customer(request)
    wanted = _ticket_param(request)
    async with request.app.state.db.read() as conn:
        if wanted:
            found = await tickets.by_ids(conn, wanted)
            if not found or found[0]["user_id"] != me.id:
                return pages.error_page(request, 404, "There is no such ticket of yours.")
            one = _Theirs(prefixes=_NAMES, owner_id=me.id, theirs=set(wanted), follow=False)
            return _response(request, one)
        newest = await tickets.ids_of_user(conn, me.id, MAX_LIVE_TICKETS)
    return _response(request, _Theirs(prefixes=_NAMES, owner_id=me.id, theirs=set(newest)))
