"""Webhook deliveries to a real receiver on 127.0.0.1, on SQLite and PostgreSQL, with the
dispatcher driven one step at a time: signatures that the `standardwebhooks` library verifies,
retries, disabling, ordering, isolation, the test event and the delivery log."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from supportdesk.config import Settings
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
    assert payload == {"type": "user.created", "timestamp": event["attributes"]["occurred_at"], "data": event}  # type: ignore[index]
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
