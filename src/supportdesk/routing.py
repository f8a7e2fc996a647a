"""Where resource routes are declared: `admin_router(tag)` puts them under /api/v1/admin, as
`AdminRoute`s.

Two costs of FastAPI's generic machinery are kept off every request here (bench/README.md,
change 8, measured with callgrind on `GET /tickets/{id}?include=messages`):

- `api.install(app)` adds the routes of every admin router to the app itself instead of
  `include_router`: since FastAPI 0.137 an included router stays a node of the route tree that
  every request walks (route-tree version checks, per-branch contexts, scope bookkeeping).
- `AdminRoute` calls its endpoint with the request and the path parameters. Our endpoints read
  their query, body and headers themselves (`jsonapi/`, `auth.guard`), so FastAPI's per-request
  parameter solving (a `Response` built, query, headers and cookies parsed and matched against
  no declared parameter) did nothing for them. FastAPI still builds the route's dependant, from
  which the OpenAPI document is generated, and the endpoint signature is checked when the route
  is declared, so a parameter FastAPI would have had to solve cannot slip in unnoticed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

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
