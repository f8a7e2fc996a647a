"""The event log (SPEC section 9): what every write records, the feed, long polling, history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from supportdesk.auth.keys import hash_token
from supportdesk.tables import api_keys
from supportdesk.tickets import service as tickets_service
from tests import factories
from tests.conftest import KeyFactory


async def feed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def events(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await feed(client, limit=1000, **params))["data"]
    return data


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["attributes"]["event"] for item in items]


async def key_id(app: FastAPI, token: str) -> int:
    async with app.state.db.read() as conn:
        value: int = await conn.fetch_value(
            select(api_keys.c.id).where(api_keys.c.token_hash == hash_token(token))
        )
    return value


async def test_every_write_records_its_events(
    client: httpx.AsyncClient, app: FastAPI, token: str
) -> None:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"])
    await client.patch(f"/tickets/{ticket['id']}", json={"priority": "high", "subject": " New "})
    await client.patch(f"/tickets/{ticket['id']}", json={"priority": "high"})  # no change
    reply = await factories.post_message(client, ticket["id"], agent["id"], "On it")
    await client.patch(f"/ticket-messages/{reply['id']}", json={"message": "On it now"})
    await client.delete(f"/ticket-messages/{reply['id']}")
    await client.patch(f"/users/{owner['id']}", json={"first_name": "Ada"})
    await client.delete(f"/tickets/{ticket['id']}")

    items = await events(client)
    assert names(items) == [
        "user.created",
        "user.created",
        "ticket.created",
        "ticket.updated",
        "ticket_message.created",
        "ticket.updated",
        "ticket_message.updated",
        "ticket_message.deleted",
        "user.updated",
        "ticket.deleted",
    ]
    ids = [int(item["id"]) for item in items]
    assert ids == sorted(ids)
    actor = {"type": "api_key", "id": await key_id(app, token)}
    created = items[2]["attributes"]
    assert created["actor"] == actor
    assert created["resource"] == {"type": "tickets", "id": int(ticket["id"])}
    assert created["ticket_id"] == int(ticket["id"])
    assert created["data"] == ticket["attributes"]
    assert created["changes"] is None
    assert created["occurred_at"].endswith("Z")

    updated = items[3]["attributes"]
    assert updated["changes"] == {
        "priority": ["medium", "high"],
        "subject": [ticket["attributes"]["subject"], "New"],
    }
    assert updated["data"]["subject"] == "New"

    # the workflow's status move is the message author's
    moved = items[5]["attributes"]
    assert moved["actor"] == {"type": "user", "id": int(agent["id"])}
    assert moved["changes"] == {"status": ["open", "replied"]}
    assert items[4]["attributes"]["actor"] == actor
    assert items[4]["attributes"]["ticket_id"] == int(ticket["id"])

    assert items[6]["attributes"]["changes"] == {"message": ["On it", "On it now"]}
    deleted = items[9]["attributes"]
    assert deleted["data"]["subject"] == "New"  # the attributes before the delete
    assert items[8]["attributes"]["changes"] == {"first_name": ["Test", "Ada"]}


async def test_attachments_and_a_forced_user_delete(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    other = await factories.user(client)
    mine = await factories.ticket(client, owner["id"])
    theirs = await factories.ticket(client, other["id"])
    response = await client.post(
        "/ticket-messages",
        data={"ticket_id": mine["id"], "user_id": owner["id"], "message": "log attached"},
        files={"attachments[]": ("a.log", b"x" * 10, "text/plain")},
    )
    assert response.status_code == 201
    message_id = response.json()["data"]["id"]
    added = await client.post(
        f"/ticket-messages/{message_id}/attachments",
        files={"attachments[]": ("b.log", b"y", "text/plain")},
    )
    assert added.status_code == 201
    elsewhere = await factories.post_message(client, theirs["id"], owner["id"], "me too")
    cursor = (await feed(client))["meta"]["cursor"]
    assert (
        await client.delete(f"/users/{owner['id']}", params={"force": "true"})
    ).status_code == 204

    items = await events(client, **{"filter[event]": "ticket_attachment.*"})
    assert [i["attributes"]["data"]["filename"] for i in items] == ["a.log", "b.log"]
    assert {i["attributes"]["ticket_id"] for i in items} == {int(mine["id"])}
    gone = await events(client, after=cursor)
    assert [(i["attributes"]["event"], i["attributes"]["resource"]["id"]) for i in gone] == [
        ("ticket.deleted", int(mine["id"])),
        ("ticket_message.deleted", int(elsewhere["id"])),
        ("user.deleted", int(owner["id"])),
    ]


async def test_a_refused_write_records_nothing(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    cursor = (await feed(client))["meta"]["cursor"]
    assert (await client.post("/tickets", json={"subject": "x", "user_id": 999})).status_code == 422
    assert (await client.patch("/tickets/999", json={"subject": "x"})).status_code == 404
    bad = {"ticket_id": 999, "user_id": owner["id"], "message": "hi"}
    assert (await client.post("/ticket-messages", json=bad)).status_code == 422
    assert await events(client, after=cursor) == []


async def test_a_write_that_fails_after_recording_rolls_its_events_back(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await factories.user(client)
    cursor = (await feed(client))["meta"]["cursor"]

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("fault after the events were appended")

    monkeypatch.setattr(tickets_service, "load_related", broken)
    response = await client.post("/tickets", json={"subject": "x", "user_id": owner["id"]})
    assert response.status_code == 500
    monkeypatch.undo()
    assert await events(client, after=cursor) == []
    assert (await client.get("/tickets")).json()["meta"]["total"] == 0


async def test_the_feed_pages_and_filters(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    first = await factories.ticket(client, owner["id"])
    second = await factories.ticket(client, owner["id"])
    await factories.post_message(client, second["id"], owner["id"])

    page = await feed(client, limit=2)
    assert names(page["data"]) == ["user.created", "ticket.created"]
    assert page["meta"]["cursor"] == page["data"][-1]["id"]
    assert "after=" + page["data"][-1]["id"] in page["links"]["next"]
    assert "limit=2" in page["links"]["next"]
    rest = (await client.get(page["links"]["next"])).json()
    assert names(rest["data"]) == ["ticket.created", "ticket_message.created"]

    tickets_only = await events(client, **{"filter[event]": "ticket.*"})
    assert names(tickets_only) == ["ticket.created", "ticket.created", "ticket.updated"]
    mixed = await events(client, **{"filter[event]": "user.created,ticket_message.*"})
    assert names(mixed) == ["user.created", "ticket_message.created"]
    assert len(await events(client, **{"filter[event]": "*"})) == 5
    by_ticket = await events(client, **{"filter[ticket_id]": second["id"]})
    assert names(by_ticket) == ["ticket.created", "ticket_message.created", "ticket.updated"]
    assert {
        i["attributes"]["ticket_id"]
        for i in await events(client, **{"filter[ticket_id]": first["id"]})
    } == {int(first["id"])}

    end = await feed(client, after=rest["meta"]["cursor"] if rest["data"] else 0)
    empty = await feed(client, after=10_000)
    assert empty["data"] == [] and empty["meta"]["cursor"] == "10000"
    assert end["meta"]["cursor"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"limit": "0"}, 422, "limit"),
        ({"limit": "1001"}, 422, "limit"),
        ({"after": "-1"}, 422, "after"),
        ({"after": "x"}, 422, "after"),
        ({"wait": "31"}, 422, "wait"),
        ({"filter[event]": "ticket.exploded"}, 400, None),
        ({"filter[event]": "nope.*"}, 400, None),
        ({"filter[status]": "open"}, 400, None),
        ({"filter[ticket_id]": "abc"}, 400, None),
        ({"after": "1", "limit": "5", "extra": "ignored"}, 200, None),
    ],
)
async def test_bad_feed_queries(
    client: httpx.AsyncClient, params: dict[str, str], status: int, field: str | None
) -> None:
    response = await client.get("/events", params=params)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["code"] == "validation_failed"
        assert field in response.json()["errors"]
    elif status == 400:
        assert response.json()["code"] == "invalid_query"


async def test_long_polling_returns_as_soon_as_an_event_commits(
    client: httpx.AsyncClient,
) -> None:
    owner = await factories.user(client)
    cursor = (await feed(client))["meta"]["cursor"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.create_task(client.get("/events", params={"after": cursor, "wait": 10}))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await factories.ticket(client, owner["id"])
    response = await asyncio.wait_for(waiting, 5)
    assert names(response.json()["data"]) == ["ticket.created"]
    assert loop.time() - started < 5

    # a filter that nothing matches waits out its time and keeps the cursor
    begun = loop.time()
    quiet = await client.get(
        "/events", params={"after": cursor, "wait": 1, "filter[event]": "user.deleted"}
    )
    assert quiet.json() == {**quiet.json(), "data": []}
    assert quiet.json()["meta"]["cursor"] == cursor
    assert loop.time() - begun >= 0.9


async def test_history_of_a_ticket(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    other = await factories.ticket(client, owner["id"])
    for text in ("one", "two"):
        await factories.post_message(client, ticket["id"], owner["id"], text)
    await factories.post_message(client, other["id"], owner["id"])

    response = await client.get(f"/tickets/{ticket['id']}/history", params={"per_page": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["total"] == 4  # created, message one (+ status move), message two
    assert names(body["data"]) == ["ticket.created", "ticket_message.created"]
    assert body["links"]["next"]
    second = (await client.get(body["links"]["next"])).json()
    assert names(second["data"]) == ["ticket.updated", "ticket_message.created"]
    assert all(i["attributes"]["ticket_id"] == int(ticket["id"]) for i in second["data"])

    await client.delete(f"/tickets/{ticket['id']}")
    after_delete = await client.get(f"/tickets/{ticket['id']}/history")
    assert after_delete.status_code == 200
    assert names(after_delete.json()["data"])[-1] == "ticket.deleted"
    missing = await client.get("/tickets/999/history")
    assert missing.status_code == 404
    assert (
        await client.get(f"/tickets/{other['id']}/history", params={"sort": "-id"})
    ).status_code == 200
    assert (
        await client.get(f"/tickets/{other['id']}/history", params={"sort": "event"})
    ).status_code == 400


async def test_permissions(app: FastAPI, make_key: KeyFactory, client: httpx.AsyncClient) -> None:
    limited = await make_key("tickets.view")
    viewer = await make_key("events.view")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1/admin") as http:
        auth = {"Authorization": f"Bearer {limited}"}
        assert (await http.get("/events", headers=auth)).status_code == 403
        assert (await http.get("/events/stream", headers=auth)).status_code == 403
        assert (await http.get("/events")).status_code == 401
        allowed = await http.get("/events", headers={"Authorization": f"Bearer {viewer}"})
        assert allowed.status_code == 200
