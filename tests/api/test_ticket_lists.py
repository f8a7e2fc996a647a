"""GET /tickets: the query language of SPEC section 4, end to end on both databases."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests import factories


async def ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    response = await client.get("/tickets", params=params)
    assert response.status_code == 200, response.text
    return [int(item["id"]) for item in response.json()["data"]]


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    alice = await factories.user(client)
    bob = await factories.user(client)
    agent = await factories.staff(client)
    specs = [
        (alice, "Cannot log in", "open", "high", "technical", agent, 7),
        (alice, "Invoice is wrong", "replied", "low", "billing", None, None),
        (bob, "Upgrade my plan", "customer-reply", "urgent", "sales", agent, 7),
        (bob, "Login page 100% broken_now", "closed", "medium", None, None, 8),
        (alice, "Refund please", "on-hold", "medium", "billing", agent, None),
    ]
    tickets = []
    for owner, subject, status, priority, department, assigned, service in specs:
        body: dict[str, Any] = {"subject": subject, "status": status, "priority": priority}
        if department:
            body["department"] = department
        if assigned:
            body["assigned_to"] = assigned["id"]
        if service:
            body["service_id"] = service
        tickets.append(await factories.ticket(client, owner["id"], **body))
    return {"alice": alice, "bob": bob, "agent": agent, "tickets": [int(t["id"]) for t in tickets]}


async def test_default_order_and_meta(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    document = (await client.get("/tickets")).json()
    assert [int(d["id"]) for d in document["data"]] == world["tickets"]
    meta = document["meta"]
    assert meta == {
        "current_page": 1,
        "from": 1,
        "to": 5,
        "per_page": 15,
        "path": "http://testserver/api/v1/admin/tickets",
        "total": 5,
        "last_page": 1,
    }
    assert document["links"]["prev"] is None and document["links"]["next"] is None
    assert "included" not in document


async def test_exact_filters(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    t = world["tickets"]
    assert await ids(client, **{"filter[status]": "open"}) == [t[0]]
    assert await ids(client, **{"filter[status]": "open,customer-reply"}) == [t[0], t[2]]
    assert await ids(client, **{"filter[status]": "ope"}) == []
    assert await ids(client, **{"filter[priority]": "medium"}) == [t[3], t[4]]
    assert await ids(client, **{"filter[user_id]": world["alice"]["id"]}) == [t[0], t[1], t[4]]
    assert await ids(client, **{"filter[id]": f"{t[1]},{t[3]}"}) == [t[1], t[3]]
    assert await ids(client, **{"filter[department]": "billing"}) == [t[1], t[4]]
    assert await ids(client, **{"filter[service_id]": "7"}) == [t[0], t[2]]
    assert await ids(client, **{"filter[assigned_to]": world["agent"]["id"]}) == [t[0], t[2], t[4]]
    assert await ids(client, **{"filter[assigned_to]": "null"}) == [t[1], t[3]]
    assert await ids(client, **{"filter[assigned_to]": ""}) == [t[1], t[3]]
    both = {
        "filter[status]": "open,replied,on-hold",
        "filter[user_id]": world["alice"]["id"],
        "filter[priority]": "low",
    }
    assert await ids(client, **both) == [t[1]]


async def test_filter_on_id_is_not_a_prefix_match(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    owner = world["alice"]
    for _ in range(10):
        await factories.ticket(client, owner["id"])
    assert world["tickets"][0] == 1
    assert await ids(client, **{"filter[id]": "1"}) == [1]
    assert await ids(client, **{"filter[id]": "1,11"}) == [1, 11]


async def test_subject_and_search(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    t = world["tickets"]
    assert await ids(client, **{"filter[subject]": "LOG"}) == [t[0], t[3]]
    assert await ids(client, **{"filter[subject]": "100%"}) == [t[3]]
    assert await ids(client, **{"filter[subject]": "_"}) == [t[3]]
    assert await ids(client, **{"filter[subject]": "%"}) == [t[3]]
    assert await ids(client, **{"filter[search]": "login broken"}) == [t[3]]
    assert await ids(client, **{"filter[search]": "plan upgrade"}) == [t[2]]
    assert await ids(client, **{"filter[search]": "refund nothing"}) == []


async def test_date_ranges(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    everything = await ids(client)
    assert await ids(client, **{"filter[created_after]": "2000-01-01"}) == everything
    assert await ids(client, **{"filter[created_before]": "2000-01-01T00:00:00Z"}) == []
    assert await ids(client, **{"filter[updated_after]": "2999-01-01T00:00:00+02:00"}) == []
    assert await ids(client, **{"filter[updated_before]": "2999-01-01"}) == everything
    document = (await client.get("/tickets")).json()
    third = document["data"][2]["attributes"]["created_at"]
    assert await ids(client, **{"filter[created_after]": third}) == everything[2:]
    assert await ids(client, **{"filter[created_before]": third}) == everything[:2]


async def test_sorts(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    t = world["tickets"]
    assert await ids(client, sort="-id") == t[::-1]
    assert await ids(client, sort="priority") == [t[1], t[3], t[4], t[0], t[2]]
    assert await ids(client, sort="-priority") == [t[2], t[0], t[4], t[3], t[1]]
    assert await ids(client, sort="status") == [t[0], t[1], t[2], t[4], t[3]]
    assert await ids(client, sort="-priority,status") == [t[2], t[0], t[4], t[3], t[1]]
    assert await ids(client, sort="priority,-id") == [t[1], t[4], t[3], t[0], t[2]]
    assert await ids(client, sort="subject") == [t[0], t[1], t[3], t[4], t[2]]
    assert await ids(client, sort="-created_at") == t[::-1]
    assert await ids(client, sort="updated_at") == t
    assert await ids(client, sort="department") == [t[1], t[4], t[2], t[0], t[3]]
    assert await ids(client, sort="-department") == [t[3], t[0], t[2], t[4], t[1]]


async def test_sort_follows_configured_priority_order(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await factories.user(client)
    low = await factories.ticket(client, owner["id"], priority="low")
    urgent = await factories.ticket(client, owner["id"], priority="urgent")
    high = await factories.ticket(client, owner["id"], priority="high")
    assert await ids(client, sort="-priority") == [
        int(urgent["id"]),
        int(high["id"]),
        int(low["id"]),
    ]


async def test_pagination_links_keep_the_query(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    params = {
        "per_page": "2",
        "filter[user_id]": world["alice"]["id"],
        "sort": "-id",
        "include": "user",
    }
    first = (await client.get("/tickets", params=params)).json()
    assert first["meta"]["total"] == 3 and first["meta"]["last_page"] == 2
    assert first["meta"]["from"] == 1 and first["meta"]["to"] == 2
    assert first["links"]["prev"] is None
    next_url = first["links"]["next"]
    query = parse_qs(urlsplit(next_url).query)
    assert query == {
        "per_page": ["2"],
        "filter[user_id]": [world["alice"]["id"]],
        "sort": ["-id"],
        "include": ["user"],
        "page": ["2"],
    }
    second = (await client.get(next_url)).json()
    assert second["meta"]["current_page"] == 2
    assert second["meta"]["from"] == 3 and second["meta"]["to"] == 3
    assert [int(d["id"]) for d in second["data"]] == [world["tickets"][0]]
    assert second["links"]["next"] is None
    assert parse_qs(urlsplit(second["links"]["prev"]).query)["page"] == ["1"]
    assert parse_qs(urlsplit(second["links"]["last"]).query)["page"] == ["2"]
    assert [i["id"] for i in second["included"]] == [world["alice"]["id"]]


async def test_empty_page_and_clamped_per_page(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    document = (await client.get("/tickets", params={"page": "9"})).json()
    assert document["data"] == []
    assert document["meta"]["from"] is None and document["meta"]["to"] is None
    assert document["links"]["next"] is None
    document = (await client.get("/tickets", params={"per_page": "1000"})).json()
    assert document["meta"]["per_page"] == 100
    assert len(document["data"]) == 5


async def test_include_messages_on_a_list(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    t = world["tickets"]
    alice = world["alice"]["id"]
    m1 = await factories.message(app, t[1], alice, "first")
    m2 = await factories.message(app, t[0], alice, "second")
    m3 = await factories.message(app, t[1], alice, "third")
    document = (await client.get("/tickets", params={"include": "messages"})).json()
    linkage = {
        d["id"]: [m["id"] for m in d["relationships"]["messages"]["data"]] for d in document["data"]
    }
    assert linkage[str(t[1])] == [str(m1), str(m3)]
    assert linkage[str(t[0])] == [str(m2)]
    assert linkage[str(t[2])] == []
    assert sorted(int(i["id"]) for i in document["included"]) == sorted([m1, m2, m3])
    plain = (await client.get("/tickets")).json()
    assert [m["id"] for m in plain["data"][1]["relationships"]["messages"]["data"]] == [
        str(m1),
        str(m3),
    ]


async def test_sparse_fieldsets(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    document = (
        await client.get(
            "/tickets",
            params={
                "fields[tickets]": "subject,status,user",
                "include": "user",
                "fields[users]": "email",
            },
        )
    ).json()
    item = document["data"][0]
    assert set(item["attributes"]) == {"subject", "status"}
    assert set(item["relationships"]) == {"user"}
    assert all(set(i["attributes"]) == {"email"} for i in document["included"])
    single = (
        await client.get(f"/tickets/{world['tickets'][0]}", params={"fields[tickets]": ""})
    ).json()
    assert single["data"]["attributes"] == {}
