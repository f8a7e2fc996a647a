"""Conditional requests (SPEC section 12) on every single resource, on SQLite and PostgreSQL:
ETags on reads and writes, `If-None-Match` (304), `If-Match` (412, nothing written), and
concurrent writers that send the same `If-Match`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.config import Settings
from tests import factories
from tests.webhooks import create as create_webhook

HOOK_URL = "http://127.0.0.1:9/hook"  # never called: these tests run no dispatcher
STRONG = re.compile(r'^"[0-9a-f]{32}"$')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        storage_dir=str(tmp_path / "storage"),
        webhook_allow_private=True,
        jobs=False,
    )


@dataclass
class Case:
    """One resource of each type: its URL, the string attribute the tests change, and query
    variants whose documents differ."""

    type: str
    url: str
    attribute: str
    variants: list[dict[str, str]]
    parents: dict[str, Any] = field(default_factory=dict)

    def change(self, value: str) -> dict[str, str]:
        return {self.attribute: value}


async def _ticket_case(client: httpx.AsyncClient) -> Case:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"], subject="Original")
    await factories.post_message(client, ticket["id"], owner["id"])
    variants = [
        {},
        {"include": "messages"},
        {"include": "user"},
        {"include": "user,messages"},
        {"fields[tickets]": "subject"},
        {"fields[tickets]": "subject,status"},
    ]
    return Case("tickets", f"/tickets/{ticket['id']}", "subject", variants, {"owner": owner})


async def _message_case(client: httpx.AsyncClient) -> Case:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    message = await factories.post_message(client, ticket["id"], owner["id"], "Original")
    variants = [
        {},
        {"include": "user"},
        {"include": "ticket"},
        {"include": "attachments"},
        {"fields[ticket_messages]": "message"},
    ]
    parents = {"owner": owner, "ticket": ticket}
    return Case(
        "ticket_messages", f"/ticket-messages/{message['id']}", "message", variants, parents
    )


async def _user_case(client: httpx.AsyncClient) -> Case:
    user = await factories.staff(client, first_name="Original")
    variants = [{}, {"include": "role"}, {"include": "tickets"}, {"fields[users]": "email"}]
    return Case("users", f"/users/{user['id']}", "first_name", variants)


async def _webhook_case(client: httpx.AsyncClient) -> Case:
    webhook = await create_webhook(client, HOOK_URL, ["ticket.*"])
    variants = [{}, {"fields[webhooks]": "url"}, {"fields[webhooks]": "url,events"}]
    return Case("webhooks", f"/webhooks/{webhook['id']}", "description", variants)


async def _canned_reply_case(client: httpx.AsyncClient) -> Case:
    response = await client.post("/canned-replies", json={"name": "Original", "body": "Hi"})
    assert response.status_code == 201, response.text
    reply = response.json()["data"]
    variants = [{}, {"fields[canned_replies]": "name"}, {"fields[canned_replies]": "name,body"}]
    return Case("canned_replies", f"/canned-replies/{reply['id']}", "name", variants)


MAKERS = {
    "canned_replies": _canned_reply_case,
    "tickets": _ticket_case,
    "ticket_messages": _message_case,
    "users": _user_case,
    "webhooks": _webhook_case,
}


@pytest.fixture(params=list(MAKERS))
async def case(request: pytest.FixtureRequest, client: httpx.AsyncClient) -> Case:
    make: Callable[[httpx.AsyncClient], Any] = MAKERS[request.param]
    made: Case = await make(client)
    return made


async def read(
    client: httpx.AsyncClient,
    url: str,
    params: dict[str, str] | None = None,
    if_none_match: str | None = None,
) -> httpx.Response:
    headers = {} if if_none_match is None else {"If-None-Match": if_none_match}
    response = await client.get(url, params=params, headers=headers)
    assert response.status_code in (200, 304), response.text
    return response


async def tag(client: httpx.AsyncClient, url: str, params: dict[str, str] | None = None) -> str:
    response = await read(client, url, params)
    assert response.status_code == 200
    etag: str = response.headers["etag"]
    return etag


async def event_count(client: httpx.AsyncClient) -> int:
    response = await client.get("/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


def assert_412(response: httpx.Response) -> None:
    assert response.status_code == 412, response.text
    body = response.json()
    assert body["code"] == "precondition_failed"
    assert body["message"]
    assert "etag" not in response.headers


# --- ETags on reads ---------------------------------------------------------------------


async def test_etag_is_strong_stable_and_follows_the_bytes(
    client: httpx.AsyncClient, case: Case
) -> None:
    """Same bytes, same tag; different bytes (every include/fields variant), different tags."""
    by_tag: dict[str, bytes] = {}
    for params in case.variants:
        first = await read(client, case.url, params)
        again = await read(client, case.url, params)
        assert first.status_code == again.status_code == 200
        assert STRONG.match(first.headers["etag"]), first.headers["etag"]
        assert first.headers["etag"] == again.headers["etag"]
        assert first.content == again.content
        by_tag[first.headers["etag"]] = first.content
    assert len(by_tag) == len(case.variants)
    assert len(set(by_tag.values())) == len(case.variants)


async def test_update_moves_the_etag_and_a_noop_does_not(
    client: httpx.AsyncClient, case: Case
) -> None:
    before = await tag(client, case.url)
    changed = await client.patch(case.url, json=case.change("Changed"))
    assert changed.status_code == 200, changed.text
    after = await tag(client, case.url)
    assert after != before
    # the answer of the write carries the tag a GET of the same URL now sends
    assert changed.headers["etag"] == after
    noop = await client.patch(case.url, json=case.change("Changed"))
    assert noop.status_code == 200
    assert noop.headers["etag"] == after == await tag(client, case.url)
    # a PUT and a variant's write answer with that variant's tag
    variant = case.variants[-1]
    put = await client.put(case.url, params=variant, json=case.change("Changed"))
    assert put.headers["etag"] == await tag(client, case.url, variant) != after


async def test_create_answers_with_the_etag_of_its_get(client: httpx.AsyncClient) -> None:
    async def check(created: httpx.Response, params: dict[str, str] | None = None) -> str:
        assert created.status_code == 201, created.text
        assert created.headers["etag"] == await tag(client, created.headers["location"], params)
        return str(created.json()["data"]["id"])

    owner = await check(await client.post("/users", json={"email": "new@example.com"}))
    ticket = await check(
        await client.post(
            "/tickets", params={"include": "user"}, json={"subject": "Hi", "user_id": owner}
        ),
        {"include": "user"},
    )
    await check(
        await client.post(
            "/ticket-messages", json={"ticket_id": ticket, "user_id": owner, "message": "Hello"}
        )
    )
    webhook = await client.post("/webhooks", json={"url": HOOK_URL, "events": ["*"]})
    assert webhook.status_code == 201
    # the answer shows the secret, a GET never does: the tag is the GET's
    assert webhook.headers["etag"] == await tag(client, webhook.headers["location"])


async def test_related_changes_move_the_tags_that_show_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    url = f"/tickets/{ticket['id']}"
    plain, with_user = await tag(client, url), await tag(client, url, {"include": "user"})

    # the owner's name is in `included` only
    await client.patch(f"/users/{owner['id']}", json={"first_name": "Renamed"})
    assert await tag(client, url) == plain
    assert await tag(client, url, {"include": "user"}) != with_user

    # a new message: the `messages` linkage (and the status the workflow moves)
    message = await factories.post_message(client, ticket["id"], owner["id"])
    with_message = await tag(client, url)
    assert with_message != plain
    # deleting it leaves the ticket's status: the linkage and the metrics change
    row = (await read(client, url)).json()["data"]["attributes"]
    assert (await client.delete(f"/ticket-messages/{message['id']}")).status_code == 204
    after = (await read(client, url)).json()["data"]["attributes"]
    assert after["status"] == row["status"] and after["updated_at"] == row["updated_at"]
    assert (after["message_count"], after["last_customer_message_at"]) == (0, None)
    assert await tag(client, url) != with_message

    # a message's tag moves when files are added to it (its `attachments` linkage)
    message = await factories.post_message(client, ticket["id"], owner["id"])
    message_url = f"/ticket-messages/{message['id']}"
    before = await tag(client, message_url)
    files = [("attachments[]", ("a.txt", b"abc", "text/plain"))]
    added = await client.post(f"{message_url}/attachments", files=files)
    assert added.status_code == 201, added.text
    assert await tag(client, message_url) != before


# --- If-None-Match ----------------------------------------------------------------------


async def test_if_none_match_answers_304_without_a_body(
    client: httpx.AsyncClient, case: Case
) -> None:
    current = await tag(client, case.url)
    other = '"0123456789abcdef0123456789abcdef"'
    for header in (current, f"{other}, {current}", f"{other},{current}", "*", f"W/{current}"):
        response = await read(client, case.url, if_none_match=header)
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == current
        assert "content-type" not in response.headers
        assert response.headers.get("content-length", "0") == "0"
    near = current[:-2] + ("1" if current[-2] == "0" else "0") + '"'
    for header in (other, f"W/{other}", current.strip('"'), near):
        response = await read(client, case.url, if_none_match=header)
        assert response.status_code == 200, header
        assert response.headers["etag"] == current
        assert response.json()["data"]["type"] == case.type
    # another variant's tag is not this variant's
    variant = case.variants[-1]
    response = await read(client, case.url, variant, if_none_match=current)
    assert response.status_code == 200
    # after a change the old tag is stale
    await client.patch(case.url, json=case.change("Changed"))
    response = await read(client, case.url, if_none_match=current)
    assert response.status_code == 200
    assert response.json()["data"]["attributes"][case.attribute] == "Changed"


async def test_if_none_match_lines_are_one_list(client: httpx.AsyncClient, case: Case) -> None:
    current = await tag(client, case.url)
    headers = [("If-None-Match", '"a"'), ("If-None-Match", current)]
    response = await client.get(case.url, headers=headers)
    assert response.status_code == 304


async def test_a_get_with_a_stale_if_match_is_412(client: httpx.AsyncClient, case: Case) -> None:
    current = await tag(client, case.url)
    assert (await client.get(case.url, headers={"If-Match": current})).status_code == 200
    assert (await client.get(case.url, headers={"If-Match": "*"})).status_code == 200
    assert_412(await client.get(case.url, headers={"If-Match": '"stale"'}))


# --- If-Match on writes -----------------------------------------------------------------


async def test_stale_if_match_writes_nothing(client: httpx.AsyncClient, case: Case) -> None:
    stale = await tag(client, case.url)
    await client.patch(case.url, json=case.change("Changed"))
    current = await read(client, case.url)
    events = await event_count(client)
    for headers in (
        {"If-Match": stale},
        {"If-Match": f'"other", {stale}'},
        {"If-Match": f"W/{current.headers['etag']}"},  # If-Match compares strongly
        {"If-Match": current.headers["etag"].strip('"')},  # not an entity tag
        {"If-None-Match": current.headers["etag"]},
        {"If-None-Match": "*"},
    ):
        assert_412(await client.patch(case.url, json=case.change("Lost"), headers=headers))
        assert_412(await client.put(case.url, json=case.change("Lost"), headers=headers))
        assert_412(await client.delete(case.url, headers=headers))
    after = await read(client, case.url)
    assert after.content == current.content
    assert after.headers["etag"] == current.headers["etag"]
    assert await event_count(client) == events


async def test_current_if_match_and_star_succeed(client: httpx.AsyncClient, case: Case) -> None:
    current = await tag(client, case.url)
    response = await client.patch(
        case.url, json=case.change("First"), headers={"If-Match": f'"other", {current}'}
    )
    assert response.status_code == 200, response.text
    # the answer's tag chains to the next write
    chained = response.headers["etag"]
    response = await client.put(case.url, json=case.change("Second"), headers={"If-Match": chained})
    assert response.status_code == 200, response.text
    response = await client.patch(case.url, json=case.change("Third"), headers={"If-Match": "*"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"][case.attribute] == "Third"
    # If-None-Match with another tag lets a write through
    response = await client.patch(
        case.url, json=case.change("Fourth"), headers={"If-None-Match": chained}
    )
    assert response.status_code == 200, response.text
    params = {"force": "true"} if case.type == "users" else None
    response = await client.delete(
        case.url, params=params, headers={"If-Match": response.headers["etag"]}
    )
    assert response.status_code == 204, response.text
    assert (await client.get(case.url)).status_code == 404


async def test_if_match_is_compared_with_the_same_query(
    client: httpx.AsyncClient, case: Case
) -> None:
    """The tag a client holds is its GET's with the query it used: a write sends that query."""
    variant = case.variants[-1]
    plain, shaped = await tag(client, case.url), await tag(client, case.url, variant)
    events = await event_count(client)
    response = await client.patch(
        case.url, params=variant, json=case.change("Lost"), headers={"If-Match": plain}
    )
    assert_412(response)
    assert_412(await client.delete(case.url, params=variant, headers={"If-Match": plain}))
    assert await event_count(client) == events
    response = await client.patch(
        case.url, params=variant, json=case.change("Kept"), headers={"If-Match": shaped}
    )
    assert response.status_code == 200, response.text
    response = await client.delete(
        case.url, params=variant, headers={"If-Match": response.headers["etag"]}
    )
    assert response.status_code == 204, response.text


async def test_missing_resources_are_404_whatever_the_preconditions(
    client: httpx.AsyncClient, case: Case
) -> None:
    missing = case.url.rsplit("/", 1)[0] + "/999999"
    for headers in ({"If-Match": "*"}, {"If-Match": '"x"'}, {"If-None-Match": "*"}):
        assert (await client.get(missing, headers=headers)).status_code == 404
        response = await client.patch(missing, json=case.change("x"), headers=headers)
        assert response.status_code == 404
        assert (await client.delete(missing, headers=headers)).status_code == 404


async def test_unconditional_delete_still_ignores_its_query(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    url = f"/tickets/{ticket['id']}"
    # a conditional delete is compared with a GET of the same query, which must be valid
    refused = await client.delete(url, params={"include": "nope"}, headers={"If-Match": "*"})
    assert refused.status_code == 400
    assert (await client.delete(url, params={"include": "nope"})).status_code == 204


async def test_a_conflict_is_412_when_the_precondition_fails_first(
    client: httpx.AsyncClient,
) -> None:
    """A user who owns tickets: 409 without force, but a stale If-Match fails before that."""
    owner = await factories.user(client)
    await factories.ticket(client, owner["id"])
    url = f"/users/{owner['id']}"
    assert_412(await client.delete(url, headers={"If-Match": '"stale"'}))
    response = await client.delete(url, headers={"If-Match": await tag(client, url)})
    assert response.status_code == 409


async def test_history_shows_no_refused_write(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    url = f"/tickets/{ticket['id']}"
    stale = await tag(client, url)
    await client.patch(url, json={"priority": "high"})
    assert_412(await client.patch(url, json={"priority": "low"}, headers={"If-Match": stale}))
    assert_412(await client.delete(url, headers={"If-Match": stale}))
    history = (await client.get(f"{url}/history")).json()["data"]
    assert [item["attributes"]["event"] for item in history] == [
        "ticket.created",
        "ticket.updated",
    ]
    assert (await read(client, url)).json()["data"]["attributes"]["priority"] == "high"


# --- concurrency --------------------------------------------------------------------------

WRITERS = 6


async def test_concurrent_writers_with_one_if_match_one_wins(
    app: FastAPI, token: str, client: httpx.AsyncClient, case: Case
) -> None:
    """Separate clients PATCH one resource at once, all with the tag they read: the check runs
    on the locked row inside the write, so exactly one wins and the others see its change."""
    current = await tag(client, case.url)
    events = await event_count(client)
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver/api/v1/admin",
            headers={"Authorization": f"Bearer {token}"},
        )
        for _ in range(WRITERS)
    ]
    try:
        responses = await asyncio.gather(
            *(
                http.patch(case.url, json=case.change(f"Writer {n}"), headers={"If-Match": current})
                for n, http in enumerate(clients)
            )
        )
    finally:
        for http in clients:
            await http.aclose()
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (WRITERS - 1), statuses
    winner = next(response for response in responses if response.status_code == 200)
    final = await read(client, case.url)
    assert final.headers["etag"] == winner.headers["etag"]
    value = winner.json()["data"]["attributes"][case.attribute]
    assert final.json()["data"]["attributes"][case.attribute] == value
    # one `*.updated` event (webhooks record none)
    assert await event_count(client) == events + (case.type != "webhooks")


async def test_concurrent_deletes_with_one_if_match_one_wins(
    app: FastAPI, token: str, client: httpx.AsyncClient, case: Case
) -> None:
    """A PATCH and a DELETE race with the same tag: whichever goes second is refused (412 after
    the PATCH, 404 after the DELETE); never both done."""
    current = await tag(client, case.url)
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver/api/v1/admin",
            headers={"Authorization": f"Bearer {token}", "If-Match": current},
        )
        for _ in range(2)
    ]
    params = {"force": "true"} if case.type == "users" else None
    try:
        patched, deleted = await asyncio.gather(
            clients[0].patch(case.url, json=case.change("Patched")),
            clients[1].delete(case.url, params=params),
        )
    finally:
        for http in clients:
            await http.aclose()
    outcome = (patched.status_code, deleted.status_code)
    assert outcome in ((200, 412), (404, 204)), outcome


# --- the published document -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/tickets/{ticket_id}",
        "/api/v1/admin/ticket-messages/{message_id}",
        "/api/v1/admin/users/{user_id}",
        "/api/v1/admin/webhooks/{webhook_id}",
    ],
)
async def test_openapi_documents_the_conditions(anonymous: httpx.AsyncClient, path: str) -> None:
    operations = (await anonymous.get("/openapi.json")).json()["paths"][path]
    for method, operation in operations.items():
        names = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert {"If-Match", "If-None-Match"} <= names, method
        assert "412" in operation["responses"], method
        if method == "get":
            assert "ETag" in operation["responses"]["304"]["headers"]
            assert "content" not in operation["responses"]["304"]
        if method in ("get", "put", "patch"):
            assert operation["responses"]["200"]["headers"]["ETag"]["required"] is True
