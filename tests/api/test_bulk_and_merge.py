"""Bulk update (`PATCH /tickets`) and merge (`POST /tickets/{id}/merge`), SPEC section 12."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories
from tests.conftest import KeyFactory


@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, str]:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    return {"owner": owner["id"], "agent": agent["id"]}


async def tickets(client: httpx.AsyncClient, owner: str, count: int, **extra: Any) -> list[str]:
    return [(await factories.ticket(client, owner, **extra))["id"] for _ in range(count)]


async def attributes(client: httpx.AsyncClient, ticket_id: str) -> dict[str, Any]:
    data: dict[str, Any] = (await client.get(f"/tickets/{ticket_id}")).json()["data"]["attributes"]
    return data


async def feed(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    items = (await client.get("/events", params={"limit": "1000", **params})).json()["data"]
    return [item["attributes"] for item in items]


async def test_bulk_update_changes_every_ticket_with_one_event_each(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    ids = await tickets(client, people["owner"], 3)
    await client.patch(f"/tickets/{ids[1]}", json={"status": "closed"})
    before = await feed(client)
    response = await client.patch(
        "/tickets",
        json={
            "ids": [ids[2], ids[0], int(ids[1]), ids[0]],
            "changes": {"status": "closed", "assigned_to": people["agent"]},
        },
        params={"include": "assigned_to"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["id"] for item in body["data"]] == [ids[2], ids[0], ids[1]]
    for item in body["data"]:
        assert item["attributes"]["status"] == "closed"
        assert item["attributes"]["assigned_to"] == int(people["agent"])
        assert item["relationships"]["messages"] == {"data": []}
    assert [u["id"] for u in body["included"]] == [people["agent"]]
    events = (await feed(client))[len(before) :]
    assert [(e["event"], e["ticket_id"]) for e in events] == [
        ("ticket.updated", int(ids[0])),
        ("ticket.updated", int(ids[1])),
        ("ticket.updated", int(ids[2])),
    ]
    assert events[0]["changes"] == {
        "status": ["open", "closed"],
        "assigned_to": [None, int(people["agent"])],
    }
    assert events[1]["changes"] == {"assigned_to": [None, int(people["agent"])]}
    assert (await attributes(client, ids[1]))["resolved_at"] < events[2]["data"]["resolved_at"]

    # nothing to change: no event at all
    again = await client.patch("/tickets", json={"ids": ids, "changes": {"status": "closed"}})
    assert again.status_code == 200
    assert len(await feed(client)) == len(before) + 3


async def test_bulk_update_is_all_or_nothing(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    ids = await tickets(client, people["owner"], 2)
    events_before = len(await feed(client))
    cases: list[tuple[dict[str, Any], dict[str, list[str]] | str]] = [
        ({"ids": [ids[0], 999999, ids[1], 999998], "changes": {"priority": "high"}}, "ids"),
        ({"ids": ids, "changes": {"priority": "whenever"}}, "changes.priority"),
        (
            {"ids": ids, "changes": {"priority": "high", "assigned_to": people["owner"]}},
            "changes.assigned_to",
        ),
        ({"ids": ids, "changes": {"subject": ""}}, "changes.subject"),
        ({"ids": ids, "changes": {}}, "changes"),
        ({"ids": ids, "changes": {"colour": "red"}}, "changes"),
        ({"ids": ids, "changes": "closed"}, "changes"),
        ({"ids": ids}, "changes"),
        ({"ids": [], "changes": {"priority": "high"}}, "ids"),
        ({"ids": list(range(1, 502)), "changes": {"priority": "high"}}, "ids"),
        ({"ids": [ids[0], "x"], "changes": {"priority": "high"}}, "ids"),
        ({"ids": ids[0], "changes": {"priority": "high"}}, "ids"),
        ({"changes": {"priority": "high"}}, "ids"),
    ]
    for body, field in cases:
        response = await client.patch("/tickets", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["code"] == "validation_failed"
        assert field in response.json()["errors"], (body, response.json())
    missing = await client.patch(
        "/tickets", json={"ids": [ids[0], 999999, 999998], "changes": {"priority": "high"}}
    )
    assert missing.json()["errors"] == {"ids": ["No ticket with id 999998, 999999."]}
    assert {(await attributes(client, i))["priority"] for i in ids} == {"medium"}
    assert len(await feed(client)) == events_before
    # 500 is the limit, not a failure
    fine = await client.patch(
        "/tickets", json={"ids": [ids[0]] * 500, "changes": {"priority": "low"}}
    )
    assert fine.status_code == 200


async def test_bulk_update_needs_the_update_permission(
    client: httpx.AsyncClient, make_key: KeyFactory, people: dict[str, str], app: Any
) -> None:
    ids = await tickets(client, people["owner"], 1)
    token = await make_key("tickets.view")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver/api/v1/admin",
        headers={"Authorization": f"Bearer {token}"},
    ) as viewer:
        response = await viewer.patch("/tickets", json={"ids": ids, "changes": {"priority": "low"}})
    assert response.status_code == 403


async def test_merge_moves_the_thread_and_closes_the_sources(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    owner, agent = people["owner"], people["agent"]
    target, first, second = await tickets(client, owner, 3)
    t1 = await factories.post_message(client, target, owner, "target asks")
    s1 = await factories.post_message(client, first, owner, "first asks")
    s2 = await factories.post_message(client, second, agent, "second answered")
    form = {"ticket_id": first, "user_id": owner, "message": "log attached"}
    upload = await client.post(
        "/ticket-messages", data=form, files={"attachments[]": ("log.txt", b"lines", "text/plain")}
    )
    s3 = upload.json()["data"]
    attachment = s3["relationships"]["attachments"]["data"][0]["id"]
    events_before = len(await feed(client))

    response = await client.post(
        f"/tickets/{target}/merge",
        json={"source_ids": [second, first], "user_id": agent},
        params={"include": "messages"},
    )
    assert response.status_code == 200, response.text
    merged = response.json()
    thread = merged["data"]["relationships"]["messages"]["data"]
    assert [m["id"] for m in thread] == [t1["id"], s1["id"], s2["id"], s3["id"]]
    times = [m["attributes"]["created_at"] for m in merged["included"]]
    assert times == sorted(times)
    metrics = merged["data"]["attributes"]
    assert metrics["message_count"] == 4
    assert metrics["first_response_at"] == s2["attributes"]["created_at"]
    assert metrics["last_customer_message_at"] == s3["attributes"]["created_at"]
    assert metrics["merged_into"] is None

    for source in (first, second):
        closed = await attributes(client, source)
        assert closed["status"] == "closed"
        assert closed["merged_into"] == int(target)
        assert closed["resolved_at"] == closed["updated_at"]
        assert closed["message_count"] == 1
        assert closed["first_response_at"] is None  # the note is no answer
        notes = (await client.get("/ticket-messages", params={"filter[ticket_id]": source})).json()[
            "data"
        ]
        assert [n["attributes"]["internal"] for n in notes] == [True]
        assert notes[0]["attributes"]["user_id"] == int(agent)
        assert f"#{target}" in notes[0]["attributes"]["message"]
    download = await client.get(f"/ticket-attachments/{attachment}/download")
    assert download.content == b"lines"

    events = (await feed(client))[events_before:]
    assert [(e["event"], e["ticket_id"]) for e in events] == [
        ("ticket_message.updated", int(target)),
        ("ticket_message.updated", int(target)),
        ("ticket_message.updated", int(target)),
        ("ticket.merged", int(second)),
        ("ticket_message.created", int(second)),
        ("ticket.merged", int(first)),
        ("ticket_message.created", int(first)),
    ]
    assert events[0]["changes"] == {"ticket_id": [int(first), int(target)]}
    assert events[3]["changes"] == {
        "status": ["replied", "closed"],
        "merged_into": [None, int(target)],
    }
    history = (await client.get(f"/tickets/{target}/history")).json()["data"]
    assert [h["attributes"]["event"] for h in history][-3:] == ["ticket_message.updated"] * 3
    late = await client.post(
        "/ticket-messages", json={"ticket_id": first, "user_id": owner, "message": "hello?"}
    )
    assert late.status_code == 422
    assert f"merged into #{target}" in late.json()["errors"]["ticket_id"][0]
    listed = await client.get("/tickets", params={"filter[merged_into]": target})
    assert sorted(t["id"] for t in listed.json()["data"]) == sorted([first, second])


async def test_merge_refusals_write_nothing(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    owner, agent = people["owner"], people["agent"]
    target, source, other = await tickets(client, owner, 3)
    assigned = (await factories.ticket(client, owner, assigned_to=agent))["id"]
    await factories.post_message(client, source, owner, "mine")
    events_before = len(await feed(client))

    async def merge(into: str, body: dict[str, Any]) -> httpx.Response:
        return await client.post(f"/tickets/{into}/merge", json=body)

    refusals: list[tuple[str, dict[str, Any], str]] = [
        (target, {"source_ids": [target], "user_id": agent}, "source_ids"),
        (target, {"source_ids": [source, target], "user_id": agent}, "source_ids"),
        (target, {"source_ids": [source, 999999], "user_id": agent}, "source_ids"),
        (target, {"source_ids": [], "user_id": agent}, "source_ids"),
        (target, {"source_ids": list(range(1, 102)), "user_id": agent}, "source_ids"),
        (target, {"user_id": agent}, "source_ids"),
        (target, {"source_ids": [source]}, "user_id"),  # unassigned: who signs the note?
        (target, {"source_ids": [source], "user_id": owner}, "user_id"),  # not staff
        (target, {"source_ids": [source], "user_id": 999999}, "user_id"),
    ]
    for into, body, field in refusals:
        response = await merge(into, body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["errors"], (body, response.json())
    assert (await merge("999999", {"source_ids": [source], "user_id": agent})).status_code == 404
    assert len(await feed(client)) == events_before
    assert (await attributes(client, source))["message_count"] == 1

    # the assignee signs by default
    done = await merge(assigned, {"source_ids": [source]})
    assert done.status_code == 200, done.text
    note = (await client.get("/ticket-messages", params={"filter[ticket_id]": source})).json()
    assert note["data"][0]["attributes"]["user_id"] == int(agent)
    # into one of its sources, into a merged ticket, a source merged already: all 422
    for into, sources in ((source, [assigned]), (source, [other]), (other, [source])):
        response = await merge(into, {"source_ids": sources, "user_id": agent})
        assert response.status_code == 422, response.text
        assert "merged into" in response.json()["message"]


async def test_another_customers_ticket_does_not_merge(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    target = (await factories.ticket(client, people["owner"]))["id"]
    stranger = (await factories.user(client))["id"]
    theirs = (await factories.ticket(client, stranger))["id"]
    response = await client.post(
        f"/tickets/{target}/merge", json={"source_ids": [theirs], "user_id": people["agent"]}
    )
    assert response.status_code == 422
    assert "another customer" in response.json()["errors"]["source_ids"][0]


async def test_deleting_a_merge_target_releases_its_sources(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    target, source = await tickets(client, people["owner"], 2)
    merged = await client.post(
        f"/tickets/{target}/merge", json={"source_ids": [source], "user_id": people["agent"]}
    )
    assert merged.status_code == 200
    assert (await client.delete(f"/tickets/{target}")).status_code == 204
    released = await attributes(client, source)
    assert released["merged_into"] is None and released["status"] == "closed"
    last = (await feed(client))[-1]
    assert (last["event"], last["ticket_id"]) == ("ticket.updated", int(source))
    assert last["changes"] == {"merged_into": [int(target), None]}
    # it takes messages again (a customer's reopens it), and merges
    await factories.post_message(client, source, people["owner"], "still there?")
    assert (await attributes(client, source))["status"] == "customer-reply"
