"""The ASGI application: routers, error handlers, and a lifespan that owns the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from supportdesk import __version__, api, logs
from supportdesk.auth.ratelimit import open_limiter
from supportdesk.config import Settings
from supportdesk.db import Database, open_database
from supportdesk.jsonapi import errors
from supportdesk.observability import RequestContext
from supportdesk.ticket_attachments.storage import Storage


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db = open_database(settings.database_url, server=True)
    await db.connect()
    app.state.db = db
    app.state.limiter = open_limiter(
        settings.redis_url, settings.storage_dir, settings.rate_limit_per_minute
    )
    try:
        yield
    finally:
        await app.state.limiter.counter.close()
        await db.close()


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="supportdesk",
        version=__version__,
        summary="Support tickets with a Paymenter-compatible admin API",
        description=(
            "Every `/api/v1/admin` endpoint needs `Authorization: Bearer <token>` with the "
            "permission named in its description. Success bodies are JSON:API documents; "
            "errors are `{message, code, errors?}`."
        ),
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks look up the global providers on every request;
        # supportdesk configures none (its telemetry is the access log and request ids).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # a trailing slash is a 404 in the error shape, never a redirect
        redirect_slashes=False,
        openapi_tags=[
            {"name": "tickets"},
            {"name": "ticket messages"},
            {"name": "users"},
            {"name": "service"},
        ],
    )
    app.state.settings = settings
    app.state.storage = Storage(settings.storage_dir)
    api.install(app)
    errors.install(app)
    app.add_middleware(RequestContext)

    @app.get(
        "/health",
        tags=["service"],
        summary="200 when the database answers, 503 otherwise; needs no key",
        responses={503: {"description": "The database does not answer"}},
    )
    async def health(request: Request) -> Response:
        db: Database = request.app.state.db
        ok = await db.ping()
        return Response(
            orjson.dumps({"status": "ok" if ok else "unavailable"}),
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    return app


def create_app_from_environ() -> FastAPI:
    """The factory uvicorn's worker processes call: settings come from the environment."""
    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)
