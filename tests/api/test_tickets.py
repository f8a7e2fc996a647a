"""The tickets endpoints, on SQLite and PostgreSQL: shapes, defaults, writes and their rules."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests import factories

MEDIA = "application/vnd.api+json"


async def test_create_returns_201_location_and_defaults(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    response = await client.post(
        "/tickets", json={"subject": "  Billing question ", "user_id": owner["id"]}
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == MEDIA
    data = response.json()["data"]
    assert response.headers["location"].endswith(f"/api/v1/admin/tickets/{data['id']}")
    assert data["type"] == "tickets"
    assert isinstance(data["id"], str)
    attributes = data["attributes"]
    assert attributes["subject"] == "Billing question"
    assert attributes["status"] == "open"
    assert attributes["priority"] == "medium"
    assert attributes["department"] is None
    assert attributes["assigned_to"] is None
    assert attributes["user_id"] == int(owner["id"])
    assert attributes["created_at"] == attributes["updated_at"]
    assert attributes["created_at"].endswith("Z") and len(attributes["created_at"]) == 27
    assert data["relationships"]["messages"] == {"data": []}
    assert data["relationships"]["assigned_to"] == {"data": None}
    assert data["relationships"]["user"] == {"data": {"type": "users", "id": owner["id"]}}


async def test_create_with_every_field_and_string_ids(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    body = {
        "subject": "Server down",
        "user_id": str(owner["id"]),
        "status": "on-hold",
        "priority": "urgent",
        "department": "technical",
        "assigned_to": agent["id"],
        "service_id": "42",
        "unknown_key": "ignored",
    }
    attributes = (await client.post("/tickets", json=body)).json()["data"]["attributes"]
    assert attributes["user_id"] == int(owner["id"])
    assert attributes["assigned_to"] == int(agent["id"])
    assert attributes["service_id"] == 42
    assert attributes["status"] == "on-hold"
    assert attributes["priority"] == "urgent"
    assert "unknown_key" not in attributes


async def test_create_accepts_a_jsonapi_document(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    body = {
        "data": {"type": "tickets", "attributes": {"subject": "Wrapped", "user_id": owner["id"]}}
    }
    response = await client.post("/tickets", json=body, headers={"Content-Type": MEDIA})
    assert response.status_code == 201
    assert response.json()["data"]["attributes"]["subject"] == "Wrapped"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "subject", "The subject field is required."),
        ({"subject": "   "}, "subject", "The subject field is required."),
        (
            {"subject": "x" * 256},
            "subject",
            "The subject field must not be greater than 255 characters.",
        ),
        ({"subject": 12}, "subject", "The subject field must be a string."),
        ({"user_id": "abc"}, "user_id", "The user id field must be an integer."),
        ({"user_id": True}, "user_id", "The user id field must be an integer."),
        ({"user_id": 1.5}, "user_id", "The user id field must be an integer."),
        ({"user_id": -1}, "user_id", "The user id field must be an integer."),
        ({"user_id": 2**70}, "user_id", "The user id field must be an integer."),
        ({"status": "pending"}, "status", "The selected status is invalid."),
        ({"status": None}, "status", "The status field is required."),
        ({"priority": "critical"}, "priority", "The selected priority is invalid."),
        ({"department": "Sales"}, "department", "The selected department is invalid."),
        ({"assigned_to": "x"}, "assigned_to", "The assigned to field must be an integer."),
        ({"service_id": 0}, "service_id", "The service id field must be an integer."),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, body: dict[str, object], field: str, message: str
) -> None:
    owner = await factories.user(client)
    full = {"subject": "ok", "user_id": owner["id"], **body}
    if body == {}:
        full = {}
    response = await client.post("/tickets", json=full)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_failed"
    assert message in payload["errors"][field]
    assert (await client.get("/tickets")).json()["meta"]["total"] == 0


async def test_create_refers_to_missing_or_wrong_users(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    response = await client.post("/tickets", json={"subject": "x", "user_id": 999})
    assert response.status_code == 422
    assert response.json()["errors"] == {"user_id": ["The selected user id is invalid."]}
    customer = await factories.user(client)
    response = await client.post(
        "/tickets", json={"subject": "x", "user_id": owner["id"], "assigned_to": customer["id"]}
    )
    assert response.status_code == 422
    assert "assigned_to" in response.json()["errors"]
    assert (await client.get("/tickets")).json()["meta"]["total"] == 0


async def test_get_with_messages_oldest_first(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await factories.user(client, first_name="John", last_name="Doe")
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"], assigned_to=agent["id"])
    first = await factories.message(app, ticket["id"], owner["id"], "I can't log in.")
    second = await factories.message(app, ticket["id"], agent["id"], "Password reset.")
    other = await factories.ticket(client, owner["id"])
    await factories.message(app, other["id"], owner["id"], "Unrelated")

    response = await client.get(f"/tickets/{ticket['id']}", params={"include": "messages,user"})
    document = response.json()
    assert document["data"]["relationships"]["messages"]["data"] == [
        {"type": "ticket_messages", "id": str(first)},
        {"type": "ticket_messages", "id": str(second)},
    ]
    included = {(item["type"], item["id"]): item for item in document["included"]}
    assert set(included) == {
        ("users", owner["id"]),
        ("ticket_messages", str(first)),
        ("ticket_messages", str(second)),
    }
    assert included[("ticket_messages", str(first))]["attributes"]["message"] == "I can't log in."
    assert included[("ticket_messages", str(second))]["attributes"]["user_id"] == int(agent["id"])
    assert included[("users", owner["id"])]["attributes"]["first_name"] == "John"
    assert "password" not in included[("users", owner["id"])]["attributes"]


async def test_include_assigned_to_and_dedup(client: httpx.AsyncClient) -> None:
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, agent["id"], assigned_to=agent["id"])
    document = (
        await client.get(f"/tickets/{ticket['id']}", params={"include": "user,assigned_to"})
    ).json()
    assert document["data"]["relationships"]["assigned_to"]["data"] == {
        "type": "users",
        "id": agent["id"],
    }
    assert [(i["type"], i["id"]) for i in document["included"]] == [("users", agent["id"])]


async def test_update_put_and_patch_change_only_sent_fields(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    ticket = await factories.ticket(
        client, owner["id"], department="billing", assigned_to=agent["id"]
    )
    response = await client.put(
        f"/tickets/{ticket['id']}", json={"status": "closed", "priority": "low"}
    )
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert (attributes["status"], attributes["priority"]) == ("closed", "low")
    assert attributes["department"] == "billing"
    assert attributes["assigned_to"] == int(agent["id"])
    assert attributes["updated_at"] > ticket["attributes"]["updated_at"]

    response = await client.patch(
        f"/tickets/{ticket['id']}", json={"assigned_to": None, "department": ""}
    )
    attributes = response.json()["data"]["attributes"]
    assert attributes["assigned_to"] is None
    assert attributes["department"] is None
    assert attributes["status"] == "closed"


async def test_update_with_no_change_keeps_updated_at(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    response = await client.patch(f"/tickets/{ticket['id']}", json={"status": "open"})
    assert response.json()["data"]["attributes"]["updated_at"] == ticket["attributes"]["updated_at"]
    response = await client.put(
        f"/tickets/{ticket['id']}", content=b"", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200


async def test_update_validation_writes_nothing(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    response = await client.patch(
        f"/tickets/{ticket['id']}", json={"subject": "New subject", "status": "bogus"}
    )
    assert response.status_code == 422
    response = await client.patch(
        f"/tickets/{ticket['id']}", json={"subject": "New subject", "user_id": 12345}
    )
    assert response.status_code == 422
    current = (await client.get(f"/tickets/{ticket['id']}")).json()["data"]["attributes"]
    assert current["subject"] == "Something is broken"
    response = await client.patch(f"/tickets/{ticket['id']}", json={"subject": None})
    assert response.json()["errors"] == {"subject": ["The subject field is required."]}


async def test_delete_removes_ticket_and_messages(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    await factories.message(app, ticket["id"], owner["id"], "hello")
    response = await client.delete(f"/tickets/{ticket['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/tickets/{ticket['id']}")).status_code == 404
    assert (await client.delete(f"/tickets/{ticket['id']}")).status_code == 404
    async with app.state.db.read() as conn:
        from sqlalchemy import func, select

        from supportdesk.tables import ticket_messages

        assert await conn.fetch_value(select(func.count()).select_from(ticket_messages)) == 0


@pytest.mark.parametrize("bad_id", ["abc", "1abc", "0", "-1", "99999999999999999999999", "1.0"])
async def test_unknown_or_malformed_ids_are_404(client: httpx.AsyncClient, bad_id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, f"/tickets/{bad_id}", json={} if method == "PATCH" else None
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_ticket_settings(client: httpx.AsyncClient) -> None:
    document = (await client.get("/ticket-settings")).json()
    assert document["data"]["type"] == "ticket_settings"
    assert document["data"]["attributes"]["priorities"] == ["low", "medium", "high", "urgent"]
    assert document["data"]["attributes"]["statuses"][0] == "open"
    assert document["data"]["attributes"]["departments"] == ["technical", "billing", "sales"]
