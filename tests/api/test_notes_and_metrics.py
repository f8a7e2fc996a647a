"""Internal notes and the ticket metrics (SPEC section 12), on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.tickets import service as tickets_service
from tests import factories

Attributes = dict[str, Any]


@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, str]:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"], assigned_to=agent["id"])
    return {"owner": owner["id"], "agent": agent["id"], "ticket": ticket["id"]}


async def ticket_attributes(client: httpx.AsyncClient, ticket_id: str) -> Attributes:
    response = await client.get(f"/tickets/{ticket_id}")
    assert response.status_code == 200, response.text
    attributes: Attributes = response.json()["data"]["attributes"]
    return attributes


async def post(
    client: httpx.AsyncClient, ticket_id: str, user_id: str, text: str = "Hi", **extra: Any
) -> httpx.Response:
    body = {"ticket_id": ticket_id, "user_id": user_id, "message": text, **extra}
    return await client.post("/ticket-messages", json=body)


async def event_names(client: httpx.AsyncClient) -> list[str]:
    return [item["attributes"]["event"] for item in (await client.get("/events")).json()["data"]]


async def test_a_note_moves_no_status_and_is_marked_in_its_event(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    before = await ticket_attributes(client, people["ticket"])
    response = await post(
        client, people["ticket"], people["agent"], "Looks like DNS", internal=True
    )
    assert response.status_code == 201, response.text
    note = response.json()["data"]
    assert note["attributes"]["internal"] is True
    after = await ticket_attributes(client, people["ticket"])
    assert after["status"] == "open"
    assert after["message_count"] == 1
    # a note is no answer: the customer still waits for one
    assert after["first_response_at"] is None
    assert after["last_staff_message_at"] is None
    assert after["updated_at"] == note["attributes"]["created_at"] > before["updated_at"]

    items = (await client.get("/events", params={"filter[event]": "ticket_message.*"})).json()
    created = items["data"][-1]["attributes"]
    assert created["event"] == "ticket_message.created"
    assert created["data"]["internal"] is True
    # no status moved, so no ticket.updated followed it
    assert (await event_names(client))[-1] == "ticket_message.created"

    public = await post(client, people["ticket"], people["agent"], "Fixed", internal=False)
    assert public.json()["data"]["attributes"]["internal"] is False
    assert (await ticket_attributes(client, people["ticket"]))["status"] == "replied"


async def test_only_staff_write_notes(client: httpx.AsyncClient, people: dict[str, str]) -> None:
    response = await post(client, people["ticket"], people["owner"], "psst", internal=True)
    assert response.status_code == 422
    assert "staff" in response.json()["errors"]["user_id"][0]
    assert (await ticket_attributes(client, people["ticket"]))["message_count"] == 0
    assert "ticket_message.created" not in await event_names(client)
    for bad in ("yes", 1, "true"):
        response = await post(client, people["ticket"], people["agent"], internal=bad)
        assert response.status_code == 422
        assert response.json()["errors"] == {
            "internal": ["The internal field must be true or false."]
        }


async def test_notes_in_multipart_forms(client: httpx.AsyncClient, people: dict[str, str]) -> None:
    form = {"ticket_id": people["ticket"], "user_id": people["agent"], "internal": "true"}
    files = {"attachments[]": ("trace.txt", b"stack", "text/plain")}
    response = await client.post("/ticket-messages", data=form, files=files)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["internal"] is True
    form["internal"] = "maybe"
    response = await client.post("/ticket-messages", data=form, files=files)
    assert response.status_code == 422


async def test_filter_and_include_notes(client: httpx.AsyncClient, people: dict[str, str]) -> None:
    public = (await post(client, people["ticket"], people["owner"])).json()["data"]
    note = (await post(client, people["ticket"], people["agent"], internal=True)).json()["data"]
    for value, expected in (("true", [note]), ("1", [note]), ("false", [public]), ("", None)):
        response = await client.get("/ticket-messages", params={"filter[internal]": value})
        assert response.status_code == 200
        ids = [item["id"] for item in response.json()["data"]]
        assert ids == ([m["id"] for m in expected] if expected else [public["id"], note["id"]])
    bad = await client.get("/ticket-messages", params={"filter[internal]": "maybe"})
    assert bad.status_code == 400
    included = (
        await client.get(f"/tickets/{people['ticket']}", params={"include": "messages"})
    ).json()["included"]
    assert [m["attributes"]["internal"] for m in included] == [False, True]


async def test_notes_can_be_made_public_and_back(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    reply = (await post(client, people["ticket"], people["agent"], "Reboot it")).json()["data"]
    answered = await ticket_attributes(client, people["ticket"])
    assert answered["first_response_at"] == reply["attributes"]["created_at"]

    response = await client.patch(f"/ticket-messages/{reply['id']}", json={"internal": True})
    assert response.status_code == 200
    hidden = await ticket_attributes(client, people["ticket"])
    assert hidden["first_response_at"] is None and hidden["last_staff_message_at"] is None
    assert hidden["status"] == answered["status"]  # no status move either way
    assert hidden["message_count"] == 1

    await client.patch(f"/ticket-messages/{reply['id']}", json={"internal": False})
    again = await ticket_attributes(client, people["ticket"])
    assert again["first_response_at"] == reply["attributes"]["created_at"]

    mine = (await post(client, people["ticket"], people["owner"], "thanks")).json()["data"]
    response = await client.patch(f"/ticket-messages/{mine['id']}", json={"internal": True})
    assert response.status_code == 422  # the customer's words cannot become a staff note
    changes = [
        item["attributes"]["changes"]
        for item in (
            await client.get("/events", params={"filter[event]": "ticket_message.updated"})
        ).json()["data"]
    ]
    assert [c["internal"] for c in changes] == [[False, True], [True, False]]


async def test_metrics_follow_every_message_write(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    ticket = people["ticket"]
    first = (await post(client, ticket, people["owner"], "help")).json()["data"]["attributes"]
    metrics = await ticket_attributes(client, ticket)
    assert metrics["message_count"] == 1
    assert metrics["last_customer_message_at"] == first["created_at"]
    assert metrics["first_response_at"] is None

    answer = (await post(client, ticket, people["agent"], "on it")).json()["data"]
    second = (await post(client, ticket, people["agent"], "done")).json()["data"]
    metrics = await ticket_attributes(client, ticket)
    assert metrics["message_count"] == 3
    assert metrics["first_response_at"] == answer["attributes"]["created_at"]
    assert metrics["last_staff_message_at"] == second["attributes"]["created_at"]

    # the first answer goes: the second is the first response now
    assert (await client.delete(f"/ticket-messages/{answer['id']}")).status_code == 204
    metrics = await ticket_attributes(client, ticket)
    assert metrics["message_count"] == 2
    assert metrics["first_response_at"] == second["attributes"]["created_at"]
    await client.delete(f"/ticket-messages/{second['id']}")
    metrics = await ticket_attributes(client, ticket)
    assert metrics["first_response_at"] is None and metrics["last_staff_message_at"] is None
    # metrics are derived: in `data`, never in `changes`
    for item in (await client.get("/events", params={"filter[event]": "ticket.updated"})).json()[
        "data"
    ]:
        assert set(item["attributes"]["changes"]) <= {"status", "assigned_to", "user_id"}
        assert "message_count" in item["attributes"]["data"]


async def test_a_new_owner_turns_the_messages_around(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    said = (await post(client, people["ticket"], people["owner"])).json()["data"]["attributes"]
    await client.patch(f"/tickets/{people['ticket']}", json={"user_id": people["agent"]})
    metrics = await ticket_attributes(client, people["ticket"])
    # the first owner's message is a staff user's answer to the new owner now
    assert metrics["first_response_at"] == said["created_at"]
    assert metrics["last_customer_message_at"] is None


async def test_resolved_at_is_the_last_move_to_closed(
    client: httpx.AsyncClient, app: FastAPI, people: dict[str, str]
) -> None:
    ticket = people["ticket"]
    closed = await client.patch(f"/tickets/{ticket}", json={"status": "closed"})
    first = closed.json()["data"]["attributes"]
    assert first["resolved_at"] == first["updated_at"]
    await client.patch(f"/tickets/{ticket}", json={"priority": "high"})
    assert (await ticket_attributes(client, ticket))["resolved_at"] == first["resolved_at"]
    # the customer reopens it; it keeps the time it was resolved until it closes again
    await post(client, ticket, people["owner"], "still broken")
    reopened = await ticket_attributes(client, ticket)
    assert reopened["status"] == "customer-reply"
    assert reopened["resolved_at"] == first["resolved_at"]
    again = (await client.patch(f"/tickets/{ticket}", json={"status": "closed"})).json()
    assert again["data"]["attributes"]["resolved_at"] > first["resolved_at"]

    born_closed = await factories.ticket(client, people["owner"], status="closed")
    assert born_closed["attributes"]["resolved_at"] == born_closed["attributes"]["created_at"]

    stale = await factories.ticket(client, people["owner"])
    await post(client, stale["id"], people["agent"], "try this")
    closed_rows = await tickets_service.autoclose(
        app.state.db, app.state.settings, "9999-01-01T00:00:00.000000Z"
    )
    assert [row["id"] for row in closed_rows] == [int(stale["id"])]
    autoclosed = await ticket_attributes(client, stale["id"])
    assert autoclosed["resolved_at"] == autoclosed["updated_at"]


async def test_never_answered_filter_and_metric_sorts(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    answered = people["ticket"]
    await post(client, answered, people["agent"], "hello")
    waiting = (await factories.ticket(client, people["owner"]))["id"]
    noted = (await factories.ticket(client, people["owner"]))["id"]
    await post(client, noted, people["agent"], "internal only", internal=True)
    await post(client, noted, people["owner"], "anyone?")
    await post(client, noted, people["owner"], "hello?")

    async def ids(**params: str) -> list[str]:
        response = await client.get("/tickets", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert await ids(**{"filter[first_response_at]": "null"}) == [waiting, noted]
    assert await ids(**{"filter[first_response_at]": "NULL"}) == [waiting, noted]
    assert await ids(**{"filter[first_response_at]": "notnull"}) == [answered]
    assert len(await ids(**{"filter[first_response_at]": ""})) == 3
    bad = await client.get("/tickets", params={"filter[first_response_at]": "2024-01-01"})
    assert bad.status_code == 400
    assert "null" in bad.json()["message"]

    assert await ids(sort="-message_count") == [noted, answered, waiting]
    assert await ids(sort="message_count") == [waiting, answered, noted]
    # no value sorts last ascending and first descending, on both databases
    assert await ids(sort="first_response_at") == [answered, waiting, noted]
    assert await ids(sort="-last_customer_message_at") == [waiting, answered, noted]
    assert await ids(sort="last_customer_message_at") == [noted, answered, waiting]
    assert await ids(sort="resolved_at,-id") == [noted, waiting, answered]
    assert await ids(sort="last_staff_message_at") == [answered, waiting, noted]


async def test_a_forced_user_deletion_takes_their_answers_out_of_the_metrics(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    helper = (await factories.staff(client))["id"]
    await post(client, people["ticket"], people["owner"], "help")
    await post(client, people["ticket"], helper, "try this")
    answer = (await post(client, people["ticket"], people["agent"], "or this")).json()["data"]
    assert (await client.delete(f"/users/{helper}", params={"force": "true"})).status_code == 204
    metrics = await ticket_attributes(client, people["ticket"])
    assert metrics["message_count"] == 2
    assert metrics["first_response_at"] == answer["attributes"]["created_at"]


async def test_replies_and_deletions_racing_on_one_ticket_keep_the_metrics(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    """Every writer of a ticket's messages locks the ticket first: on PostgreSQL a reply and a
    deletion never deadlock, and no recomputation misses a reply committed meanwhile."""
    ticket = people["ticket"]
    old = [
        (await post(client, ticket, people["agent"], f"old {i}")).json()["data"] for i in range(20)
    ]
    answers = await asyncio.gather(
        *(post(client, ticket, people["agent"], f"new {i}") for i in range(20)),
        *(client.delete(f"/ticket-messages/{m['id']}") for m in old),
        *(client.patch(f"/ticket-messages/{m['id']}", json={"internal": True}) for m in old[:5]),
    )
    assert {a.status_code for a in answers} <= {200, 201, 204, 404}, [a.text for a in answers]
    assert [a.status_code for a in answers[:40]].count(500) == 0
    listed = await client.get(
        "/ticket-messages", params={"filter[ticket_id]": ticket, "per_page": "100"}
    )
    thread = [m["attributes"] for m in listed.json()["data"]]
    staff = [m["created_at"] for m in thread if not m["internal"]]
    metrics = await ticket_attributes(client, ticket)
    assert metrics["message_count"] == len(thread) == 20
    assert metrics["first_response_at"] == min(staff)
    assert metrics["last_staff_message_at"] == max(staff)
