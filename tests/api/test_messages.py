"""The Ticket Messages API and the workflow each message drives (SPEC sections 3 and 6)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from supportdesk.config import Settings
from tests import factories
from tests.conftest import KeyFactory


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url, storage_dir=str(tmp_path / "s"), max_message_length=50
    )


@pytest.fixture
async def conversation(client: httpx.AsyncClient) -> dict[str, str]:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"], assigned_to=agent["id"])
    return {"owner": owner["id"], "agent": agent["id"], "ticket": ticket["id"]}


async def status(client: httpx.AsyncClient, ticket_id: str) -> str:
    value: str = (await client.get(f"/tickets/{ticket_id}")).json()["data"]["attributes"]["status"]
    return value


async def test_create_message(client: httpx.AsyncClient, conversation: dict[str, str]) -> None:
    response = await client.post(
        "/ticket-messages",
        json={
            "ticket_id": conversation["ticket"],
            "user_id": str(conversation["owner"]),
            "message": "  It is down.  ",
        },
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert response.headers["location"].endswith(f"/api/v1/admin/ticket-messages/{data['id']}")
    assert data["type"] == "ticket_messages"
    attributes = data["attributes"]
    assert attributes["message"] == "It is down."
    assert attributes["ticket_id"] == int(conversation["ticket"])
    assert attributes["user_id"] == int(conversation["owner"])
    assert attributes["created_at"] == attributes["updated_at"]
    assert data["relationships"] == {
        "ticket": {"data": {"type": "tickets", "id": conversation["ticket"]}},
        "user": {"data": {"type": "users", "id": conversation["owner"]}},
        "attachments": {"data": []},
    }
    ticket = (await client.get(f"/tickets/{conversation['ticket']}")).json()["data"]
    assert ticket["attributes"]["updated_at"] == attributes["created_at"]
    assert ticket["relationships"]["messages"]["data"] == [
        {"type": "ticket_messages", "id": data["id"]}
    ]


async def test_workflow_owner_and_staff_replies(
    client: httpx.AsyncClient, conversation: dict[str, str]
) -> None:
    ticket, owner, agent = conversation["ticket"], conversation["owner"], conversation["agent"]
    assert await status(client, ticket) == "open"
    await factories.post_message(client, ticket, owner, "first")
    assert await status(client, ticket) == "customer-reply"
    await factories.post_message(client, ticket, agent, "answer")
    assert await status(client, ticket) == "replied"
    other_customer = await factories.user(client)
    await factories.post_message(client, ticket, other_customer["id"], "not the owner")
    assert await status(client, ticket) == "replied"
    await client.patch(f"/tickets/{ticket}", json={"status": "closed"})
    await factories.post_message(client, ticket, owner, "it broke again")
    assert await status(client, ticket) == "customer-reply"


async def test_configured_workflow_statuses(
    database_url: str, tmp_path: Path, make_key: KeyFactory
) -> None:
    from supportdesk.app import create_app, lifespan

    custom = Settings(
        database_url=database_url,
        storage_dir=str(tmp_path / "c"),
        statuses="new,waiting,answered,done",
        owner_reply_status="waiting",
        staff_reply_status="answered",
        closed_status="done",
    )
    application = create_app(custom)
    async with lifespan(application):
        from supportdesk.auth.service import create_key

        _, token = await create_key(application.state.db, "t", ["*"], [])
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://t/api/v1/admin",
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            owner = await factories.user(http)
            ticket = await factories.ticket(http, owner["id"])
            assert ticket["attributes"]["status"] == "new"
            await factories.post_message(http, ticket["id"], owner["id"])
            assert await status(http, ticket["id"]) == "waiting"


async def test_concurrent_replies_keep_both_and_the_later_status(
    client: httpx.AsyncClient, conversation: dict[str, str]
) -> None:
    ticket, owner, agent = conversation["ticket"], conversation["owner"], conversation["agent"]
    for round_ in range(8):
        results = await asyncio.gather(
            factories.post_message(client, ticket, owner, f"owner {round_}"),
            factories.post_message(client, ticket, agent, f"agent {round_}"),
        )
        latest = max(results, key=lambda m: int(m["id"]))
        expected = "customer-reply" if latest["attributes"]["user_id"] == int(owner) else "replied"
        assert await status(client, ticket) == expected
    listing = (
        await client.get("/ticket-messages", params={"filter[ticket_id]": ticket, "per_page": 100})
    ).json()
    assert listing["meta"]["total"] == 16


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"message": "x"}, "ticket_id", "The ticket id field is required."),
        ({"ticket_id": "abc"}, "ticket_id", "The ticket id field must be an integer."),
        ({"ticket_id": 99999}, "ticket_id", "The selected ticket id is invalid."),
        ({"user_id": 99999}, "user_id", "The selected user id is invalid."),
        ({"message": "   "}, "message", "The message field is required."),
        ({"message": None}, "message", "The message field is required."),
        (
            {"message": "x" * 51},
            "message",
            "The message field must not be greater than 50 characters.",
        ),
        ({"message": 5}, "message", "The message field must be a string."),
    ],
)
async def test_create_validation_writes_nothing(
    client: httpx.AsyncClient,
    conversation: dict[str, str],
    body: dict[str, object],
    field: str,
    message: str,
) -> None:
    full = {
        "ticket_id": conversation["ticket"],
        "user_id": conversation["owner"],
        "message": "ok",
        **body,
    }
    if field == "ticket_id" and "ticket_id" not in body:
        del full["ticket_id"]
    response = await client.post("/ticket-messages", json=full)
    assert response.status_code == 422
    assert message in response.json()["errors"][field]
    assert (await client.get("/ticket-messages")).json()["meta"]["total"] == 0
    assert await status(client, conversation["ticket"]) == "open"


async def test_list_filters_sorts_and_includes(
    client: httpx.AsyncClient, conversation: dict[str, str]
) -> None:
    ticket, owner, agent = conversation["ticket"], conversation["owner"], conversation["agent"]
    other = await factories.ticket(client, owner)
    m1 = await factories.post_message(client, ticket, owner, "one")
    m2 = await factories.post_message(client, ticket, agent, "two")
    m3 = await factories.post_message(client, other["id"], owner, "three")

    async def ids(**params: str) -> list[str]:
        response = await client.get("/ticket-messages", params=params)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    assert await ids() == [m1["id"], m2["id"], m3["id"]]
    assert await ids(**{"filter[ticket_id]": ticket}) == [m1["id"], m2["id"]]
    assert await ids(**{"filter[user_id]": owner}) == [m1["id"], m3["id"]]
    assert await ids(**{"filter[id]": f"{m3['id']},{m1['id']}"}) == [m1["id"], m3["id"]]
    assert await ids(**{"filter[created_after]": m2["attributes"]["created_at"]}) == [
        m2["id"],
        m3["id"],
    ]
    assert await ids(**{"filter[created_before]": m2["attributes"]["created_at"]}) == [m1["id"]]
    assert await ids(sort="-created_at") == [m3["id"], m2["id"], m1["id"]]
    assert await ids(sort="-id", per_page="1", page="2") == [m2["id"]]
    document = (
        await client.get(
            "/ticket-messages",
            params={"include": "user,ticket,attachments", "filter[ticket_id]": ticket},
        )
    ).json()
    kinds = sorted((i["type"], i["id"]) for i in document["included"])
    assert kinds == sorted([("tickets", ticket), ("users", owner), ("users", agent)])
    assert (await client.get("/ticket-messages", params={"filter[ticket]": "1"})).status_code == 400
    assert (await client.get("/ticket-messages", params={"sort": "message"})).status_code == 400


async def test_ticket_include_messages_oldest_first(
    client: httpx.AsyncClient, conversation: dict[str, str]
) -> None:
    ticket, owner, agent = conversation["ticket"], conversation["owner"], conversation["agent"]
    ids = [
        (await factories.post_message(client, ticket, who, f"m{n}"))["id"]
        for n, who in enumerate([owner, agent, owner])
    ]
    document = (await client.get(f"/tickets/{ticket}", params={"include": "messages"})).json()
    assert [m["id"] for m in document["data"]["relationships"]["messages"]["data"]] == ids
    assert [i["attributes"]["message"] for i in document["included"]] == ["m0", "m1", "m2"]


async def test_get_update_delete(client: httpx.AsyncClient, conversation: dict[str, str]) -> None:
    message = await factories.post_message(
        client, conversation["ticket"], conversation["agent"], "draft"
    )
    path = f"/ticket-messages/{message['id']}"
    assert (await client.get(path)).json()["data"]["attributes"]["message"] == "draft"
    response = await client.put(path, json={"message": "final"})
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert attributes["message"] == "final"
    assert attributes["updated_at"] > attributes["created_at"]
    assert (await client.patch(path, json={"message": ""})).status_code == 422
    assert (await client.patch(path, json={"ticket_id": 12345})).status_code == 200
    assert (await client.get(path)).json()["data"]["attributes"]["ticket_id"] == int(
        conversation["ticket"]
    )
    assert await status(client, conversation["ticket"]) == "replied"
    assert (await client.delete(path)).status_code == 204
    assert (await client.get(path)).status_code == 404
    assert (await client.delete(path)).status_code == 404
    assert await status(client, conversation["ticket"]) == "replied"
    for bad in ("abc", "0", "99999999999999999999"):
        assert (await client.get(f"/ticket-messages/{bad}")).status_code == 404


async def test_permissions(
    app, make_key: KeyFactory, client: httpx.AsyncClient, conversation: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    message = await factories.post_message(client, conversation["ticket"], conversation["owner"])
    key = await make_key("ticket_messages.view")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://t/api/v1/admin",
        headers={"Authorization": f"Bearer {key}"},
    ) as http:
        assert (await http.get("/ticket-messages")).status_code == 200
        assert (
            await http.get(f"/ticket-messages/{message['id']}", params={"include": "attachments"})
        ).status_code == 200
        assert (await http.get("/ticket-messages", params={"include": "user"})).status_code == 403
        assert (await http.get("/ticket-messages", params={"include": "ticket"})).status_code == 403
        assert (await http.post("/ticket-messages", json={})).status_code == 403
        assert (await http.patch(f"/ticket-messages/{message['id']}", json={})).status_code == 403
        assert (await http.delete(f"/ticket-messages/{message['id']}")).status_code == 403
        assert (await http.get(f"/tickets/{conversation['ticket']}")).status_code == 403
    assert (
        await client.get(
            f"/ticket-messages/{message['id']}", headers={"Authorization": "Bearer nope"}
        )
    ).status_code == 401
