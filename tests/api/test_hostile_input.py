"""Attacks, each with the 4xx it must get (issue 5): injection in every query family, path
tricks, oversize and deeply nested bodies, odd content types, unicode edge cases, overflowing
integers, and keys that must not work. Never a 500, never a change to the data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import factories
from tests.conftest import KeyFactory

INJECTIONS = [
    "1 OR 1=1",
    "1; DROP TABLE tickets; --",
    "' OR ''='",
    "id) UNION SELECT * FROM api_keys --",
    '"',
    "\\",
    "%00",
    "${jndi:ldap://x}",
]


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    owner = await factories.user(client)
    ticket = await factories.ticket(client, owner["id"])
    return {"owner": owner["id"], "ticket": ticket["id"]}


async def unchanged(client: httpx.AsyncClient) -> None:
    assert (await client.get("/tickets")).json()["meta"]["total"] == 1
    assert (await client.get("/users")).json()["meta"]["total"] == 1


@pytest.mark.parametrize("attack", INJECTIONS)
@pytest.mark.parametrize(
    "family",
    [
        "filter[id]",
        "filter[user_id]",
        "filter[created_after]",
        "sort",
        "include",
        "fields[tickets]",
        "filter[nope]",
        "page",
        "per_page",
    ],
)
async def test_injection_in_query_families_is_refused(
    client: httpx.AsyncClient, world: dict[str, Any], family: str, attack: str
) -> None:
    response = await client.get("/tickets", params={family: attack})
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] in ("invalid_query", "validation_failed")
    await unchanged(client)


@pytest.mark.parametrize("attack", INJECTIONS)
@pytest.mark.parametrize(
    "family", ["filter[status]", "filter[subject]", "filter[search]", "filter[department]"]
)
async def test_injection_in_text_filters_is_just_text(
    client: httpx.AsyncClient, world: dict[str, Any], family: str, attack: str
) -> None:
    response = await client.get("/tickets", params={family: attack})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["data"] == []
    await unchanged(client)


@pytest.mark.parametrize(
    "path",
    [
        "/tickets/..%2F..%2Fetc%2Fpasswd",
        "/tickets/1%2F..%2F2",
        "/ticket-attachments/..%2F..%2Fetc%2Fpasswd/download",
        "/ticket-attachments/1%00/download",
        "/tickets/%2e%2e",
        "/users/1e3",
        "/tickets/0x10",
        "/tickets/" + "9" * 400,
        "/tickets/-0",
        "/ticket-messages/1.5",
    ],
)
async def test_path_tricks_are_404(
    client: httpx.AsyncClient, world: dict[str, Any], path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_oversize_headers_and_bodies(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    huge = {"subject": "x" * 2_000_000, "user_id": world["owner"]}
    assert (await client.post("/tickets", json=huge)).status_code == 413
    response = await client.get("/tickets", headers={"X-Padding": "y" * 100_000})
    assert response.status_code in (200, 400, 431)
    nested = b'{"subject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert (
        await client.post("/tickets", content=nested, headers={"Content-Type": "application/json"})
    ).status_code == 400
    await unchanged(client)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"subject": "x"}'),
        ("application/xml", b"<ticket/>"),
        ("application/json-patch+json", b"[]"),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="subject"\r\n\r\nx\r\n--zz--\r\n',
        ),
        ("application/x-www-form-urlencoded", b"subject=x&user_id=1"),
    ],
)
async def test_wrong_content_types_are_415(
    client: httpx.AsyncClient, world: dict[str, Any], content_type: str, body: bytes
) -> None:
    response = await client.post("/tickets", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415
    await unchanged(client)


@pytest.mark.parametrize(
    "text",
    [
        "\u202eevil\u202c right-to-left override",
        "zero\u200bwidth\ufeffjoiners",
        "emoji \U0001f4a9 and \U0001f1fa\U0001f1f8",
        "combining e\u0301 and \u00e9",
        "\u0000" * 0 + "tab\tand\nnewline",
        "\U0010ffff private plane",
        "\u00a0non-breaking\u00a0",
    ],
)
async def test_unicode_is_stored_and_returned_exactly(
    client: httpx.AsyncClient, world: dict[str, Any], text: str
) -> None:
    response = await client.post("/tickets", json={"subject": text, "user_id": world["owner"]})
    assert response.status_code == 201, response.text
    ticket = response.json()["data"]
    assert ticket["attributes"]["subject"] == text.strip()
    message = await client.post(
        "/ticket-messages",
        json={"ticket_id": ticket["id"], "user_id": world["owner"], "message": text},
    )
    assert message.status_code == 201
    again = await client.get(f"/ticket-messages/{message.json()['data']['id']}")
    assert again.json()["data"]["attributes"]["message"] == text.strip()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"subject": "nul\\u0000byte", "user_id": 1}', "validation_failed"),
        (b'{"subject": "lone \\ud800 surrogate", "user_id": 1}', "validation_failed"),
        (b'{"subject": "lone \\udc00", "user_id": 1}', "validation_failed"),
        (b'{"subject": "\xff\xfe invalid utf-8", "user_id": 1}', "invalid_json"),
    ],
)
async def test_unicode_that_cannot_be_stored_is_refused(
    client: httpx.AsyncClient, world: dict[str, Any], raw: bytes, code: str
) -> None:
    response = await client.post(
        "/tickets", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.json()["code"] == code
    assert response.status_code == (422 if code == "validation_failed" else 400)
    response = await client.get("/tickets", params={"filter[subject]": "a\x00b"})
    assert response.status_code == 400
    await unchanged(client)


@pytest.mark.parametrize("value", [2**63, 2**64 + 1, 10**100, -(2**63) - 1])
async def test_integer_overflow(
    client: httpx.AsyncClient, world: dict[str, Any], value: int
) -> None:
    assert (await client.get(f"/tickets/{abs(value)}")).status_code == 404
    assert (await client.get("/tickets", params={"page": str(abs(value))})).status_code == 422
    assert (await client.get("/tickets", params={"filter[id]": str(abs(value))})).status_code == 400
    response = await client.post("/tickets", json={"subject": "x", "user_id": value})
    assert response.status_code == 422
    response = await client.patch(f"/tickets/{world['ticket']}", json={"assigned_to": value})
    assert response.status_code == 422
    await unchanged(client)


async def test_keys_that_must_not_work(
    app: FastAPI, make_key: KeyFactory, world: dict[str, Any]
) -> None:
    from supportdesk.auth import repository
    from supportdesk.auth.keys import hash_token

    no_permissions = await make_key("tickets.view")
    async with app.state.db.transaction() as conn:  # a key stripped of every permission
        from sqlalchemy import update

        from supportdesk.tables import api_keys

        await conn.execute(
            update(api_keys)
            .where(api_keys.c.token_hash == hash_token(no_permissions))
            .values(permissions="[]")
        )
    disabled = await make_key("*")
    async with app.state.db.transaction() as conn:
        row = await repository.find_by_hash(conn, hash_token(disabled))
        assert row is not None
        await repository.set_enabled(conn, row["id"], False)
    fenced = await make_key("*", allowed_ips=("10.9.8.0/24",))
    valid = await make_key("*")
    forged = valid[:-6] + ("A" * 6 if not valid.endswith("A" * 6) else "B" * 6)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1/admin") as http:

        async def status(token: str) -> int:
            return (
                await http.get("/tickets", headers={"Authorization": f"Bearer {token}"})
            ).status_code

        assert await status(no_permissions) == 403
        assert await status(disabled) == 401
        assert await status(fenced) == 403
        assert await status(forged) == 401
        assert await status(valid) == 200
