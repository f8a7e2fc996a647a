"""Webhook deliveries to a real receiver on 127.0.0.1, on SQLite and PostgreSQL, with the
dispatcher driven one step at a time: signatures that the `standardwebhooks` library verifies,
retries, disabling, ordering, isolation, the test event and the delivery log."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from supportdesk.config import Settings
from supportdesk.events import log
from supportdesk.events.log import Event
from supportdesk.webhooks import outbox
from tests import factories
from tests.webhooks import Answer, Receiver, attempts, create, dispatch, make_due, receiving


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The receiver is on 127.0.0.1, so private addresses are allowed; a short schedule."""
    return Settings(
        database_url=database_url,
        storage_dir=str(tmp_path / "storage"),
        webhook_allow_private=True,
        jobs=False,
        webhook_retry_schedule=("1s", "2s"),
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


async def _events(client: httpx.AsyncClient, name: str | None = None) -> list[dict[str, object]]:
    query = f"?filter[event]={name}&limit=1000" if name else "?limit=1000"
    data: list[dict[str, object]] = (await client.get(f"/events{query}")).json()["data"]
    return data


async def test_a_delivery_is_signed_and_shaped_as_standard_webhooks(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    secret = hook["attributes"]["secret"]
    user = await factories.user(client)
    await dispatch(app)
    [request] = receiver.at("/hook")
    payload = Webhook(secret).verify(request.body, request.headers)
    [event] = await _events(client, "user.created")
    assert payload == {
        "type": "user.created",
        "timestamp": event["attributes"]["occurred_at"],
        "data": event,
    }  # type: ignore[index]
    assert payload["data"]["attributes"]["data"]["email"] == user["attributes"]["email"]
    assert request.headers["webhook-id"] == f"evt_{event['id']}"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("supportdesk/")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)
    [log] = await attempts(client, hook["id"])
    assert log["state"] == "delivered" and log["status_code"] == 200 and log["attempt"] == 1
    assert log["event_id"] == int(event["id"]) and log["event"] == "user.created"  # type: ignore[arg-type]
    assert log["error"] is None and log["next_attempt_at"] is None
    assert isinstance(log["duration_ms"], int) and log["attempted_at"] is not None


async def test_only_matching_events_after_creation_reach_enabled_endpoints(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    before = await factories.user(client)
    users = await create(client, receiver.url("/users"), ["user.created"])
    tickets = await create(client, receiver.url("/tickets"), ["ticket.*"])
    everything = await create(client, receiver.url("/all"), ["*"])
    off = await create(client, receiver.url("/off"), ["*"])
    await client.patch(f"/webhooks/{off['id']}", json={"enabled": False})
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    await client.patch(f"/users/{owner['id']}", json={"first_name": "Changed"})
    await dispatch(app)

    def types(path: str) -> list[str]:
        return [orjson.loads(r.body)["type"] for r in receiver.at(path)]

    assert types("/users") == ["user.created"]
    assert types("/tickets") == ["ticket.created"]
    assert types("/all") == ["user.created", "ticket.created", "user.updated"]
    assert types("/off") == []
    ids = {orjson.loads(r.body)["data"]["id"] for r in receiver.received}
    assert before["id"] not in {
        orjson.loads(r.body)["data"]["attributes"]["resource"]["id"] for r in receiver.received
    }
    assert len(ids) == 3
    assert [a["state"] for a in await attempts(client, users["id"])] == ["delivered"]
    assert len(await attempts(client, tickets["id"])) == 1
    assert len(await attempts(client, everything["id"])) == 3
    # a second step finds nothing new: fan-out and sending are idempotent
    await dispatch(app)
    assert len(receiver.received) == 5
    assert ticket["id"]


async def test_rotation_signs_with_both_secrets(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    old = hook["attributes"]["secret"]
    response = await client.post(f"/webhooks/{hook['id']}/rotate-secret")
    new = response.json()["data"]["attributes"]["secret"]
    await factories.user(client)
    await dispatch(app)
    [request] = receiver.at("/hook")
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (new, old):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "user.created"


async def test_a_500_with_retry_after_is_retried_later_under_the_same_id(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [Answer(500, {"retry-after": "120"})]
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    await factories.user(client)
    await dispatch(app)
    first, second = await attempts(client, hook["id"])
    assert (first["state"], first["status_code"], first["error"]) == ("failed", 500, "HTTP 500")
    assert (second["state"], second["attempt"]) == ("pending", 2)
    waited = _seconds(first["next_attempt_at"]) - _seconds(first["attempted_at"])
    assert 119 <= waited <= 121  # Retry-After is later than the schedule's 1 s: it wins
    assert second["next_attempt_at"] == first["next_attempt_at"]
    await dispatch(app)  # not due yet
    assert len(receiver.at("/hook")) == 1
    response = await client.post(f"/webhooks/{hook['id']}/deliveries/{first['id']}/retry")
    assert response.status_code == 202
    assert response.json()["data"]["id"] == second["id"]
    await dispatch(app)
    one, two = receiver.at("/hook")
    assert one.headers["webhook-id"] == two.headers["webhook-id"]
    assert [a["state"] for a in await attempts(client, hook["id"])] == ["failed", "delivered"]


def _seconds(text: object) -> float:
    return datetime.fromisoformat(str(text)).timestamp()


async def test_the_schedule_runs_out_and_the_endpoint_moves_on(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [Answer(503)] * 3
    hook = await create(client, receiver.url("/hook"), ["user.created"])
    first = await factories.user(client)
    second = await factories.user(client)
    for _ in range(3):
        await dispatch(app)
        await make_due(app)
    await dispatch(app)
    log = sorted(await attempts(client, hook["id"]), key=lambda a: (a["event_id"], a["attempt"]))
    assert [(a["attempt"], a["state"]) for a in log] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (1, "delivered"),
    ]
    assert log[2]["next_attempt_at"] is None  # given up
    delivered = orjson.loads(receiver.at("/hook")[-1].body)
    assert delivered["data"]["attributes"]["resource"]["id"] == int(second["id"])
    assert first["id"] != second["id"]
    webhook = (await client.get(f"/webhooks/{hook['id']}")).json()["data"]["attributes"]
    assert webhook["enabled"] is True and webhook["failing_since"] is None


async def test_a_410_disables_the_endpoint_and_records_webhook_disabled(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/gone"] = [Answer(410)]
    gone = await create(client, receiver.url("/gone"), ["user.*"])
    watcher = await create(client, receiver.url("/watch"), ["webhook.*"])
    await factories.user(client)
    await factories.user(client)
    await dispatch(app)
    assert len(receiver.at("/gone")) == 1  # the second event was not tried
    attributes = (await client.get(f"/webhooks/{gone['id']}")).json()["data"]["attributes"]
    assert attributes["enabled"] is False
    assert attributes["disabled_reason"] == "the endpoint answered 410 Gone"
    [event] = await _events(client, "webhook.disabled")
    assert event["attributes"]["resource"] == {"type": "webhooks", "id": int(gone["id"])}  # type: ignore[index]
    assert event["attributes"]["actor"] == {"type": "system", "id": None}  # type: ignore[index]
    assert "secret" not in event["attributes"]["data"]  # type: ignore[operator]
    await dispatch(app)  # the other endpoint hears of it
    [notice] = receiver.at("/watch")
    assert orjson.loads(notice.body)["type"] == "webhook.disabled"
    log = await attempts(client, gone["id"])
    assert [(a["state"], a["status_code"]) for a in log] == [("failed", 410), ("pending", None)]
    assert log[0]["next_attempt_at"] is None
    assert watcher["id"]
    # enabled again, it resumes its queue
    response = await client.patch(f"/webhooks/{gone['id']}", json={"enabled": True})
    assert response.json()["data"]["attributes"]["disabled_reason"] is None
    await dispatch(app)
    assert len(receiver.at("/gone")) == 2


async def test_five_days_of_failures_disable_the_endpoint(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [Answer(500)] * 2
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    await factories.user(client)
    await dispatch(app)
    attributes = (await client.get(f"/webhooks/{hook['id']}")).json()["data"]["attributes"]
    assert attributes["enabled"] is True and attributes["failing_since"] is not None
    await make_due(app, failing_since="2000-01-01T00:00:00.000000Z")
    await dispatch(app)
    attributes = (await client.get(f"/webhooks/{hook['id']}")).json()["data"]["attributes"]
    assert attributes["enabled"] is False
    assert attributes["disabled_reason"] == "every delivery failed for 5 days"
    assert len(await _events(client, "webhook.disabled")) == 1


async def test_redirects_are_failures_and_not_followed(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/moved"] = [Answer(302, {"location": receiver.url("/target")})]
    hook = await create(client, receiver.url("/moved"), ["user.*"])
    await factories.user(client)
    await dispatch(app)
    assert receiver.at("/target") == []
    [failed, _] = await attempts(client, hook["id"])
    assert failed["status_code"] == 302
    assert "not followed" in str(failed["error"])


async def test_events_reach_an_endpoint_in_order_through_failures(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [Answer(500), Answer(200), Answer(500)]
    hook = await create(client, receiver.url("/hook"), ["user.created"])
    for _ in range(4):
        await factories.user(client)
    for _ in range(4):
        await dispatch(app)
        await make_due(app)
    ids = [r.headers["webhook-id"] for r in receiver.at("/hook")]
    # 1 fails, 1 is delivered, 2 fails, then 2, 3, 4: nothing overtakes a retry
    assert ids[0] == ids[1] and ids[2] == ids[3]
    assert sorted(set(ids), key=ids.index) == sorted(set(ids), key=lambda i: int(i[4:]))
    assert len(ids) == 6
    assert [a["state"] for a in await attempts(client, hook["id"])].count("delivered") == 4


async def test_a_slow_or_failing_endpoint_does_not_delay_a_healthy_one(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script["/slow"] = [Answer(200, delay=1.5)]
    receiver.script["/failing"] = [Answer(500, {"retry-after": "60"})]
    await create(client, receiver.url("/slow"), ["user.*"])
    await create(client, receiver.url("/failing"), ["user.*"])
    await create(client, receiver.url("/healthy"), ["user.*"])
    for _ in range(5):
        await factories.user(client)
    started = time.monotonic()
    await dispatch(app)
    healthy = receiver.at("/healthy")
    assert len(healthy) == 5
    assert max(r.at for r in healthy) - started < 1.0  # all before the slow answer came
    assert len(receiver.at("/failing")) == 1
    assert len(receiver.at("/slow")) == 5  # the step went on until the slow one was done


async def test_the_test_event_goes_to_its_endpoint_only(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await create(client, receiver.url("/hook"), ["ticket.*"])
    await create(client, receiver.url("/all"), ["*"])
    response = await client.post(f"/webhooks/{hook['id']}/test")
    assert response.status_code == 202
    pending = response.json()["data"]
    assert pending["type"] == "webhook_deliveries"
    assert pending["attributes"]["state"] == "pending" and pending["attributes"]["attempt"] == 1
    await dispatch(app)
    [request] = receiver.at("/hook")
    body = Webhook(hook["attributes"]["secret"]).verify(request.body, request.headers)
    assert body["type"] == "webhook.test"
    assert body["data"]["attributes"]["resource"] == {"type": "webhooks", "id": int(hook["id"])}
    assert request.headers["webhook-id"] == f"evt_{pending['attributes']['event_id']}"
    assert receiver.at("/all") == []
    [event] = await _events(client, "webhook.test")
    assert event["attributes"]["actor"]["type"] == "api_key"  # type: ignore[index]
    await client.patch(f"/webhooks/{hook['id']}", json={"enabled": False})
    response = await client.post(f"/webhooks/{hook['id']}/test")
    assert response.status_code == 409


async def test_a_private_address_is_refused_again_at_delivery_time(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    app.state.settings = app.state.settings.model_copy(update={"webhook_allow_private": False})
    await factories.user(client)
    await dispatch(app)
    assert receiver.received == []
    assert "127.0.0.1, a loopback address" in await _unanswered(client, hook["id"])


async def _unanswered(client: httpx.AsyncClient, webhook_id: str) -> str:
    """The error of the endpoint's first attempt, which got no answer."""
    failed = (await attempts(client, webhook_id))[0]
    assert failed["state"] == "failed" and failed["status_code"] is None
    return str(failed["error"])


async def test_refused_connections_are_failed_attempts(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        hook = await create(client, f"http://127.0.0.1:{port}/nobody", ["user.*"])
        await factories.user(client)
        await dispatch(app)
    assert "cannot connect to 127.0.0.1" in await _unanswered(client, hook["id"])


async def test_the_delivery_log_is_newest_first_and_paged(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    for _ in range(3):
        await factories.user(client)
    await dispatch(app)
    response = await client.get(f"/webhooks/{hook['id']}/deliveries?per_page=2")
    document = response.json()
    assert document["meta"]["total"] == 3 and len(document["data"]) == 2
    ids = [int(item["id"]) for item in document["data"]]
    assert ids == sorted(ids, reverse=True)
    page_two = (await client.get(document["links"]["next"])).json()["data"]
    assert int(page_two[0]["id"]) < ids[-1]


async def test_fan_out_is_idempotent_and_never_doubles_a_delivery(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    await factories.user(client)
    assert await outbox.fan_out(app.state.db) is False
    assert await outbox.fan_out(app.state.db) is False
    assert len(await attempts(client, hook["id"])) == 1
    await dispatch(app)
    assert len(receiver.at("/hook")) == 1


async def test_dispatcher_throughput(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """2,000 deliveries (10 endpoints x 200 events) to the local receiver, each endpoint's in
    order; prints the rate (a measurement, not a benchmark: it shares one loop with the
    receiver and the database driver)."""
    for noisy in ("httpx", "httpcore"):  # a record per request phase at DEBUG
        caplog.set_level(logging.WARNING, logger=noisy)
    endpoints = 10
    count = 200
    for n in range(endpoints):
        await create(client, receiver.url(f"/e{n}"), ["user.*"])
    events = [
        Event("user.updated", "users", n, {"id": n, "email": f"u{n}@example.com"})
        for n in range(1, count + 1)
    ]
    async with app.state.db.transaction() as conn:
        await log.record(conn, log.SYSTEM, events)
    started = time.perf_counter()
    steps = 0
    while len(receiver.received) < endpoints * count and steps < 100:
        await dispatch(app)
        steps += 1
    elapsed = time.perf_counter() - started
    assert len(receiver.received) == endpoints * count
    for n in range(endpoints):
        ids = [int(r.headers["webhook-id"][4:]) for r in receiver.at(f"/e{n}")]
        assert ids == sorted(ids) and len(set(ids)) == count
    rate = endpoints * count / elapsed
    print(f"\nwebhook dispatcher: {endpoints * count} deliveries in {elapsed:.2f} s = {rate:.0f}/s")


async def test_a_step_stopped_mid_send_sends_again_later(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """At least once: a send whose result was never recorded (the step cancelled, as when the
    process stops) stays pending and goes out again under the same webhook-id."""
    receiver.script["/hook"] = [Answer(200, delay=1.0)]
    hook = await create(client, receiver.url("/hook"), ["user.*"])
    await factories.user(client)
    running = asyncio.create_task(dispatch(app))
    assert await asyncio.to_thread(receiver.arrived.wait, 10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert [a["state"] for a in await attempts(client, hook["id"])] == ["pending"]
    await dispatch(app)
    first, second = receiver.at("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert [a["state"] for a in await attempts(client, hook["id"])] == ["delivered"]
