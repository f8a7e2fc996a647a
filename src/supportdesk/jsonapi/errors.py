"""Error bodies (SPEC section 7) and the exception handlers that produce them: ours, FastAPI's
validation errors, Starlette's 404/405 for unknown routes, and every unexpected exception."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from supportdesk.errors import SupportdeskError, ValidationFailed
from supportdesk.idempotency.keys import REPLAYED_HEADER, Replay
from supportdesk.observability import new_request_id

log = logging.getLogger("supportdesk.errors")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    503: "service_unavailable",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {"message": message, "code": code, **extra}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _supportdesk_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SupportdeskError)
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ValidationFailed):
        return error_response(exc.status, exc.code, exc.message, headers, errors=exc.errors)
    return error_response(exc.status, exc.code, exc.message, headers)


def _replay(_: Request, exc: Exception) -> Response:
    """The stored answer to an idempotent repeat (SPEC 12): its status, body and headers."""
    assert isinstance(exc, Replay)
    stored = exc.response
    headers = {**stored.headers, REPLAYED_HEADER: "true"}
    return Response(stored.body, status_code=stored.status, headers=headers)


def _request_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        name = str(error["loc"][-1]) if error.get("loc") else "request"
        errors.setdefault(name, []).append(str(error.get("msg", "is invalid")))
    return _supportdesk_error(_, ValidationFailed(errors))


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"The route {request.url.path} could not be found."
    elif exc.status_code == 405:
        message = f"The {request.method} method is not supported for route {request.url.path}."
        allowed = _allowed_methods(request)
        return error_response(405, code, message, headers={"Allow": ", ".join(allowed)})
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method of every route at this path (Starlette's own 405 names only the first
    matching route's methods)."""
    path = request.url.path
    methods = {
        method
        for route in request.app.router.routes
        if isinstance(route, Route) and route.methods and route.path_regex.fullmatch(path)
        for method in route.methods
    }
    return [method for method in _METHODS if method in methods]


def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", None) or new_request_id()
    log.error(
        "unhandled error in %s %s (request_id=%s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
        extra={"fields": {"request_id": request_id}},
    )
    # sent by Starlette's outermost middleware, so the id header is set here
    return error_response(
        500, "internal", "Server error", {"X-Request-ID": request_id}, request_id=request_id
    )


# An error page for a request that is not the API's (the browser's pages): given the request,
# the status and the message, the response to send instead of the JSON body, or None.
PageMaker = Callable[[Request, int, str], Response | None]
_KEPT_HEADERS = ("allow", "retry-after", "x-request-id")


def install(app: FastAPI, page: PageMaker | None = None) -> None:
    def handler(render: Callable[[Request, Exception], Response]) -> Callable[..., Response]:
        if page is None:
            return render

        def handle(request: Request, exc: Exception) -> Response:
            response = render(request, exc)
            message = orjson.loads(response.body).get("message", "") if response.body else ""
            instead = page(request, response.status_code, message)
            if instead is None:
                return response
            for name in _KEPT_HEADERS:
                if name in response.headers:
                    instead.headers[name] = response.headers[name]
            return instead

        return handle

    app.add_exception_handler(SupportdeskError, handler(_supportdesk_error))
    app.add_exception_handler(Replay, _replay)
    app.add_exception_handler(RequestValidationError, handler(_request_validation_error))
    app.add_exception_handler(StarletteHTTPException, handler(_http_error))
    app.add_exception_handler(Exception, handler(_unexpected_error))
