"""The ASGI application: routers, error handlers, and a lifespan that owns the database."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from supportdesk import __version__, api, logs
from supportdesk.auth.ratelimit import open_limiter
from supportdesk.config import Settings
from supportdesk.db import Database, open_database
from supportdesk.events.bus import Bus
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
    bus = app.state.bus = Bus(db, settings.event_poll_interval)
    await bus.start()
    restore = close_streams_on_exit(bus)
    try:
        yield
    finally:
        restore()
        await bus.stop()
        await app.state.limiter.counter.close()
        await db.close()


def close_streams_on_exit(bus: Bus) -> Callable[[], None]:
    """When the server is told to stop (SIGTERM, SIGINT), end the open event streams so it can:
    uvicorn waits for every response in progress before it shuts down, and a stream never
    finishes by itself. Chains to the handlers uvicorn installed; returns what restores them.
    Outside a server (tests, the CLI) the default handlers stay."""
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue

        def chained(number: int, frame: Any, handler: Any = handler) -> None:
            loop.call_soon_threadsafe(bus.close_streams)
            handler(number, frame)

        previous[sig] = signal.signal(sig, chained)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


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
            {"name": "events"},
            {"name": "webhooks"},
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
