"""/canned-replies: reusable answers with placeholders, and rendering one for a ticket."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from supportdesk.auth.guard import authorize
from supportdesk.auth.service import require
from supportdesk.canned_replies import placeholders, service
from supportdesk.canned_replies.resource import CANNED_REPLIES, CANNED_REPLY_RENDERS
from supportdesk.canned_replies.schemas import CannedReplyCreate, CannedReplyUpdate, RenderRequest
from supportdesk.events.log import api_key
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.body import read_body
from supportdesk.jsonapi.conditional import Representation
from supportdesk.jsonapi.document import Related, no_content, render_one, render_page
from supportdesk.jsonapi.query import parse_id
from supportdesk.jsonapi.requests import database, list_query, resource_query, settings
from supportdesk.queries import ResourceQuery
from supportdesk.routing import admin_router

router = admin_router("canned replies")

# Every type a canned replies document can hold, for `fields[...]`.
SPECS = {CANNED_REPLIES.type: CANNED_REPLIES}
_RENDER_SPECS = {CANNED_REPLY_RENDERS.type: CANNED_REPLY_RENDERS}
# a canned reply has no relationships: its ETag is its attributes'
CANNED_REPLY = Representation(CANNED_REPLIES, SPECS)
_ID = "/canned-replies/{canned_reply_id}"
_PLACEHOLDERS = placeholders.describe()


@router.get(
    "/canned-replies",
    summary="List canned replies",
    description="Needs `canned_replies.view`.",
    responses={**openapi.many(CANNED_REPLIES, SPECS), **openapi.errors(400, 422)},
    openapi_extra={"parameters": openapi.list_parameters(CANNED_REPLIES, SPECS)},
)
async def list_canned_replies(request: Request) -> Response:
    key = await authorize(request, "canned_replies.view")
    query = list_query(request, key, CANNED_REPLIES, SPECS)
    rows, total = await service.list_canned_replies(database(request), query)
    return render_page(CANNED_REPLIES, rows, total, Related(), query, request)


@router.post(
    "/canned-replies",
    summary="Create a canned reply",
    description=f"Needs `canned_replies.create`.\n\n{_PLACEHOLDERS}",
    status_code=201,
    responses={
        **openapi.one(CANNED_REPLIES, SPECS, 201, etag=True),
        **openapi.errors(400, 413, 415, 422),
    },
    openapi_extra={
        **openapi.body(
            CannedReplyCreate,
            "`name`, `body` (with placeholders), `department` (null: for every department)",
        ),
        "parameters": openapi.resource_parameters(CANNED_REPLIES, SPECS),
    },
)
async def create_canned_reply(request: Request) -> Response:
    key = await authorize(request, "canned_replies.create")
    query = resource_query(request, key, CANNED_REPLIES, SPECS)
    config = settings(request)
    data = await read_body(
        request, CannedReplyCreate, config.max_body_bytes, service.validation_context(config)
    )
    row = await service.create_canned_reply(database(request), api_key(key.id), data)
    location = str(request.url_for("get_canned_reply", canned_reply_id=str(row["id"])))
    return CANNED_REPLY.respond(request, row, Related(), query, status=201, location=location)


@router.get(
    _ID,
    summary="Retrieve a canned reply",
    description="Needs `canned_replies.view`.",
    responses={
        **openapi.one(CANNED_REPLIES, SPECS, etag=True),
        **openapi.not_modified(),
        **openapi.errors(400, 404, 412),
    },
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(CANNED_REPLIES, SPECS),
            *openapi.conditional_parameters(read=True),
        ]
    },
)
async def get_canned_reply(request: Request, canned_reply_id: str) -> Response:
    key = await authorize(request, "canned_replies.view")
    query = resource_query(request, key, CANNED_REPLIES, SPECS)
    row = await service.get_canned_reply(
        database(request), parse_id(canned_reply_id, "canned_replies")
    )
    return CANNED_REPLY.respond(request, row, Related(), query)


_UPDATE: dict[str, Any] = {
    "summary": "Update a canned reply (only the fields sent change)",
    "description": f"Needs `canned_replies.update`.\n\n{_PLACEHOLDERS}",
    "responses": {
        **openapi.one(CANNED_REPLIES, SPECS, etag=True),
        **openapi.errors(400, 404, 412, 413, 415, 422),
    },
    "openapi_extra": {
        **openapi.body(
            CannedReplyUpdate, "The fields to change; `department: null` fits every department."
        ),
        "parameters": [
            *openapi.resource_parameters(CANNED_REPLIES, SPECS),
            *openapi.conditional_parameters(read=False),
        ],
    },
}


@router.put(_ID, operation_id="update_canned_reply_put", **_UPDATE)
@router.patch(_ID, operation_id="update_canned_reply_patch", **_UPDATE)
async def update_canned_reply(request: Request, canned_reply_id: str) -> Response:
    key = await authorize(request, "canned_replies.update")
    query = resource_query(request, key, CANNED_REPLIES, SPECS)
    config = settings(request)
    found = parse_id(canned_reply_id, "canned_replies")
    data = await read_body(
        request, CannedReplyUpdate, config.max_body_bytes, service.validation_context(config)
    )
    check = CANNED_REPLY.precondition(request, query)
    row = await service.update_canned_reply(database(request), api_key(key.id), found, data, check)
    return CANNED_REPLY.respond(request, row, Related(), query)


@router.delete(
    _ID,
    summary="Delete a canned reply",
    description="Needs `canned_replies.delete`.",
    status_code=204,
    response_class=Response,
    responses=openapi.errors(404, 412),
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(CANNED_REPLIES, SPECS),
            *openapi.conditional_parameters(read=False),
        ]
    },
)
async def delete_canned_reply(request: Request, canned_reply_id: str) -> Response:
    key = await authorize(request, "canned_replies.delete")
    found = parse_id(canned_reply_id, "canned_replies")
    check = CANNED_REPLY.delete_precondition(request, key)
    await service.delete_canned_reply(database(request), api_key(key.id), found, check)
    return no_content()


@router.post(
    f"{_ID}/render",
    summary="Fill a canned reply in for a ticket",
    description=(
        "Needs `canned_replies.view` and `tickets.view`. Writes nothing. The agent is the staff "
        "user `user_id` when given (422 if not staff), else the ticket's assignee; with no "
        "agent the agent placeholders are empty, as is any null attribute. A reply with a "
        "department renders only for that department's tickets (422 otherwise). Values are "
        f"inserted as they stand, never expanded again.\n\n{_PLACEHOLDERS}"
    ),
    responses={
        **openapi.one(CANNED_REPLY_RENDERS, _RENDER_SPECS),
        **openapi.errors(400, 404, 413, 415, 422),
    },
    openapi_extra=openapi.body(RenderRequest, "`ticket_id`, and optionally `user_id` (staff)"),
)
async def render_canned_reply(request: Request, canned_reply_id: str) -> Response:
    key = await authorize(request, "canned_replies.view")
    require(key, "tickets.view")
    config = settings(request)
    found = parse_id(canned_reply_id, "canned_replies")
    data = await read_body(request, RenderRequest, config.max_body_bytes)
    row = await service.render(database(request), found, data)
    return render_one(CANNED_REPLY_RENDERS, row, Related(), ResourceQuery())
