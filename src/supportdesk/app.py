"""The ASGI application: routers, error handlers, and a lifespan that owns the database."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from supportdesk import __version__, api, docs, logs
from supportdesk.auth.ratelimit import DEPLOYMENT_KEY, open_limiter
from supportdesk.auth.service import KeyCache
from supportdesk.config import Settings
from supportdesk.db import meta, open_database
from supportdesk.events.bus import Bus
from supportdesk.idempotency.middleware import Recorder
from supportdesk.jobs import registry
from supportdesk.jobs.runner import Runner, report
from supportdesk.jsonapi import errors, openapi
from supportdesk.observability import RequestContext
from supportdesk.routing import PREFIX, AdminAPI
from supportdesk.ticket_attachments.storage import Storage
from supportdesk.web import pages, routes


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db = open_database(settings.database_url, server=True)
    await db.connect()
    app.state.db = db
    app.state.keys = KeyCache()
    deployment = (await meta.secret(db, DEPLOYMENT_KEY))[:16] if settings.redis_url else ""
    app.state.limiter = open_limiter(
        settings.redis_url, settings.storage_dir, settings.rate_limit_per_minute, deployment
    )
    bus = app.state.bus = Bus(db, settings.event_poll_interval, settings.stream_heartbeat)
    await bus.start()
    # Every worker of every instance competes for the jobs' leases: each job runs in one place.
    runner = app.state.runner = (
        Runner(db, settings, bus, registry.jobs(settings)) if settings.jobs else None
    )
    if runner is not None:
        await runner.start()
    restore = close_streams_on_exit(bus)
    # Everything loaded so far (modules, the app, its routes and schemas) lives as long as
    # the process: out of the collector's sight, a full collection no longer walks it. Each
    # one did, for 65 to 100 ms with the event loop stopped, every second or so under a
    # write load (write p99 over 100 ms); nothing it walked was ever garbage.
    gc.freeze()
    try:
        yield
    finally:
        restore()
        if runner is not None:
            await runner.stop()
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


_NULLABLE_TEXT = {"type": ["string", "null"]}
_HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "jobs": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "holder": _NULLABLE_TEXT,
                    "last_success_at": {**_NULLABLE_TEXT, "format": "date-time"},
                    "last_error": _NULLABLE_TEXT,
                    "last_error_at": {**_NULLABLE_TEXT, "format": "date-time"},
                },
            },
        },
    },
}


def create_app(settings: Settings) -> FastAPI:
    app = AdminAPI(
        title="supportdesk",
        version=__version__,
        summary="Support tickets with a Paymenter-compatible admin API",
        description=(
            "Every `/api/v1/admin` endpoint needs `Authorization: Bearer <token>` with the "
            "permission named in its description. Success bodies are JSON:API documents; "
            "errors are `{message, code, errors?}`."
        ),
        lifespan=lifespan,
        # FastAPI's pages load their scripts from a CDN: `docs.install` serves /docs itself
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry hooks look up the global providers on every request;
        # supportdesk configures none (its telemetry is the access log and request ids).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # a trailing slash is a 404 in the error shape, never a redirect
        redirect_slashes=False,
        openapi_tags=[
            {"name": "tickets"},
            {"name": "ticket messages"},
            {"name": "users"},
            {"name": "canned replies"},
            {"name": "events"},
            {"name": "webhooks"},
            {"name": "service"},
        ],
    )
    app.state.settings = settings
    app.state.storage = Storage(settings.storage_dir)
    api.install(app)
    routes.install(app)
    docs.install(app)
    errors.install(app, pages.browser_error)
    openapi.install(app, PREFIX)
    # the last added is the outermost: the Recorder stores answers without RequestContext's
    # per-request headers; both wrap the admin routes' dispatch as well as FastAPI's router
    app.add_middleware(Recorder)
    app.add_middleware(RequestContext)

    @app.get(
        "/health",
        tags=["service"],
        summary="200 when the database answers, 503 otherwise; each job's last run; needs no key",
        description=(
            "`jobs` has an entry for each background job that has run against this database, "
            "here or in another process: the process holding its lease now (`host:pid:random`; "
            "null when none does), when a step last succeeded, and the last error and its time "
            "(kept after later successes). One small read: cheap to poll."
        ),
        responses={
            200: {
                "description": "The database answers",
                "content": {"application/json": {"schema": _HEALTH_SCHEMA}},
            },
            503: {
                "description": 'The database does not answer: `{"status": "unavailable"}`',
                "content": {"application/json": {"schema": _HEALTH_SCHEMA}},
            },
        },
    )
    async def health(request: Request) -> Response:
        jobs = await report(request.app.state.db)
        body = {"status": "unavailable"} if jobs is None else {"status": "ok", "jobs": jobs}
        return Response(
            orjson.dumps(body),
            status_code=503 if jobs is None else 200,
            media_type="application/json",
        )

    return app


def create_app_from_environ() -> FastAPI:
    """The factory uvicorn's worker processes call: settings come from the environment."""
    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)
