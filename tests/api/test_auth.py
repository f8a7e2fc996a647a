"""SPEC section 5: bearer keys, permissions, allow-lists, disabled keys, last_used_at."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.auth import repository
from supportdesk.auth.keys import hash_token
from supportdesk.auth.service import KEY_CACHE_TTL_S
from tests import factories
from tests.conftest import KeyFactory


@pytest.fixture
def call(app: FastAPI):  # type: ignore[no-untyped-def]
    async def call(
        method: str,
        path: str,
        token: str | None = None,
        client_ip: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/api/v1/admin"
        ) as http:
            return await http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    return call


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b"],
)
async def test_missing_or_malformed_header_is_401(app: FastAPI, header: str | None) -> None:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": header} if header is not None else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/api/v1/admin/tickets", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "message": "The request is missing a valid bearer token.",
        "code": "unauthenticated",
    }


async def test_unknown_and_forged_tokens_are_401(call, token: str) -> None:  # type: ignore[no-untyped-def]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in ("sdk_" + "x" * 43, forged, "PAYM" + "0" * 64):
        response = await call("GET", "/tickets", bad)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"


async def test_401_comes_before_404_and_validation(call) -> None:  # type: ignore[no-untyped-def]
    assert (await call("GET", "/tickets/999999")).status_code == 401
    assert (await call("PATCH", "/tickets/999999", content=b"{bad")).status_code == 401
    assert (
        await call(
            "POST", "/tickets", content=b"{bad", headers={"Content-Type": "application/json"}
        )
    ).status_code == 401


async def test_permissions_per_endpoint(
    call, make_key: KeyFactory, client: httpx.AsyncClient
) -> None:  # type: ignore[no-untyped-def]
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    viewer = await make_key("tickets.view")
    assert (await call("GET", "/tickets", viewer)).status_code == 200
    assert (await call("GET", f"/tickets/{ticket['id']}", viewer)).status_code == 200
    assert (await call("GET", "/ticket-settings", viewer)).status_code == 200
    for method, path in [
        ("POST", "/tickets"),
        ("PATCH", f"/tickets/{ticket['id']}"),
        ("PUT", f"/tickets/{ticket['id']}"),
        ("DELETE", f"/tickets/{ticket['id']}"),
        ("GET", "/users"),
        ("GET", f"/users/{owner['id']}"),
        ("POST", "/users"),
        ("PATCH", f"/users/{owner['id']}"),
        ("DELETE", f"/users/{owner['id']}"),
        ("GET", "/roles"),
        ("GET", "/canned-replies"),
        ("POST", "/canned-replies"),
        ("GET", "/canned-replies/1"),
        ("PATCH", "/canned-replies/1"),
        ("DELETE", "/canned-replies/1"),
        ("POST", "/canned-replies/1/render"),
    ]:
        response = await call(method, path, viewer, json={})
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "forbidden"
    # 403 for a missing permission comes before 404 and before validation
    assert (await call("DELETE", "/tickets/999999", viewer)).status_code == 403
    assert (await call("GET", f"/tickets/{ticket['id']}", viewer)).status_code == 200


async def test_paymenter_admin_prefix_alias(call, make_key: KeyFactory) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("admin.tickets.view", "admin.users.view")
    assert (await call("GET", "/tickets", key)).status_code == 200
    assert (await call("GET", "/users", key)).status_code == 200
    assert (await call("POST", "/tickets", key, json={})).status_code == 403


async def test_include_needs_the_included_types_permission(
    call, make_key: KeyFactory, client: httpx.AsyncClient
) -> None:  # type: ignore[no-untyped-def]
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    key = await make_key("tickets.view")
    for include in ("messages", "user", "assigned_to"):
        response = await call("GET", "/tickets", key, params={"include": include})
        assert response.status_code == 403, include
        response = await call("GET", f"/tickets/{ticket['id']}", key, params={"include": include})
        assert response.status_code == 403, include
    key = await make_key("tickets.view", "ticket_messages.view", "users.view")
    response = await call("GET", "/tickets", key, params={"include": "messages,user,assigned_to"})
    assert response.status_code == 200
    creator = await make_key("tickets.create")
    response = await call(
        "POST",
        "/tickets",
        creator,
        params={"include": "user"},
        json={"subject": "x", "user_id": owner["id"]},
    )
    assert response.status_code == 403
    assert (await client.get("/tickets")).json()["meta"]["total"] == 1


async def test_ip_allow_list_with_cidr(call, make_key: KeyFactory) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("*", allowed_ips=("10.0.0.0/8", "192.168.1.7", "2001:db8::/32"))
    assert (await call("GET", "/tickets", key, client_ip="10.20.30.40")).status_code == 200
    assert (await call("GET", "/tickets", key, client_ip="192.168.1.7")).status_code == 200
    assert (await call("GET", "/tickets", key, client_ip="2001:db8::1")).status_code == 200
    response = await call("GET", "/tickets", key, client_ip="192.168.1.8")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert (await call("GET", "/tickets", key, client_ip="127.0.0.1")).status_code == 403


async def test_disabled_key_is_401_and_last_used_at_is_recorded(
    call, app: FastAPI, token: str
) -> None:  # type: ignore[no-untyped-def]
    db = app.state.db
    async with db.read() as conn:
        row = await repository.find_by_hash(conn, hash_token(token))
    assert row is not None and row["last_used_at"] is None
    assert (await call("GET", "/tickets", token)).status_code == 200
    async with db.read() as conn:
        row = await repository.find_by_hash(conn, hash_token(token))
    assert row is not None and row["last_used_at"] is not None
    assert row["token_hash"] != token and token not in str(dict(row))
    async with db.transaction() as conn:
        await repository.set_enabled(conn, row["id"], False)
    await asyncio.sleep(KEY_CACHE_TTL_S)  # the worker trusts what it read for that long
    response = await call("GET", "/tickets", token)
    assert response.status_code == 401
    assert response.json()["message"] == "The provided API key is invalid or has been disabled."


async def test_health_needs_no_key(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.fixture
async def closed_db_app(app: FastAPI) -> FastAPI:
    await app.state.db.close()
    return app


async def test_health_is_503_when_the_database_does_not_answer(closed_db_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=closed_db_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


async def test_only_the_plain_header_of_a_known_key_is_cached(
    call, app: FastAPI, token: str
) -> None:  # type: ignore[no-untyped-def]
    """The cache is keyed by the Authorization header: a key written any other way still
    works, but is looked up each time, so variants of one key cannot fill the cache."""
    variants = [f"bearer {token}", f"BEARER   {token}  ", f"Bearer {token}" + " " * 10_000]
    for header in variants:
        response = await call("GET", "/tickets", headers={"Authorization": header})
        assert response.status_code == 200, header[:20]
    assert app.state.keys._known == {}
    assert (await call("GET", "/tickets", token)).status_code == 200
    assert list(app.state.keys._known) == [f"Bearer {token}"]
