"""/tickets and /ticket-settings."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from supportdesk.auth.guard import authorize
from supportdesk.errors import ValidationFailed
from supportdesk.events.log import api_key
from supportdesk.events.resource import EVENTS
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.body import read_body, read_json, validate
from supportdesk.jsonapi.conditional import Representation
from supportdesk.jsonapi.document import (
    Related,
    no_content,
    render_all,
    render_data,
    render_page,
)
from supportdesk.jsonapi.query import parse_id
from supportdesk.jsonapi.requests import database, list_query, resource_query, settings
from supportdesk.routing import admin_router
from supportdesk.ticket_attachments.storage import storage
from supportdesk.ticket_messages.resource import TICKET_MESSAGES
from supportdesk.tickets import service
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.schemas import MAX_BULK, BulkUpdate, Merge, TicketCreate, TicketUpdate
from supportdesk.users.resource import USERS

router = admin_router("tickets")

# Every type a tickets document can hold, for `fields[...]`.
SPECS = {s.type: s for s in (TICKETS, USERS, TICKET_MESSAGES)}
# what a GET of one ticket shows: its ETag, and the check of conditional writes
TICKET = Representation(TICKETS, SPECS, service.load_related)
_ID = "/tickets/{ticket_id}"
_LIST = {"type": "array", "items": {"type": "string"}}
_SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"const": "ticket_settings"},
        "id": {"const": "current"},
        "attributes": {
            "type": "object",
            "properties": {"statuses": _LIST, "priorities": _LIST, "departments": _LIST},
        },
    },
}


@router.get(
    "/tickets",
    summary="List tickets",
    responses={**openapi.many(TICKETS, SPECS), **openapi.errors(400, 422)},
    openapi_extra={"parameters": openapi.list_parameters(TICKETS, SPECS)},
)
async def list_tickets(request: Request) -> Response:
    key = await authorize(request, "tickets.view")
    query = list_query(request, key, TICKETS, SPECS)
    rows, total, related = await service.list_tickets(database(request), settings(request), query)
    return render_page(TICKETS, rows, total, related, query, request)


@router.post(
    "/tickets",
    summary="Create a ticket",
    status_code=201,
    responses={
        **openapi.one(TICKETS, SPECS, 201, etag=True),
        **openapi.errors(400, 413, 415, 422),
    },
    openapi_extra={
        **openapi.body(TicketCreate, "The new ticket; creates no message."),
        "parameters": openapi.resource_parameters(TICKETS, SPECS),
    },
)
async def create_ticket(request: Request) -> Response:
    key = await authorize(request, "tickets.create")
    query = resource_query(request, key, TICKETS, SPECS)
    config = settings(request)
    data = await read_body(
        request, TicketCreate, config.max_body_bytes, service.validation_context(config)
    )
    row, related = await service.create_ticket(
        database(request), config, api_key(key.id), data, query
    )
    location = str(request.url_for("get_ticket", ticket_id=str(row["id"])))
    return TICKET.respond(request, row, related, query, status=201, location=location)


@router.get(
    _ID,
    summary="Retrieve a ticket",
    responses={
        **openapi.one(TICKETS, SPECS, etag=True),
        **openapi.not_modified(),
        **openapi.errors(400, 404, 412),
    },
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(TICKETS, SPECS),
            *openapi.conditional_parameters(read=True),
        ]
    },
)
async def get_ticket(request: Request, ticket_id: str) -> Response:
    key = await authorize(request, "tickets.view")
    query = resource_query(request, key, TICKETS, SPECS)
    row, related = await service.get_ticket(
        database(request), parse_id(ticket_id, "tickets"), query
    )
    return TICKET.respond(request, row, related, query)


@router.patch(
    "/tickets",
    summary=f"Update up to {MAX_BULK} tickets at once, all or nothing",
    description=(
        "`ids` (1 to 500 ticket ids) and `changes` (the fields of a ticket update, by the same "
        "rules). Nothing is written unless every ticket exists and every value is valid: a "
        "missing ticket is 422 on `ids` naming it, a bad value 422 on `changes.<field>`. "
        "One `ticket.updated` event per ticket that changed. Answers with the tickets in the "
        "order of `ids`. Needs tickets.update."
    ),
    responses={**openapi.all_of(TICKETS, SPECS), **openapi.errors(400, 413, 415, 422)},
    openapi_extra={
        **openapi.body(BulkUpdate, "The tickets and the changes to make to each."),
        "parameters": openapi.resource_parameters(TICKETS, SPECS),
    },
)
async def bulk_update_tickets(request: Request) -> Response:
    key = await authorize(request, "tickets.update")
    query = resource_query(request, key, TICKETS, SPECS)
    config = settings(request)
    context = service.validation_context(config)
    bulk = validate(BulkUpdate, await read_json(request, config.max_body_bytes), context)
    try:
        changes = validate(TicketUpdate, bulk.changes, context)
    except ValidationFailed as exc:
        raise ValidationFailed(
            {f"changes.{field}": messages for field, messages in exc.errors.items()}
        ) from None
    if not changes.model_fields_set:
        raise ValidationFailed.field(
            "changes", f"The changes field must name at least one of: {_FIELDS}."
        )
    rows, related = await service.bulk_update(
        database(request), config, api_key(key.id), bulk.ids, changes, query
    )
    return render_all(TICKETS, rows, related, query)


_FIELDS = ", ".join(TicketUpdate.model_fields)
_UPDATE: dict[str, Any] = {
    "summary": "Update a ticket (only the fields sent change)",
    "responses": {
        **openapi.one(TICKETS, SPECS, etag=True),
        **openapi.errors(400, 404, 412, 413, 415, 422),
    },
    "openapi_extra": {
        **openapi.body(TicketUpdate, "The fields to change; `assigned_to: null` unassigns."),
        "parameters": [
            *openapi.resource_parameters(TICKETS, SPECS),
            *openapi.conditional_parameters(read=False),
        ],
    },
}


@router.put(_ID, operation_id="update_ticket_put", **_UPDATE)
@router.patch(_ID, operation_id="update_ticket_patch", **_UPDATE)
async def update_ticket(request: Request, ticket_id: str) -> Response:
    key = await authorize(request, "tickets.update")
    query = resource_query(request, key, TICKETS, SPECS)
    config = settings(request)
    found = parse_id(ticket_id, "tickets")
    data = await read_body(
        request, TicketUpdate, config.max_body_bytes, service.validation_context(config)
    )
    check = TICKET.precondition(request, query)
    row, related = await service.update_ticket(
        database(request), config, api_key(key.id), found, data, query, check
    )
    return TICKET.respond(request, row, related, query)


@router.delete(
    _ID,
    summary="Delete a ticket with its messages",
    status_code=204,
    response_class=Response,
    responses=openapi.errors(400, 404, 412),
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(TICKETS, SPECS),
            *openapi.conditional_parameters(read=False),
        ]
    },
)
async def delete_ticket(request: Request, ticket_id: str) -> Response:
    key = await authorize(request, "tickets.delete")
    found = parse_id(ticket_id, "tickets")
    check = TICKET.delete_precondition(request, key)
    await service.delete_ticket(database(request), storage(request), api_key(key.id), found, check)
    return no_content()


@router.post(
    f"{_ID}/merge",
    summary="Merge other tickets into this one",
    description=(
        "The sources' messages and attachments move to this ticket (keeping their times, so "
        "the thread stays in time order); each source is closed with `merged_into` set and an "
        "internal note signed by `user_id` (a staff user; default: this ticket's assignee). "
        "Merging a ticket into itself, into a ticket that was merged away, a source merged "
        "already or another customer's ticket is 422. Events: `ticket_message.updated` per "
        "moved message, `ticket.merged` "
        "and the note's `ticket_message.created` per source. Needs tickets.update."
    ),
    responses={**openapi.one(TICKETS, SPECS, etag=True), **openapi.errors(400, 404, 413, 415, 422)},
    openapi_extra={
        **openapi.body(Merge, "The tickets to merge into this one."),
        "parameters": openapi.resource_parameters(TICKETS, SPECS),
    },
)
async def merge_tickets(request: Request, ticket_id: str) -> Response:
    key = await authorize(request, "tickets.update")
    query = resource_query(request, key, TICKETS, SPECS)
    config = settings(request)
    found = parse_id(ticket_id, "tickets")
    data = await read_body(request, Merge, config.max_body_bytes)
    row, related = await service.merge(
        database(request), config, api_key(key.id), found, data, query
    )
    return TICKET.respond(request, row, related, query)


_HISTORY_SPECS = {EVENTS.type: EVENTS}


@router.get(
    f"{_ID}/history",
    summary="A ticket's events (its messages' and attachments' too), oldest first",
    responses={**openapi.many(EVENTS, _HISTORY_SPECS), **openapi.errors(400, 404, 422)},
    openapi_extra={"parameters": openapi.list_parameters(EVENTS, _HISTORY_SPECS)},
)
async def ticket_history(request: Request, ticket_id: str) -> Response:
    key = await authorize(request, "tickets.view")
    query = list_query(request, key, EVENTS, _HISTORY_SPECS)
    found = parse_id(ticket_id, "tickets")
    rows, total = await service.history(database(request), found, query)
    return render_page(EVENTS, rows, total, Related(), query, request)


@router.get(
    "/ticket-settings",
    summary="The configured statuses, priorities and departments",
    responses={**openapi.data(_SETTINGS_SCHEMA, "The ticket settings"), **openapi.errors()},
)
async def ticket_settings(request: Request) -> Response:
    await authorize(request, "tickets.view")
    return render_data("ticket_settings", "current", service.ticket_settings(settings(request)))
