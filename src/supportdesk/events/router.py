"""/events (the changes feed, with long polling) and /events/stream (server-sent events)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from supportdesk.auth.guard import authorize
from supportdesk.errors import BadQuery
from supportdesk.events import log, service
from supportdesk.events.bus import Bus
from supportdesk.events.resource import EVENTS, FEED
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.document import render_feed, with_param
from supportdesk.jsonapi.query import parse_feed_query
from supportdesk.jsonapi.requests import database, settings
from supportdesk.queries import FeedQuery
from supportdesk.routing import admin_router

router = admin_router("events")

_FEED_PARAMETERS = [
    openapi.query_param(
        "after", "Cursor: events with a larger id (default 0)", {"type": "integer", "minimum": 0}
    ),
    *openapi.feed_filters(FEED),
]


def bus(request: Request) -> Bus:
    value: Bus = request.app.state.bus
    return value


def _selection(query: FeedQuery) -> log.Selection:
    try:
        names, prefixes = log.parse_patterns(query.filters.get("event", ()))
    except ValueError as exc:
        raise BadQuery(f"filter[event]: {exc}") from None
    return log.Selection(names, prefixes, tuple(query.filters.get("ticket_id", ())))


@router.get(
    "/events",
    summary="The changes feed: events after a cursor, oldest first (needs events.view)",
    responses={**openapi.feed(EVENTS), **openapi.errors(400, 422)},
    openapi_extra={"parameters": [*_FEED_PARAMETERS, *openapi.feed_paging()]},
)
async def list_events(request: Request) -> Response:
    await authorize(request, "events.view")
    query = parse_feed_query(request.query_params.multi_items(), FEED)
    rows, cursor = await service.feed(
        database(request),
        bus(request),
        query.after or 0,
        query.limit,
        _selection(query),
        min(query.wait, settings(request).event_wait_limit),
    )
    return render_feed(EVENTS, rows, cursor, with_param(request, "after", str(cursor)))


@router.get(
    "/events/stream",
    summary="The changes feed as server-sent events (needs events.view)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`id:` the cursor, `event:` the name, `data:` the event resource; "
            "a comment line every 15 s. Resume with Last-Event-ID or ?after=.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **openapi.errors(400, 422),
    },
    openapi_extra={"parameters": _FEED_PARAMETERS},
)
async def stream_events(request: Request) -> Response:
    await authorize(request, "events.view")
    query = parse_feed_query(request.query_params.multi_items(), FEED)
    selection = _selection(query)
    cursor = query.after
    last_event_id = request.headers.get("last-event-id", "").strip()
    if last_event_id.isascii() and last_event_id.isdigit():
        cursor = int(last_event_id)
    events = service.stream(database(request), bus(request), cursor, selection)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
