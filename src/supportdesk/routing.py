"""Where resource routes are declared: `admin_router(tag)` puts them under /api/v1/admin, as
`AdminRoute`s.

Two costs of FastAPI's generic machinery are kept off every request here (bench/README.md,
change 8, measured with callgrind on `GET /tickets/{id}?include=messages`):

- `api.install(app)` adds the routes of every admin router to the app itself instead of
  `include_router`: since FastAPI 0.137 an included router stays a node of the route tree that
  every request walks (route-tree version checks, per-branch contexts, scope bookkeeping).
- `AdminAPI` (the app) serves an admin request from the top of the ASGI call: one dictionary
  lookup (`AdminDispatch`) finds the few routes that can match, and the request goes through
  Starlette's `ServerErrorMiddleware` and our own middleware to the endpoint, called with the
  exception handlers applied as Starlette applies them. FastAPI's and Starlette's entry
  points, FastAPI's telemetry and body-limit layers (both idle here), Starlette's exception
  middleware, FastAPI's exit stacks (no dependency of ours needs them) and the router, which
  tried every route's pattern in turn, are left out. Every other request (the console and
  portal, /health, /docs, a 404 or 405 under the prefix) takes FastAPI's whole way.
- `AdminRoute` calls its endpoint with the request and the path parameters. Our endpoints read
  their query, body and headers themselves (`jsonapi/`, `auth.guard`), so FastAPI's per-request
  parameter solving (a `Response` built, query, headers and cookies parsed and matched against
  no declared parameter) did nothing for them. FastAPI still builds the route's dependant, from
  which the OpenAPI document is generated, and the endpoint signature is checked when the route
  is declared, so a parameter FastAPI would have had to solve cannot slip in unnoticed.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor, StringConvertor
from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, NoMatchFound, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/api/v1/admin"


class AdminRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        names = [*inspect.signature(endpoint).parameters]
        _, _, path_params = compile_path(path)
        if names[:1] != ["request"] or sorted(names[1:]) != sorted(path_params):
            raise TypeError(
                f"{endpoint.__qualname__}{names} must take the request, then the path "
                f"parameters of {path!r} and nothing else"
            )
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request, **request.path_params)
            return response

        return handler


def admin_router(tag: str) -> APIRouter:
    return APIRouter(prefix=PREFIX, tags=[tag], route_class=AdminRoute)


Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def _first_segment(path: str) -> tuple[str, int]:
    """`/api/v1/admin/tickets/5` -> ("tickets", 3): the routes of a path's first segment and
    depth are the only ones that can match it."""
    segments = path[len(PREFIX) :].split("/")
    return segments[1] if len(segments) > 1 else "", len(segments)


# a route, the pattern of its path, and whether any of its parameters is not a plain string
_Candidate = tuple[AdminRoute, re.Pattern[str], bool]


class AdminDispatch:
    """Finds the `AdminRoute` of a request, and calls its endpoint (the innermost ASGI app of
    `AdminAPI`'s admin stack).

    `match` picks the route Starlette's router would: the first, in the app's order, whose
    path and method both match; a request that none matches (404, 405) is left to the app. A
    route's first segment after the prefix must be literal and no parameter may span segments,
    so that the segment and depth find every candidate; a route that breaks this is refused
    when the dispatch is built. `tests/api/test_dispatch.py` checks that both ways agree.
    """

    def __init__(self, routes: list[BaseRoute], handlers: dict[Any, Handler]):
        # by method, first segment and depth, in the app's order
        self._routes: dict[tuple[str, str, int], list[_Candidate]] = {}
        for route in routes:
            if not isinstance(route, AdminRoute):
                continue
            first, depth = _first_segment(route.path)
            convertors = route.param_convertors.values()
            if "{" in first or any(isinstance(c, PathConvertor) for c in convertors):
                raise TypeError(f"{route.path!r} cannot be dispatched by its first segment")
            typed = any(not isinstance(c, StringConvertor) for c in convertors)
            for method in route.methods or ():
                candidates = self._routes.setdefault((method, first, depth), [])
                candidates.append((route, route.path_regex, typed))
        # what Starlette's exception middleware applies: the 500 handler is the outermost
        # middleware's, which still answers whatever is raised past here
        self._handlers = {k: v for k, v in handlers.items() if k not in (500, Exception)}

    def match(self, scope: Scope) -> bool:
        """Whether an admin route serves this request; if one does, the scope gets it, its
        endpoint and its path parameters, as Starlette's router would set them."""
        path: str = scope["path"]
        if not path.startswith(PREFIX) or scope.get("root_path"):
            return False
        first, depth = _first_segment(path)
        for route, pattern, typed in self._routes.get((scope["method"], first, depth), ()):
            if found := pattern.match(path):
                params = found.groupdict()
                if typed:
                    convertors = route.param_convertors
                    params = {k: convertors[k].convert(v) for k, v in params.items()}
                scope["path_params"] = params
                scope["endpoint"] = route.endpoint
                scope["route"] = route
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request `match` found a route for."""
        route: AdminRoute = scope["route"]
        request = Request(scope, receive, send)
        try:
            response: Response = await route.endpoint(request, **scope["path_params"])
        except Exception as exc:
            handler = None
            if isinstance(exc, HTTPException):
                handler = self._handlers.get(exc.status_code)
            if handler is None:
                handlers = self._handlers
                handler = next((handlers[k] for k in type(exc).__mro__ if k in handlers), None)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
            # a reused exception instance would keep every request's traceback
            exc.__traceback__ = None
        # Sent past the handlers: what a response raises once started cannot be answered any
        # more (Starlette raises there too), and one failing before its start (a file gone
        # from storage) is no error of ours to shape: `ServerErrorMiddleware` answers 500.
        await response(scope, receive, send)


class AdminAPI(FastAPI):
    """FastAPI, with the admin routes served from the top of its ASGI call (see the module's
    notes): `ServerErrorMiddleware` with the app's 500 handler, then the app's own middleware
    (`add_middleware`, outermost last, as FastAPI stacks it), then `AdminDispatch`. Both stacks
    are built together, before the first request, like FastAPI's own; each has its own
    instances of the app's middleware, which must therefore keep no state between requests
    (`RequestContext` and `Recorder` keep theirs in the request's scope)."""

    _admin: ASGIApp
    _dispatch: AdminDispatch
    _named: dict[str, BaseRoute]

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._dispatch = AdminDispatch(self.router.routes, self.exception_handlers)
        self._named = {}
        for route in self.router.routes:
            name = getattr(route, "name", None)
            if name is not None:
                self._named.setdefault(name, route)
        app: ASGIApp = self._dispatch
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        error_handler = next(
            (v for k, v in reversed(self.exception_handlers.items()) if k in (500, Exception)),
            None,
        )
        self._admin = ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)
        return stack

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The router's answer, with the route found by name in one lookup: the router asks
        each route in turn, and each says no by raising (3% of a create's time). Should the
        first route of a name refuse the parameters, the router's search decides."""
        route = self._named.get(name) if self.middleware_stack is not None else None
        if route is not None:
            with contextlib.suppress(NoMatchFound):
                return route.url_path_for(name, **path_params)
        return super().url_path_for(name, **path_params)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        if self.root_path:  # as FastAPI sets it; `match` leaves such requests to FastAPI
            scope["root_path"] = self.root_path
        if scope["type"] == "http" and self._dispatch.match(scope):
            scope["app"] = self
            await self._admin(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
