"""Canned replies (SPEC section 12): CRUD, the query language, permissions, events, rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.canned_replies.placeholders import PLACEHOLDERS
from tests import factories
from tests.conftest import KeyFactory

ALL_PLACEHOLDERS = " | ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS)


async def reply(client: httpx.AsyncClient, **attributes: Any) -> dict[str, Any]:
    body = {"name": "Greeting", "body": "Hello {{ customer.first_name }}", **attributes}
    response = await client.post("/canned-replies", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def render(client: httpx.AsyncClient, reply_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/canned-replies/{reply_id}/render", json=body)


async def rendered(client: httpx.AsyncClient, reply_id: str, **body: Any) -> dict[str, Any]:
    response = await render(client, reply_id, **body)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def events(
    client: httpx.AsyncClient, pattern: str = "canned_reply.*"
) -> list[dict[str, Any]]:
    response = await client.get("/events", params={"filter[event]": pattern, "limit": 1000})
    assert response.status_code == 200, response.text
    return [item["attributes"] for item in response.json()["data"]]


async def total(client: httpx.AsyncClient) -> int:
    count: int = (await client.get("/canned-replies")).json()["meta"]["total"]
    return count


# --- create, read, update, delete ----------------------------------------------------------


async def test_create_and_retrieve(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/canned-replies",
        json={
            "name": "  Refund done  ",
            "body": " Hi {{customer.first_name}}! ",
            "department": "billing",
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/vnd.api+json"
    data = response.json()["data"]
    assert response.headers["location"].endswith(f"/api/v1/admin/canned-replies/{data['id']}")
    assert data["type"] == "canned_replies"
    attributes = data["attributes"]
    assert (attributes["name"], attributes["body"], attributes["department"]) == (
        "Refund done",
        "Hi {{customer.first_name}}!",
        "billing",
    )
    assert attributes["created_at"] == attributes["updated_at"]
    assert attributes["created_at"].endswith("Z")
    assert "relationships" not in data
    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == {"data": data}
    sparse = await client.get(
        f"/canned-replies/{data['id']}", params={"fields[canned_replies]": "name,department"}
    )
    assert sparse.json()["data"]["attributes"] == {"name": "Refund done", "department": "billing"}
    # a JSON:API document is accepted too, and department defaults to null
    wrapped = await client.post(
        "/canned-replies",
        json={"data": {"type": "canned_replies", "attributes": {"name": "n", "body": "b"}}},
        headers={"Content-Type": "application/vnd.api+json"},
    )
    assert wrapped.status_code == 201
    assert wrapped.json()["data"]["attributes"]["department"] is None


UNKNOWN = (
    "The body field has unknown placeholders: {names}. Known placeholders are "
    + ", ".join(PLACEHOLDERS)
    + "."
)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"body": "b"}, "name", "The name field is required."),
        ({"name": "   ", "body": "b"}, "name", "The name field is required."),
        ({"name": None, "body": "b"}, "name", "The name field is required."),
        ({"name": 5, "body": "b"}, "name", "The name field must be a string."),
        (
            {"name": "x" * 256, "body": "b"},
            "name",
            "The name field must not be greater than 255 characters.",
        ),
        ({"name": "n"}, "body", "The body field is required."),
        ({"name": "n", "body": " \n "}, "body", "The body field is required."),
        ({"name": "n", "body": ["b"]}, "body", "The body field must be a string."),
        (
            {"name": "n", "body": "x" * 5001},
            "body",
            "The body field must not be greater than 5000 characters.",
        ),
        (
            {"name": "n", "body": "Hi {{ customer.nickname }}"},
            "body",
            UNKNOWN.format(names="{{ customer.nickname }}"),
        ),
        (
            {"name": "n", "body": "{{ticket.id}} {{ Ticket.Id }} {{}} {{ ticket subject }} {{}}"},
            "body",
            UNKNOWN.format(names="{{ Ticket.Id }}, {{  }}, {{ ticket subject }}"),
        ),
        (
            {"name": "n", "body": "b", "department": "marketing"},
            "department",
            "The selected department is invalid.",
        ),
        (
            {"name": "n", "body": "b", "department": 3},
            "department",
            "The department field must be a string.",
        ),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = await client.post("/canned-replies", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert response.json()["errors"] == {field: [message]}
    assert await total(client) == 0


async def test_body_errors_of_the_request_itself(client: httpx.AsyncClient) -> None:
    bad_json = await client.post(
        "/canned-replies", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"
    text = await client.post(
        "/canned-replies", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    array = await client.post("/canned-replies", json=["x"])
    assert array.status_code == 422
    assert await total(client) == 0


async def test_update_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    created = await reply(client, name="Old", department="sales")
    path = f"/canned-replies/{created['id']}"
    response = await client.patch(path, json={"name": " New "})
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert (attributes["name"], attributes["body"], attributes["department"]) == (
        "New",
        created["attributes"]["body"],
        "sales",
    )
    assert attributes["updated_at"] > created["attributes"]["updated_at"]
    response = await client.put(path, json={"department": None, "body": "{{ agent.last_name }}"})
    attributes = response.json()["data"]["attributes"]
    assert (attributes["name"], attributes["body"], attributes["department"]) == (
        "New",
        "{{ agent.last_name }}",
        None,
    )
    # sending the same values changes nothing, not even updated_at
    same = await client.patch(path, json={"name": "New", "department": None})
    assert same.json()["data"]["attributes"] == attributes
    assert (await client.get(path)).json()["data"]["attributes"] == attributes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"body": None}, "body"),
        ({"body": "{{ ticket.owner }}"}, "body"),
        ({"department": "nowhere"}, "department"),
    ],
)
async def test_update_validation(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    created = await reply(client)
    response = await client.patch(f"/canned-replies/{created['id']}", json=body)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]
    unchanged = await client.get(f"/canned-replies/{created['id']}")
    assert unchanged.json()["data"] == created


async def test_delete(client: httpx.AsyncClient) -> None:
    created = await reply(client)
    kept = await reply(client, name="Kept")
    response = await client.delete(f"/canned-replies/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert (await client.get(f"/canned-replies/{created['id']}")).status_code == 404
    assert (await client.delete(f"/canned-replies/{created['id']}")).status_code == 404
    assert [d["id"] for d in (await client.get("/canned-replies")).json()["data"]] == [kept["id"]]


@pytest.mark.parametrize("reply_id", ["999999", "0", "abc", "1.5", "-1", "9" * 30])
async def test_missing_canned_reply_is_404(client: httpx.AsyncClient, reply_id: str) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    path = f"/canned-replies/{reply_id}"
    for response in (
        await client.get(path),
        await client.patch(path, json={"name": "x"}),
        await client.put(path, json={"name": "x"}),
        await client.delete(path),
        await render(client, reply_id, ticket_id=int(ticket["id"])),
    ):
        assert response.status_code == 404, response.request
        assert response.json()["code"] == "not_found"


# --- the query language --------------------------------------------------------------------


async def test_list_filters(client: httpx.AsyncClient) -> None:
    refund = await reply(client, name="Refund issued", department="billing")
    invoice = await reply(client, name="Invoice copy", department="billing")
    reset = await reply(client, name="Password reset", department="technical")
    hello = await reply(client, name="Hello 100%_sure", department=None)

    async def ids(**params: str) -> list[str]:
        response = await client.get("/canned-replies", params=params)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    assert await ids() == [refund["id"], invoice["id"], reset["id"], hello["id"]]
    assert await ids(**{"filter[id]": f"{reset['id']},{refund['id']}"}) == [
        refund["id"],
        reset["id"],
    ]
    assert await ids(**{"filter[department]": "billing"}) == [refund["id"], invoice["id"]]
    assert await ids(**{"filter[department]": "null"}) == [hello["id"]]
    assert await ids(**{"filter[department]": ""}) == [hello["id"]]
    assert await ids(**{"filter[department]": "technical, NULL"}) == [reset["id"], hello["id"]]
    assert await ids(**{"filter[department]": "sales"}) == []
    assert await ids(**{"filter[name]": "RESET"}) == [reset["id"]]
    assert await ids(**{"filter[name]": "S"}) == [refund["id"], reset["id"], hello["id"]]
    # LIKE's wildcards are matched literally
    assert await ids(**{"filter[name]": "%_"}) == [hello["id"]]
    assert await ids(**{"filter[name]": "_"}) == [hello["id"]]
    assert await ids(**{"filter[name]": "s", "filter[department]": "billing"}) == [refund["id"]]


async def test_list_sorts_and_paging(client: httpx.AsyncClient) -> None:
    charlie = await reply(client, name="charlie", department="billing")
    alpha = await reply(client, name="alpha", department=None)
    bravo = await reply(client, name="bravo", department="technical")
    delta = await reply(client, name="delta", department="billing")
    await client.patch(f"/canned-replies/{charlie['id']}", json={"body": "changed"})

    async def ids(sort: str) -> list[str]:
        response = await client.get("/canned-replies", params={"sort": sort})
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    assert await ids("name") == [alpha["id"], bravo["id"], charlie["id"], delta["id"]]
    assert await ids("-name") == [delta["id"], charlie["id"], bravo["id"], alpha["id"]]
    # nulls last ascending, first descending; ties by id in the last key's direction
    assert await ids("department") == [charlie["id"], delta["id"], bravo["id"], alpha["id"]]
    assert await ids("-department,name") == [alpha["id"], bravo["id"], charlie["id"], delta["id"]]
    assert await ids("-created_at") == [delta["id"], bravo["id"], alpha["id"], charlie["id"]]
    assert await ids("created_at") == [charlie["id"], alpha["id"], bravo["id"], delta["id"]]
    assert (await ids("-updated_at"))[0] == charlie["id"]
    assert await ids("-id") == [delta["id"], bravo["id"], alpha["id"], charlie["id"]]

    response = await client.get(
        "/canned-replies",
        params={"sort": "name", "per_page": "3", "page": "2", "filter[name]": "a"},
    )
    document = response.json()
    assert [d["id"] for d in document["data"]] == [delta["id"]]
    assert document["meta"] | {"path": None} == {
        "current_page": 2,
        "from": 4,
        "to": 4,
        "per_page": 3,
        "path": None,
        "total": 4,
        "last_page": 2,
    }
    assert document["meta"]["path"].endswith("/api/v1/admin/canned-replies")
    assert (
        "filter%5Bname%5D=a" in document["links"]["prev"] and "page=1" in document["links"]["prev"]
    )
    assert document["links"]["next"] is None
    empty = (await client.get("/canned-replies", params={"page": "9"})).json()
    assert empty["data"] == [] and empty["meta"]["from"] is None


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"filter[subject]": "x"}, 400),
        ({"filter[body]": "x"}, 400),
        ({"filter[id]": "abc"}, 400),
        ({"sort": "body"}, 400),
        ({"sort": "-priority"}, 400),
        ({"include": "user"}, 400),
        ({"fields[canned_replies]": "subject"}, 400),
        ({"fields[tickets]": "subject"}, 400),
        ({"page": "0"}, 422),
        ({"per_page": "x"}, 422),
    ],
)
async def test_list_query_errors(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    await reply(client)
    response = await client.get("/canned-replies", params=params)
    assert response.status_code == status, response.text
    assert response.json()["code"] == ("invalid_query" if status == 400 else "validation_failed")


async def test_list_fields(client: httpx.AsyncClient) -> None:
    await reply(client, name="One")
    response = await client.get("/canned-replies", params={"fields[canned_replies]": "name"})
    assert [d["attributes"] for d in response.json()["data"]] == [{"name": "One"}]


# --- permissions ---------------------------------------------------------------------------

Call = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def call(app: FastAPI) -> AsyncIterator[Call]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver/api/v1/admin"
    ) as http:

        async def send(method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await http.request(method, path, headers=headers, **kwargs)

        yield send


async def test_each_endpoint_needs_its_permission(
    client: httpx.AsyncClient, call: Call, make_key: KeyFactory
) -> None:
    target = await reply(client)
    item = f"/canned-replies/{target['id']}"
    body = {"name": "n", "body": "b"}
    cases = [
        ("GET", "/canned-replies", {}, "canned_replies.view", 200),
        ("GET", item, {}, "canned_replies.view", 200),
        ("POST", "/canned-replies", body, "canned_replies.create", 201),
        ("PATCH", item, body, "canned_replies.update", 200),
        ("PUT", item, body, "canned_replies.update", 200),
        ("DELETE", item, {}, "canned_replies.delete", 204),
    ]
    everything_else = await make_key("tickets.view", "tickets.create", "users.view")
    for method, path, payload, permission, success in cases:
        assert (await call(method, path, None, json=payload)).status_code == 401
        forbidden = await call(method, path, everything_else, json=payload)
        assert forbidden.status_code == 403, (method, path)
        assert forbidden.json()["code"] == "forbidden"
        assert permission in forbidden.json()["message"]
        others = [c[3] for c in cases if c[3] != permission]
        # every other canned-replies permission is not enough either
        assert (await call(method, path, await make_key(*others), json=payload)).status_code == 403
        allowed = await call(method, path, await make_key(permission), json=payload)
        assert allowed.status_code == success, (method, path, allowed.text)
    # 403 comes before 404 and before validation
    viewer = await make_key("canned_replies.view")
    assert (await call("DELETE", "/canned-replies/999999", viewer)).status_code == 403
    assert (await call("POST", "/canned-replies", viewer, json={})).status_code == 403
    assert (await call("GET", "/canned-replies/999999", None)).status_code == 401
    # the admin. alias
    alias = await make_key("admin.canned_replies.view")
    assert (await call("GET", "/canned-replies", alias)).status_code == 200


async def test_render_needs_canned_replies_view_and_tickets_view(
    client: httpx.AsyncClient, call: Call, make_key: KeyFactory
) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    target = await reply(client)
    path = f"/canned-replies/{target['id']}/render"
    body = {"ticket_id": int(ticket["id"])}
    assert (await call("POST", path, None, json=body)).status_code == 401
    for permissions in (
        ("canned_replies.view",),
        ("tickets.view",),
        ("canned_replies.create", "canned_replies.update", "tickets.view"),
    ):
        response = await call("POST", path, await make_key(*permissions), json=body)
        assert response.status_code == 403, permissions
    # the tickets.view check comes before the 404 and the body's validation too
    only_replies = await make_key("canned_replies.view")
    assert (await call("POST", "/canned-replies/999999/render", only_replies)).status_code == 403
    both = await make_key("canned_replies.view", "tickets.view")
    assert (await call("POST", path, both, json=body)).status_code == 200


# --- events --------------------------------------------------------------------------------


async def test_writes_record_events(client: httpx.AsyncClient) -> None:
    created = await reply(client, name="First", department="billing")
    path = f"/canned-replies/{created['id']}"
    updated = (await client.patch(path, json={"name": "Second", "body": "Bye"})).json()["data"]
    await client.patch(path, json={"name": "Second"})  # no change, no event
    await client.patch(path, json={"department": "nowhere"})  # refused, no event
    await client.delete(path)
    items = await events(client)
    assert [item["event"] for item in items] == [
        "canned_reply.created",
        "canned_reply.updated",
        "canned_reply.deleted",
    ]
    resource = {"type": "canned_replies", "id": int(created["id"])}
    assert all(item["resource"] == resource for item in items)
    assert all(item["ticket_id"] is None for item in items)
    assert all(item["actor"]["type"] == "api_key" for item in items)
    assert items[0]["data"] == created["attributes"] and items[0]["changes"] is None
    assert items[1]["data"] == updated["attributes"]
    assert items[1]["changes"] == {
        "name": ["First", "Second"],
        "body": [created["attributes"]["body"], "Bye"],
    }
    assert items[2]["data"] == updated["attributes"] and items[2]["changes"] is None
    assert [i["event"] for i in await events(client, "canned_reply.updated")] == [
        "canned_reply.updated"
    ]


async def test_webhooks_can_subscribe_to_canned_reply_events(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, app: FastAPI
) -> None:
    allowed = app.state.settings.model_copy(update={"webhook_allow_private": True})
    monkeypatch.setattr(app.state, "settings", allowed)
    for events_list in (["canned_reply.*"], ["canned_reply.created", "canned_reply.deleted"]):
        response = await client.post(
            "/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": events_list}
        )
        assert response.status_code == 201, response.text
    refused = await client.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["canned_replies.*"]}
    )
    assert refused.status_code == 422


async def test_render_writes_nothing(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    target = await reply(client)
    before = await events(client, "*")
    await rendered(client, target["id"], ticket_id=int(ticket["id"]))
    assert await events(client, "*") == before
    assert (await client.get(f"/canned-replies/{target['id']}")).json()["data"] == target


# --- rendering -----------------------------------------------------------------------------


async def test_render_fills_every_placeholder(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client, first_name="Ada", last_name="Lovelace")
    assignee = await factories.staff(client, first_name="Grace", last_name="Hopper")
    agent = await factories.staff(client, first_name="Alan", last_name="Turing")
    ticket = await factories.ticket(
        client,
        owner["id"],
        subject="Cannot log in",
        priority="high",
        department="technical",
        assigned_to=int(assignee["id"]),
    )
    target = await reply(client, body=ALL_PLACEHOLDERS, department="technical")
    response = await render(client, target["id"], ticket_id=ticket["id"], user_id=agent["id"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.api+json"
    assert response.json() == {
        "data": {
            "type": "canned_reply_renders",
            "id": target["id"],
            "attributes": {
                "canned_reply_id": int(target["id"]),
                "ticket_id": int(ticket["id"]),
                "agent_id": int(agent["id"]),
                "body": " | ".join(
                    [
                        ticket["id"],
                        "Cannot log in",
                        "open",
                        "high",
                        "technical",
                        "Ada",
                        "Lovelace",
                        owner["attributes"]["email"],
                        "Alan",
                        "Turing",
                    ]
                ),
            },
        }
    }
    # one value per placeholder, in the same order as PLACEHOLDERS
    assert len(PLACEHOLDERS) == 10


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{{ticket.id}}", "{id}"),
        ("{{   ticket.id\t}}", "{id}"),
        ("{{\nticket.subject\n}}", "Broken"),
        ("#{{ ticket.id }}: {{ ticket.subject }}, {{ticket.id}}", "#{id}: Broken, {id}"),
        ("{{{ ticket.id }}}", "{{id}}"),
        ("{ ticket.id } {{ ticket.id } ticket.id }}", "{ ticket.id } {{ ticket.id } ticket.id }}"),
        ("no placeholders, just {braces}", "no placeholders, just {braces}"),
    ],
)
async def test_render_placeholder_syntax(
    client: httpx.AsyncClient, body: str, expected: str
) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"], subject="Broken")
    target = await reply(client, body=body)
    result = await rendered(client, target["id"], ticket_id=ticket["id"])
    assert result["body"] == expected.replace("{id}", ticket["id"])


async def test_render_agent_defaults_to_the_assignee(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client, first_name="Ada")
    assignee = await factories.staff(client, first_name="Grace", last_name="Hopper")
    other = await factories.staff(client, first_name="Alan", last_name=None)
    assigned = await factories.ticket(client, owner["id"], assigned_to=int(assignee["id"]))
    unassigned = await factories.ticket(client, owner["id"])
    target = await reply(client, body="{{ agent.first_name }}/{{ agent.last_name }}")

    result = await rendered(client, target["id"], ticket_id=assigned["id"])
    assert (result["agent_id"], result["body"]) == (int(assignee["id"]), "Grace/Hopper")
    # an explicit staff user wins over the assignee; a null attribute renders empty
    result = await rendered(client, target["id"], ticket_id=assigned["id"], user_id=other["id"])
    assert (result["agent_id"], result["body"]) == (int(other["id"]), "Alan/")
    # `user_id: null` is the same as leaving it out
    result = await rendered(client, target["id"], ticket_id=assigned["id"], user_id=None)
    assert result["agent_id"] == int(assignee["id"])
    # no assignee and no user_id: no agent, empty agent placeholders
    result = await rendered(client, target["id"], ticket_id=unassigned["id"])
    assert (result["agent_id"], result["body"]) == (None, "/")
    # ids as strings of digits, as Paymenter clients send them
    result = await rendered(
        client, target["id"], ticket_id=str(unassigned["id"]), user_id=str(other["id"])
    )
    assert (result["ticket_id"], result["agent_id"]) == (int(unassigned["id"]), int(other["id"]))


async def test_render_customer_with_empty_names(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client, first_name=None)
    ticket = await factories.ticket(client, owner["id"])
    target = await reply(client, body="Hi {{ customer.first_name }}{{ customer.last_name }},")
    assert (await rendered(client, target["id"], ticket_id=ticket["id"]))["body"] == "Hi ,"


async def test_render_inserts_values_literally(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client, first_name="{{ ticket.id }}", last_name="<b>&amp;")
    agent = await factories.staff(client, first_name="{{customer.first_name}}")
    ticket = await factories.ticket(
        client, owner["id"], subject="{{ agent.first_name }} and {{ unknown }} {{"
    )
    target = await reply(
        client,
        body="{{ ticket.subject }}}}|{{ customer.first_name }}|{{ customer.last_name }}|"
        "{{ agent.first_name }}",
    )
    result = await rendered(client, target["id"], ticket_id=ticket["id"], user_id=agent["id"])
    assert result["body"] == (
        "{{ agent.first_name }} and {{ unknown }} {{}}|{{ ticket.id }}|<b>&amp;|"
        "{{customer.first_name}}"
    )


@pytest.mark.parametrize(
    ("ticket_department", "reply_department", "fits"),
    [
        ("billing", "billing", True),
        ("billing", None, True),
        (None, None, True),
        ("technical", None, True),
        ("technical", "billing", False),
        (None, "billing", False),
    ],
)
async def test_render_department_scope(
    client: httpx.AsyncClient,
    ticket_department: str | None,
    reply_department: str | None,
    fits: bool,
) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"], department=ticket_department)
    target = await reply(client, department=reply_department, body="{{ ticket.department }}!")
    response = await render(client, target["id"], ticket_id=ticket["id"])
    if fits:
        assert response.status_code == 200, response.text
        assert response.json()["data"]["attributes"]["body"] == f"{ticket_department or ''}!"
        return
    assert response.status_code == 422
    where = "has no department" if ticket_department is None else "is in the technical department"
    assert response.json()["errors"] == {
        "ticket_id": [
            f"The canned reply is for the billing department; ticket {ticket['id']} {where}."
        ]
    }


async def test_render_validation(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    staff = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"])
    target = await reply(client)
    not_staff = "The selected user id is invalid: it must be a staff user."
    cases: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
        ({}, {"ticket_id": ["The ticket id field is required."]}),
        ({"ticket_id": None}, {"ticket_id": ["The ticket id field is required."]}),
        ({"ticket_id": "abc"}, {"ticket_id": ["The ticket id field must be an integer."]}),
        ({"ticket_id": True}, {"ticket_id": ["The ticket id field must be an integer."]}),
        ({"ticket_id": 999999}, {"ticket_id": ["The selected ticket id is invalid."]}),
        (
            {"ticket_id": ticket["id"], "user_id": 1.5},
            {"user_id": ["The user id field must be an integer."]},
        ),
        # the ticket's owner is a customer, not an agent
        ({"ticket_id": ticket["id"], "user_id": owner["id"]}, {"user_id": [not_staff]}),
        ({"ticket_id": ticket["id"], "user_id": 999999}, {"user_id": [not_staff]}),
        (
            {"ticket_id": 999999, "user_id": owner["id"]},
            {"ticket_id": ["The selected ticket id is invalid."], "user_id": [not_staff]},
        ),
    ]
    for body, errors in cases:
        response = await render(client, target["id"], **body)
        assert response.status_code == 422, body
        assert response.json()["errors"] == errors, body
    ok = await render(client, target["id"], ticket_id=ticket["id"], user_id=staff["id"])
    assert ok.status_code == 200
    bad_json = await client.post(
        f"/canned-replies/{target['id']}/render",
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400


async def test_render_after_the_reply_changes(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client, first_name="Ada")
    ticket = await factories.ticket(client, owner["id"], department="sales")
    target = await reply(client, body="Hi {{ customer.first_name }}", department="billing")
    assert (await render(client, target["id"], ticket_id=ticket["id"])).status_code == 422
    await client.patch(
        f"/canned-replies/{target['id']}",
        json={"department": None, "body": "Bye {{customer.first_name}}"},
    )
    assert (await rendered(client, target["id"], ticket_id=ticket["id"]))["body"] == "Bye Ada"
