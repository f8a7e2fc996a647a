"""/webhooks: endpoints, their secrets, test events and the delivery log (`webhooks.manage`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from supportdesk.auth.guard import authorize
from supportdesk.events.log import api_key
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.body import read_body
from supportdesk.jsonapi.conditional import Representation
from supportdesk.jsonapi.document import Related, no_content, render_one, render_page
from supportdesk.jsonapi.query import parse_id
from supportdesk.jsonapi.requests import database, list_query, resource_query, settings
from supportdesk.queries import ResourceQuery
from supportdesk.routing import admin_router
from supportdesk.webhooks import service
from supportdesk.webhooks.resource import WEBHOOK_DELIVERIES, WEBHOOKS, WEBHOOKS_WITH_SECRET
from supportdesk.webhooks.schemas import WebhookCreate, WebhookUpdate

router = admin_router("webhooks")

PERMISSION = "webhooks.manage"
SPECS = {WEBHOOKS.type: WEBHOOKS}
_SECRET_SPECS = {WEBHOOKS.type: WEBHOOKS_WITH_SECRET}
# what a GET of one endpoint shows (never its secret): its ETag, and the check of conditional
# writes
WEBHOOK = Representation(WEBHOOKS, SPECS)
_DELIVERY_SPECS = {WEBHOOK_DELIVERIES.type: WEBHOOK_DELIVERIES}
_ID = "/webhooks/{webhook_id}"
_DELIVERY = f"{_ID}/deliveries/{{delivery_id}}"


@router.get(
    "/webhooks",
    summary="List webhook endpoints",
    responses={**openapi.many(WEBHOOKS, SPECS), **openapi.errors(400, 422)},
    openapi_extra={"parameters": openapi.list_parameters(WEBHOOKS, SPECS)},
)
async def list_webhooks(request: Request) -> Response:
    key = await authorize(request, PERMISSION)
    query = list_query(request, key, WEBHOOKS, SPECS)
    rows, total = await service.list_webhooks(database(request), query)
    return render_page(WEBHOOKS, rows, total, Related(), query, request)


@router.post(
    "/webhooks",
    summary="Create a webhook endpoint; the answer shows its signing secret, this once",
    status_code=201,
    responses={
        **openapi.one(WEBHOOKS_WITH_SECRET, _SECRET_SPECS, 201, etag=True),
        **openapi.errors(400, 413, 415, 422),
    },
    openapi_extra=openapi.body(
        WebhookCreate,
        "`url` (http or https, a public address), `events` (`*`, `ticket.*`, `user.created`, "
        "...), `description`, `enabled`",
    ),
)
async def create_webhook(request: Request) -> Response:
    await authorize(request, PERMISSION)
    config = settings(request)
    data = await read_body(request, WebhookCreate, config.max_body_bytes)
    row = await service.create_webhook(database(request), config, data)
    location = str(request.url_for("get_webhook", webhook_id=str(row["id"])))
    response = render_one(
        WEBHOOKS_WITH_SECRET, row, Related(), ResourceQuery(), status=201, location=location
    )
    # the ETag of the endpoint as a GET shows it, without the secret this answer shows
    response.headers["ETag"] = WEBHOOK.tag(row, Related(), ResourceQuery())
    return response


@router.get(
    _ID,
    summary="Retrieve a webhook endpoint",
    responses={
        **openapi.one(WEBHOOKS, SPECS, etag=True),
        **openapi.not_modified(),
        **openapi.errors(400, 404, 412),
    },
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(WEBHOOKS, SPECS),
            *openapi.conditional_parameters(read=True),
        ]
    },
)
async def get_webhook(request: Request, webhook_id: str) -> Response:
    key = await authorize(request, PERMISSION)
    query = resource_query(request, key, WEBHOOKS, SPECS)
    row = await service.get_webhook(database(request), parse_id(webhook_id, "webhooks"))
    return WEBHOOK.respond(request, row, Related(), query)


_UPDATE: dict[str, Any] = {
    "summary": "Update a webhook endpoint (only the fields sent change)",
    "responses": {
        **openapi.one(WEBHOOKS, SPECS, etag=True),
        **openapi.errors(400, 404, 412, 413, 415, 422),
    },
    "openapi_extra": {
        **openapi.body(
            WebhookUpdate, "The fields to change; `enabled: true` resumes a disabled endpoint."
        ),
        "parameters": [
            *openapi.resource_parameters(WEBHOOKS, SPECS),
            *openapi.conditional_parameters(read=False),
        ],
    },
}


@router.put(_ID, operation_id="update_webhook_put", **_UPDATE)
@router.patch(_ID, operation_id="update_webhook_patch", **_UPDATE)
async def update_webhook(request: Request, webhook_id: str) -> Response:
    key = await authorize(request, PERMISSION)
    query = resource_query(request, key, WEBHOOKS, SPECS)
    found = parse_id(webhook_id, "webhooks")
    config = settings(request)
    data = await read_body(request, WebhookUpdate, config.max_body_bytes)
    check = WEBHOOK.precondition(request, query)
    row = await service.update_webhook(database(request), config, found, data, check)
    return WEBHOOK.respond(request, row, Related(), query)


@router.delete(
    _ID,
    summary="Delete a webhook endpoint and its delivery log",
    status_code=204,
    response_class=Response,
    responses=openapi.errors(400, 404, 412),
    openapi_extra={
        "parameters": [
            *openapi.resource_parameters(WEBHOOKS, SPECS),
            *openapi.conditional_parameters(read=False),
        ]
    },
)
async def delete_webhook(request: Request, webhook_id: str) -> Response:
    key = await authorize(request, PERMISSION)
    found = parse_id(webhook_id, "webhooks")
    check = WEBHOOK.delete_precondition(request, key)
    await service.delete_webhook(database(request), found, check)
    return no_content()


@router.post(
    f"{_ID}/rotate-secret",
    summary="Replace the signing secret; the old one also signs for 24 hours",
    responses={**openapi.one(WEBHOOKS_WITH_SECRET, _SECRET_SPECS), **openapi.errors(404)},
)
async def rotate_secret(request: Request, webhook_id: str) -> Response:
    await authorize(request, PERMISSION)
    found = parse_id(webhook_id, "webhooks")
    row = await service.rotate_secret(database(request), found)
    return render_one(WEBHOOKS_WITH_SECRET, row, Related(), ResourceQuery())


@router.post(
    f"{_ID}/test",
    summary="Send a `webhook.test` event to this endpoint (409 while it is disabled)",
    status_code=202,
    responses={**openapi.one(WEBHOOK_DELIVERIES, _DELIVERY_SPECS, 202), **openapi.errors(404, 409)},
)
async def test_webhook(request: Request, webhook_id: str) -> Response:
    key = await authorize(request, PERMISSION)
    found = parse_id(webhook_id, "webhooks")
    row = await service.send_test(database(request), api_key(key.id), found)
    return render_one(WEBHOOK_DELIVERIES, row, Related(), ResourceQuery(), status=202)


@router.get(
    f"{_ID}/deliveries",
    summary="Every delivery attempt to this endpoint, newest first",
    responses={
        **openapi.many(WEBHOOK_DELIVERIES, _DELIVERY_SPECS),
        **openapi.errors(400, 404, 422),
    },
    openapi_extra={"parameters": openapi.list_parameters(WEBHOOK_DELIVERIES, _DELIVERY_SPECS)},
)
async def list_deliveries(request: Request, webhook_id: str) -> Response:
    key = await authorize(request, PERMISSION)
    query = list_query(request, key, WEBHOOK_DELIVERIES, _DELIVERY_SPECS)
    found = parse_id(webhook_id, "webhooks")
    rows, total = await service.list_deliveries(database(request), found, query)
    return render_page(WEBHOOK_DELIVERIES, rows, total, Related(), query, request)


@router.post(
    f"{_DELIVERY}/retry",
    summary="Make a delivery due now (409 while the endpoint is disabled)",
    status_code=202,
    responses={**openapi.one(WEBHOOK_DELIVERIES, _DELIVERY_SPECS, 202), **openapi.errors(404, 409)},
)
async def retry_delivery(request: Request, webhook_id: str, delivery_id: str) -> Response:
    await authorize(request, PERMISSION)
    found = parse_id(webhook_id, "webhooks")
    attempt = parse_id(delivery_id, "webhook_deliveries")
    row = await service.retry_delivery(database(request), found, attempt)
    return render_one(WEBHOOK_DELIVERIES, row, Related(), ResourceQuery(), status=202)
