"""`routing.AdminAPI` serves the admin routes through `AdminDispatch`, without Starlette's
router: it must pick the route the router would for every path and method, leave the rest
(404, 405, other paths) to the app, and answer an endpoint's exceptions as Starlette's
exception and server-error middleware did."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, NoMatchFound

from supportdesk.errors import ResourceNotFound
from supportdesk.routing import PREFIX, AdminAPI, AdminDispatch, AdminRoute, admin_router
from tests.api.test_errors import assert_error

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _paths(app: FastAPI) -> list[str]:
    """Every admin route's path with its parameters filled in, and paths near them that no
    route takes."""
    paths = {PREFIX, f"{PREFIX}/", f"{PREFIX}x/tickets", f"{PREFIX}/nothing", "/health"}
    for route in app.router.routes:
        if isinstance(route, AdminRoute):
            path = re.sub(r"\{[^}]+\}", "5", route.path)
            paths |= {path, f"{path}/", f"{path}/extra", path.replace("/5", "/abc")}
    return sorted(paths)


def _router_choice(app: FastAPI, scope: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The route Starlette's router serves: the first full match."""
    for route in app.router.routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            return route, child.get("path_params", {})
    return None


def test_dispatch_picks_the_route_the_router_would(app: FastAPI) -> None:
    dispatch = AdminDispatch(app.router.routes, app.exception_handlers)
    served = 0
    for path in _paths(app):
        for method in METHODS:
            scope: dict[str, Any] = {"type": "http", "path": path, "method": method}
            theirs = _router_choice(app, scope)
            if not dispatch.match(scope):
                # left to the app: no admin route matches it fully
                assert theirs is None or not isinstance(theirs[0], AdminRoute), (method, path)
            else:
                served += 1
                assert theirs is not None and scope["route"] is theirs[0], (method, path)
                assert scope["path_params"] == theirs[1], (method, path)
                assert scope["endpoint"] is theirs[0].endpoint
    assert served > 40  # every admin operation was among them


def test_a_route_it_cannot_dispatch_is_refused(app: FastAPI) -> None:
    router = admin_router("test")

    @router.get("/{anything:path}")
    async def anything(request: Request, anything: str) -> Response:
        return Response()

    with pytest.raises(TypeError, match="cannot be dispatched"):
        AdminDispatch(router.routes, {})


async def test_endpoint_errors_are_answered_as_before(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    router = admin_router("test")

    @router.get("/faults/{kind}")
    async def fault(request: Request, kind: str) -> Response:
        if kind == "missing":
            raise ResourceNotFound("tickets", 5)
        if kind == "teapot":
            raise HTTPException(418, "short and stout")
        raise RuntimeError("kaboom")

    # before the first request, which builds the middleware stack and the dispatch table
    app.router.routes.extend(router.routes)
    assert_error(await client.get("/faults/missing"), 404, "not_found")
    assert_error(await client.get("/faults/teapot"), 418, "error")
    with caplog.at_level(logging.ERROR):
        response = await client.get("/faults/other")
    body = assert_error(response, 500, "internal")
    assert "kaboom" not in response.text
    assert any(str(body["request_id"]) in record.getMessage() for record in caplog.records)
    # served from the top of the call: FastAPI's own stack is not entered
    assert isinstance(app, AdminAPI)

    async def unused(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"{scope['path']} went through FastAPI's middleware stack")

    app.middleware_stack = unused
    assert_error(await client.get("/faults/missing"), 404, "not_found")
    assert_error(await client.get("/faults/other"), 500, "internal")


async def test_urls_by_name_are_the_routers(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await client.get("/tickets/1")).status_code in (200, 404)  # the app is built
    checked = 0
    for route in app.router.routes:
        if isinstance(route, AdminRoute):
            params = dict.fromkeys(route.param_convertors, "5")
            ours = app.url_path_for(route.name, **params)
            assert ours == app.router.url_path_for(route.name, **params), route.name
            checked += 1
    assert checked > 40
    assert app.url_path_for("health") == "/health"
    with pytest.raises(NoMatchFound):
        app.url_path_for("get_ticket", nothing="5")
