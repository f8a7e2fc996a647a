"""/users and /roles."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from supportdesk.auth.guard import authorize
from supportdesk.errors import BadQuery
from supportdesk.events.log import api_key
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.body import read_body
from supportdesk.jsonapi.conditional import Representation
from supportdesk.jsonapi.document import no_content, render_list, render_page
from supportdesk.jsonapi.query import parse_id
from supportdesk.jsonapi.requests import database, list_query, resource_query, settings
from supportdesk.routing import admin_router
from supportdesk.ticket_attachments.storage import storage
from supportdesk.tickets.resource import TICKETS
from supportdesk.users import service
from supportdesk.users.resource import ROLES, USERS
from supportdesk.users.schemas import UserCreate, UserUpdate

router = admin_router("users")

SPECS = {s.type: s for s in (USERS, TICKETS, ROLES)}
# what a GET of one user shows: its ETag, and the check of conditional writes
USER = Representation(USERS, SPECS, service.load_related)
_ID = "/users/{user_id}"


@router.get(
    "/users",
    summary="List users",
    responses={**openapi.many(USERS, SPECS), **openapi.errors(400, 422)},
    openapi_extra={"parameters": openapi.list_parameters(USERS, SPECS)},
)
async def list_users(request: Request) -> Response:
    key = await authorize(request, "users.view")
    query = list_query(request, key, USERS, SPECS)
    rows, total, related = await service.list_users(database(request), query)
    return render_page(USERS, rows, total, related, query, request)


@router.post(
    "/users",
    summary="Create a user",
    status_code=201,
    responses={**openapi.one(USERS, SPECS, 201, etag=True), **openapi.errors(400, 413, 415, 422)},
    openapi_extra={
        **openapi.body(UserCreate, "The new user; `role_id` makes them staff."),
        "parameters": openapi.resource_parameters(USERS, SPECS),
    },
)
async def create_user(request: Request) -> Response:
    key = await authorize(request, "users.create")
    query = resource_query(request, key, USERS, SPECS)
    data = await read_body(request, UserCreate, settings(request).max_body_bytes)
    row, related = await service.create_user(database(request), api_key(key.id), data, query)
    location = str(request.url_for("get_user", user_id=str(row["id"])))
    return USER.respond(request, row, related, query, status=201, location=location)


@router.get(
    _ID,
    summary="Retrieve a user",
    responses={
        **openapi.one(USERS, SPECS, etag=True),
        **openapi.not_modified(),
        **openapi.errors(400, 404, 412),
    },
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(USERS, SPECS),
            *openapi.conditional_parameters(read=True),
        ]
    },
)
async def get_user(request: Request, user_id: str) -> Response:
    key = await authorize(request, "users.view")
    query = resource_query(request, key, USERS, SPECS)
    row, related = await service.get_user(database(request), parse_id(user_id, "users"), query)
    return USER.respond(request, row, related, query)


_UPDATE: dict[str, Any] = {
    "summary": "Update a user (only the fields sent change)",
    "responses": {
        **openapi.one(USERS, SPECS, etag=True),
        **openapi.errors(400, 404, 412, 413, 415, 422),
    },
    "openapi_extra": {
        **openapi.body(UserUpdate, "The fields to change."),
        "parameters": [
            *openapi.resource_parameters(USERS, SPECS),
            *openapi.conditional_parameters(read=False),
        ],
    },
}


@router.put(_ID, operation_id="update_user_put", **_UPDATE)
@router.patch(_ID, operation_id="update_user_patch", **_UPDATE)
async def update_user(request: Request, user_id: str) -> Response:
    key = await authorize(request, "users.update")
    query = resource_query(request, key, USERS, SPECS)
    found = parse_id(user_id, "users")
    data = await read_body(request, UserUpdate, settings(request).max_body_bytes)
    check = USER.precondition(request, query)
    row, related = await service.update_user(
        database(request), api_key(key.id), found, data, query, check
    )
    return USER.respond(request, row, related, query)


def _force(request: Request) -> bool:
    value = request.query_params.get("force", "false").strip().lower()
    if value not in ("true", "1", "false", "0", ""):
        raise BadQuery("The force parameter must be true or false.")
    return value in ("true", "1")


@router.delete(
    _ID,
    summary="Delete a user (409 while they own tickets, unless ?force=true)",
    status_code=204,
    response_class=Response,
    responses=openapi.errors(400, 404, 409, 412),
    openapi_extra={
        "parameters": [
            {
                "name": "force",
                "in": "query",
                "required": False,
                "description": "Also delete the user's tickets and messages",
                "schema": {"type": "boolean", "default": False},
            },
            *openapi.resource_parameters(USERS, SPECS),
            *openapi.conditional_parameters(read=False),
        ]
    },
)
async def delete_user(request: Request, user_id: str) -> Response:
    key = await authorize(request, "users.delete")
    force = _force(request)
    found = parse_id(user_id, "users")
    check = USER.delete_precondition(request, key)
    await service.delete_user(
        database(request), storage(request), api_key(key.id), found, force, check
    )
    return no_content()


@router.get(
    "/roles",
    summary="List roles",
    responses={
        **openapi.data({"type": "array", "items": openapi.resource_schema(ROLES)}, "Every role"),
        **openapi.errors(),
    },
)
async def list_roles(request: Request) -> Response:
    await authorize(request, "users.view")
    return render_list(ROLES, await service.list_roles(database(request)))
