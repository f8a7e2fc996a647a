"""The background jobs on both databases: autoclose and prune doing their work, the jobs the
settings enable, and /health reporting the jobs the app's own runner ran."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, bindparam, update

from supportdesk.app import create_app, lifespan
from supportdesk.config import Settings
from supportdesk.events import service as events_service
from supportdesk.jobs import autoclose, prune, registry
from supportdesk.jobs.runner import JobContext
from supportdesk.tables import events, tickets
from tests import factories

LONG_AGO = "2000-01-01T00:00:00.000000Z"


def context(app: FastAPI, **settings: Any) -> JobContext:
    """What the runner would hand a step, with these settings changed."""
    changed = app.state.settings.model_copy(update=settings)
    return JobContext(app.state.db, changed, app.state.bus, "test")


async def backdate(
    app: FastAPI, id_column: Column[Any], time_column: Column[Any], ids: list[Any]
) -> None:
    """Set `time_column` of these rows to long ago."""
    statement = (
        update(id_column.table)
        .where(id_column == bindparam("row_id"))
        .values({time_column.name: LONG_AGO})
    )
    async with app.state.db.transaction() as conn:
        for row_id in ids:
            await conn.execute(statement, {"row_id": int(row_id)})


async def feed(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/events", params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_autoclose_closes_a_stale_replied_ticket_as_the_system(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    customer = await factories.user(client)
    staff = await factories.staff(client)
    stale, fresh, waiting = [await factories.ticket(client, customer["id"]) for _ in range(3)]
    for ticket in (stale, fresh):
        await factories.post_message(client, ticket["id"], staff["id"])
    await factories.post_message(client, waiting["id"], customer["id"])
    await backdate(app, tickets.c.id, tickets.c.updated_at, [stale["id"], waiting["id"]])

    await autoclose.step(context(app, autoclose_after=timedelta(days=7)))

    statuses = [
        (await client.get(f"/tickets/{t['id']}")).json()["data"]["attributes"]["status"]
        for t in (stale, fresh, waiting)
    ]
    assert statuses == ["closed", "replied", "customer-reply"]
    closing = (await feed(client, **{"filter[ticket_id]": stale["id"]}))[-1]["attributes"]
    assert closing["event"] == "ticket.updated"
    assert closing["actor"] == {"type": "system", "id": None}
    assert closing["changes"] == {"status": ["replied", "closed"]}
    before = await feed(client)
    await autoclose.step(context(app, autoclose_after=timedelta(days=7)))
    assert await feed(client) == before  # nothing left to close: no new event


async def test_prune_removes_only_the_old_events(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_service, "PRUNE_BATCH", 2)  # several batches
    for _ in range(6):
        await factories.user(client)
    ids = [int(event["id"]) for event in await feed(client)]
    old, recent = ids[:5], ids[5:]
    await backdate(app, events.c.id, events.c.occurred_at, old)

    await prune.step(context(app, events_retain=timedelta(days=30)))

    assert [int(event["id"]) for event in await feed(client)] == recent
    assert await events_service.prune(app.state.db, timedelta(days=30)) == 0


@pytest.mark.parametrize(
    ("environment", "names"),
    [
        ({}, ["autoclose", "idempotency", "prune", "webhooks"]),  # mail records: 90 days
        ({"autoclose_after": "0", "mail_retain": "0"}, ["idempotency", "webhooks"]),
        (
            {"autoclose_after": "12h", "events_retain": "180d"},
            ["autoclose", "idempotency", "prune", "webhooks"],
        ),
        ({"autoclose_after": "0", "events_retain": "1w"}, ["idempotency", "prune", "webhooks"]),
    ],
)
def test_the_settings_choose_the_jobs(environment: dict[str, str], names: list[str]) -> None:
    settings = Settings(database_url="sqlite:///unused.db", **environment)
    assert [job.name for job in registry.jobs(settings)] == names
    # PostgreSQL's trigger-kept counts have their deltas folded by a job of their own
    settings = Settings(database_url="postgresql://postgres@127.0.0.1/unused", **environment)
    assert [job.name for job in registry.jobs(settings)] == sorted(["counts", *names])


async def health(anonymous: httpx.AsyncClient) -> dict[str, Any]:
    response = await anonymous.get("/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_health_reports_the_jobs_this_app_runs(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"jobs": True, "mail_retain": timedelta(0)}))
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await _reports_the_jobs(app, http)


async def _reports_the_jobs(app: FastAPI, anonymous: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 10
    while not (await health(anonymous))["jobs"].get("autoclose", {}).get("last_success_at"):
        assert time.monotonic() < deadline, "the app's runner never ran autoclose"
        await asyncio.sleep(0.05)
    body = await health(anonymous)
    assert body["status"] == "ok"
    job = body["jobs"]["autoclose"]
    assert job["holder"] == app.state.runner.holder
    assert job["last_error"] is None and job["last_error_at"] is None
    assert "prune" not in body["jobs"]  # not configured


async def test_an_app_without_jobs_runs_none(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"jobs": False}))
    async with lifespan(application):
        assert application.state.runner is None
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await asyncio.sleep(0.3)
            assert await health(http) == {"status": "ok", "jobs": {}}
