"""The users and roles endpoints."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests import factories


async def test_create_user_never_returns_the_password(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.post(
        "/users",
        json={
            "email": "John@Example.com",
            "first_name": "John",
            "password": "correct horse",
            "email_verified_at": "2024-01-01T10:00:00+01:00",
        },
    )
    assert response.status_code == 201
    assert response.headers["location"].endswith(f"/users/{response.json()['data']['id']}")
    attributes = response.json()["data"]["attributes"]
    assert "password" not in attributes
    assert "correct horse" not in response.text
    assert attributes["email"] == "John@Example.com"
    assert attributes["email_verified_at"] == "2024-01-01T09:00:00.000000Z"
    assert attributes["role_id"] is None
    async with app.state.db.read() as conn:
        from sqlalchemy import select

        from supportdesk.tables import users

        stored = await conn.fetch_value(select(users.c.password))
    assert stored.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "email", "The email field is required."),
        ({"email": "not-an-email"}, "email", "The email field must be a valid email address."),
        (
            {"email": "a@example.com", "password": "short"},
            "password",
            "The password field must be at least 8 characters.",
        ),
        (
            {"email": "a@example.com", "first_name": "x" * 256},
            "first_name",
            "The first name field must not be greater than 255 characters.",
        ),
        ({"email": "a@example.com", "role_id": 99}, "role_id", "The selected role id is invalid."),
        (
            {"email": "a@example.com", "email_verified_at": "yesterday"},
            "email_verified_at",
            "The email verified at field must be a valid date.",
        ),
    ],
)
async def test_create_user_validation(
    client: httpx.AsyncClient, body: dict[str, object], field: str, message: str
) -> None:
    response = await client.post("/users", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][field] == [message]
    assert (await client.get("/users")).json()["meta"]["total"] == 0


async def test_email_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    first = await factories.user(client, email="same@example.com")
    response = await client.post("/users", json={"email": "SAME@example.com"})
    assert response.status_code == 422
    assert response.json()["errors"] == {"email": ["The email has already been taken."]}
    other = await factories.user(client)
    response = await client.patch(f"/users/{other['id']}", json={"email": "Same@Example.com"})
    assert response.status_code == 422
    response = await client.patch(f"/users/{first['id']}", json={"email": "SAME@example.com"})
    assert response.status_code == 200


async def test_update_user(client: httpx.AsyncClient) -> None:
    user = await factories.user(client, last_name="Old")
    response = await client.put(f"/users/{user['id']}", json={"last_name": "New", "role_id": 1})
    attributes = response.json()["data"]["attributes"]
    assert (attributes["last_name"], attributes["role_id"], attributes["first_name"]) == (
        "New",
        1,
        "Test",
    )
    response = await client.patch(f"/users/{user['id']}", json={"role_id": None, "last_name": ""})
    attributes = response.json()["data"]["attributes"]
    assert attributes["role_id"] is None and attributes["last_name"] is None
    response = await client.patch(f"/users/{user['id']}", json={"email": None})
    assert response.status_code == 422


async def test_list_filters_sorts_and_includes(client: httpx.AsyncClient) -> None:
    a = await factories.user(client, email="Zed@example.com", first_name="Zed")
    b = await factories.staff(client, email="amy@example.com", first_name="Amy")
    ticket = await factories.ticket(client, a["id"])

    async def ids(**params: str) -> list[str]:
        return [d["id"] for d in (await client.get("/users", params=params)).json()["data"]]

    assert await ids(**{"filter[email]": "zed@EXAMPLE.com"}) == [a["id"]]
    assert await ids(**{"filter[role_id]": "null"}) == [a["id"]]
    assert await ids(**{"filter[role_id]": "1"}) == [b["id"]]
    assert await ids(**{"filter[first_name]": "Amy,Zed"}) == [a["id"], b["id"]]
    assert await ids(sort="email") == [b["id"], a["id"]]
    assert await ids(sort="-id") == [b["id"], a["id"]]
    document = (await client.get("/users", params={"include": "tickets,role"})).json()
    assert document["data"][0]["relationships"]["tickets"]["data"] == [
        {"type": "tickets", "id": ticket["id"]}
    ]
    assert document["data"][1]["relationships"]["role"]["data"] == {"type": "roles", "id": "1"}
    assert {(i["type"], i["id"]) for i in document["included"]} == {
        ("tickets", ticket["id"]),
        ("roles", "1"),
    }


async def test_delete_user_conflict_and_force(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    response = await client.delete(f"/users/{owner['id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert (await client.get(f"/tickets/{ticket['id']}")).status_code == 200
    assert (
        await client.delete(f"/users/{owner['id']}", params={"force": "maybe"})
    ).status_code == 400
    assert (
        await client.delete(f"/users/{owner['id']}", params={"force": "true"})
    ).status_code == 204
    assert (await client.get(f"/tickets/{ticket['id']}")).status_code == 404
    assert (await client.get(f"/users/{owner['id']}")).status_code == 404


async def test_delete_staff_unassigns_and_refuses_authors(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"], assigned_to=agent["id"])
    assert (await client.delete(f"/users/{agent['id']}")).status_code == 204
    assert (await client.get(f"/tickets/{ticket['id']}")).json()["data"]["attributes"][
        "assigned_to"
    ] is None
    writer = await factories.staff(client)
    await factories.message(app, ticket["id"], writer["id"], "a reply")
    assert (await client.delete(f"/users/{writer['id']}")).status_code == 409
    lonely = await factories.user(client)
    assert (await client.delete(f"/users/{lonely['id']}")).status_code == 204


async def test_roles(client: httpx.AsyncClient) -> None:
    document = (await client.get("/roles")).json()
    assert [(r["id"], r["attributes"]["name"]) for r in document["data"]] == [("1", "admin")]
