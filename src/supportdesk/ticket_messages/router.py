"""/ticket-messages."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from supportdesk.auth.guard import authorize
from supportdesk.config import Settings
from supportdesk.errors import UnsupportedMediaType
from supportdesk.events.log import api_key
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.body import is_multipart, read_body, read_form, validate
from supportdesk.jsonapi.conditional import Representation
from supportdesk.jsonapi.document import no_content, render_one, render_page
from supportdesk.jsonapi.query import parse_id
from supportdesk.jsonapi.requests import (
    database,
    list_query,
    resource_query,
    settings,
)
from supportdesk.queries import ResourceQuery
from supportdesk.routing import admin_router
from supportdesk.ticket_attachments.resource import TICKET_ATTACHMENTS
from supportdesk.ticket_attachments.service import FILE_FIELDS
from supportdesk.ticket_attachments.storage import storage
from supportdesk.ticket_messages import service
from supportdesk.ticket_messages.resource import TICKET_MESSAGES
from supportdesk.ticket_messages.schemas import MessageCreate, MessageUpdate
from supportdesk.tickets.resource import TICKETS
from supportdesk.users.resource import USERS

router = admin_router("ticket messages")

SPECS = {s.type: s for s in (TICKET_MESSAGES, TICKETS, USERS, TICKET_ATTACHMENTS)}
# what a GET of one message shows: its ETag, and the check of conditional writes
MESSAGE = Representation(TICKET_MESSAGES, SPECS, service.load_related)
_ID = "/ticket-messages/{message_id}"


def _context(config: Settings) -> dict[str, Any]:
    return {"max_message_length": config.max_message_length}


async def _files(request: Request, config: Settings) -> tuple[dict[str, Any], list[UploadFile]]:
    """The text fields and files of a multipart body (413 past the upload limits)."""
    form = await read_form(request, config.max_upload_bytes, config.max_attachments, FILE_FIELDS)
    return dict(form.fields), form.files


@router.get(
    "/ticket-messages",
    summary="List ticket messages",
    responses={**openapi.many(TICKET_MESSAGES, SPECS), **openapi.errors(400, 422)},
    openapi_extra={"parameters": openapi.list_parameters(TICKET_MESSAGES, SPECS)},
)
async def list_messages(request: Request) -> Response:
    key = await authorize(request, "ticket_messages.view")
    query = list_query(request, key, TICKET_MESSAGES, SPECS)
    rows, total, related = await service.list_messages(database(request), query)
    return render_page(TICKET_MESSAGES, rows, total, related, query, request)


@router.post(
    "/ticket-messages",
    summary="Add a message to a ticket (JSON, or multipart with attachments[] files)",
    status_code=201,
    responses={
        **openapi.one(TICKET_MESSAGES, SPECS, 201, etag=True),
        **openapi.errors(400, 413, 415, 422),
    },
    openapi_extra={
        **openapi.body(
            MessageCreate,
            "The message. Sets the ticket's status: the owner's message -> customer-reply, "
            "anyone else's -> replied; an internal note (`internal: true`, written by a staff "
            "user) leaves it.",
            multipart=openapi.upload_form(MessageCreate, FILE_FIELDS[0]),
        ),
        "parameters": openapi.resource_parameters(TICKET_MESSAGES, SPECS),
    },
)
async def create_message(request: Request) -> Response:
    key = await authorize(request, "ticket_messages.create")
    query = resource_query(request, key, TICKET_MESSAGES, SPECS)
    config = settings(request)
    files: list[UploadFile] = []
    if is_multipart(request):
        fields, files = await _files(request, config)
        data = validate(MessageCreate, fields, {**_context(config), "form": True})
    else:
        data = await read_body(request, MessageCreate, config.max_body_bytes, _context(config))
    row, related = await service.create_message(
        database(request), config, storage(request), api_key(key.id), data, files, query
    )
    location = str(request.url_for("get_message", message_id=str(row["id"])))
    return MESSAGE.respond(request, row, related, query, status=201, location=location)


@router.get(
    _ID,
    summary="Retrieve a ticket message",
    responses={
        **openapi.one(TICKET_MESSAGES, SPECS, etag=True),
        **openapi.not_modified(),
        **openapi.errors(400, 404, 412),
    },
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(TICKET_MESSAGES, SPECS),
            *openapi.conditional_parameters(read=True),
        ]
    },
)
async def get_message(request: Request, message_id: str) -> Response:
    key = await authorize(request, "ticket_messages.view")
    query = resource_query(request, key, TICKET_MESSAGES, SPECS)
    found = parse_id(message_id, "ticket_messages")
    row, related = await service.get_message(database(request), found, query)
    return MESSAGE.respond(request, row, related, query)


_UPDATE: dict[str, Any] = {
    "summary": "Edit a message's text, or make it an internal note or a public message",
    "responses": {
        **openapi.one(TICKET_MESSAGES, SPECS, etag=True),
        **openapi.errors(400, 404, 412, 413, 415, 422),
    },
    "openapi_extra": {
        **openapi.body(
            MessageUpdate, "The new text or `internal`; the ticket's status does not change."
        ),
        "parameters": [
            *openapi.resource_parameters(TICKET_MESSAGES, SPECS),
            *openapi.conditional_parameters(read=False),
        ],
    },
}


@router.put(_ID, operation_id="update_message_put", **_UPDATE)
@router.patch(_ID, operation_id="update_message_patch", **_UPDATE)
async def update_message(request: Request, message_id: str) -> Response:
    key = await authorize(request, "ticket_messages.update")
    query = resource_query(request, key, TICKET_MESSAGES, SPECS)
    config = settings(request)
    found = parse_id(message_id, "ticket_messages")
    data = await read_body(request, MessageUpdate, config.max_body_bytes, _context(config))
    check = MESSAGE.precondition(request, query)
    row, related = await service.update_message(
        database(request), api_key(key.id), found, data, query, check
    )
    return MESSAGE.respond(request, row, related, query)


@router.delete(
    _ID,
    summary="Delete a message with its attachments",
    status_code=204,
    response_class=Response,
    responses=openapi.errors(400, 404, 412),
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(TICKET_MESSAGES, SPECS),
            *openapi.conditional_parameters(read=False),
        ]
    },
)
async def delete_message(request: Request, message_id: str) -> Response:
    key = await authorize(request, "ticket_messages.delete")
    found = parse_id(message_id, "ticket_messages")
    check = MESSAGE.delete_precondition(request, key)
    await service.delete_message(database(request), storage(request), api_key(key.id), found, check)
    return no_content()


@router.post(
    f"{_ID}/attachments",
    summary="Add files to a message (multipart, attachments[] files)",
    status_code=201,
    responses={
        **openapi.one(TICKET_MESSAGES, SPECS, 201),
        **openapi.errors(400, 404, 413, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": openapi.upload_form(None, FILE_FIELDS[0])},
        }
    },
)
async def add_attachments(request: Request, message_id: str) -> Response:
    key = await authorize(request, "ticket_messages.create")
    config = settings(request)
    found = parse_id(message_id, "ticket_messages")
    if not is_multipart(request):
        raise UnsupportedMediaType("Send the files as multipart/form-data.")
    _fields, files = await _files(request, config)
    row, related = await service.add_attachments(
        database(request), config, storage(request), api_key(key.id), found, files
    )
    location = str(request.url_for("get_message", message_id=str(row["id"])))
    query = ResourceQuery(include=("attachments",))
    return render_one(TICKET_MESSAGES, row, related, query, status=201, location=location)
