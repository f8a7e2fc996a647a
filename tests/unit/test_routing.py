"""The admin routes sit on the app itself, not behind included-router nodes that every request
would walk, and call their endpoints directly (`supportdesk.routing`)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from supportdesk import api
from supportdesk.app import create_app
from supportdesk.config import Settings
from supportdesk.routing import PREFIX, admin_router


def test_admin_routes_are_registered_flat() -> None:
    app = create_app(Settings(database_url="sqlite:///unused.db"))
    # no included-router nodes: routes, and the one mount of /docs's static files
    others = [route for route in app.router.routes if not isinstance(route, Route)]
    assert [(type(route), route.path) for route in others] == [(Mount, "/docs/assets")]
    admin = [r for r in app.router.routes if isinstance(r, APIRoute) and r.path.startswith(PREFIX)]
    declared = [route for router in api.ROUTERS for route in router.routes]
    assert admin == declared
    # 35 + bulk update and merge + canned replies: list, create, get, put, patch, delete, render
    assert len(declared) == 44


def test_admin_routes_take_the_request_and_their_path_parameters_only() -> None:
    router = admin_router("tickets")

    async def extra(request: Request, ticket_id: str, page: int) -> Response:
        return Response()

    async def missing(request: Request) -> Response:
        return Response()

    for endpoint in (extra, missing):
        with pytest.raises(TypeError, match="must take the request, then the path parameters"):
            router.get("/tickets/{ticket_id}")(endpoint)


async def test_admin_routes_call_the_endpoint_with_the_path_parameters() -> None:
    router = admin_router("tickets")
    seen: list[tuple[str, str]] = []

    @router.get("/tickets/{ticket_id}/messages/{message_id}")
    async def both(request: Request, message_id: str, ticket_id: str) -> Response:
        seen.append((ticket_id, message_id))
        return Response(b"{}", status_code=201)

    app = FastAPI()
    app.router.routes.extend(router.routes)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(f"{PREFIX}/tickets/7/messages/x9")
    assert (response.status_code, seen) == (201, [("7", "x9")])
