"""SPEC section 7: every error row, in the documented shape, with nothing written."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from tests import factories


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"filter[nope]": "1"}, "filter(s) `nope`"),
        ({"filter[status]": "open", "filter[foo]": "x", "filter[bar]": "y"}, "`foo, bar`"),
        ({"sort": "nope"}, "sort(s) `nope`"),
        ({"sort": "-password"}, "sort(s) `password`"),
        ({"sort": "id,,status"}, "comma-separated"),
        ({"include": "messages.user"}, "include(s) `messages.user`"),
        ({"include": "secrets"}, "include(s) `secrets`"),
        ({"fields[tickets]": "subject,password"}, "field(s) `password`"),
        ({"fields[secrets]": "x"}, "type `secrets`"),
        ({"filter": "open"}, "Malformed query parameter `filter`"),
        ({"filter[status][]": "open"}, "Malformed"),
        ({"filter[id]": "abc"}, "positive integers"),
        ({"filter[user_id]": "1;DROP TABLE tickets"}, "positive integers"),
        ({"filter[created_after]": "yesterday"}, "ISO 8601"),
        ({"filter[id]": ",".join(str(i) for i in range(1, 150))}, "at most 100"),
    ],
)
async def test_bad_queries_are_400(
    client: httpx.AsyncClient, params: dict[str, str], fragment: str
) -> None:
    body = assert_error(await client.get("/tickets", params=params), 400, "invalid_query")
    assert fragment in str(body["message"])


async def test_repeated_parameters_are_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/tickets?sort=id&sort=-id")
    assert_error(response, 400, "invalid_query")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"per_page": "-1"}, "per_page"),
        ({"per_page": "1.5"}, "per_page"),
        ({"page": "9" * 30}, "page"),
    ],
)
async def test_bad_paging_is_422(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    body = assert_error(await client.get("/tickets", params=params), 422, "validation_failed")
    assert field in body["errors"]  # type: ignore[operator]


async def test_unknown_route_and_method(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    assert_error(await client.get("/nothing-here"), 404, "not_found")
    assert_error(await anonymous.get("/nothing"), 404, "not_found")
    response = await client.post("/tickets/1")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, PUT, PATCH, DELETE"
    assert_error(await client.delete("/tickets"), 405, "method_not_allowed")
    assert_error(await client.get("/tickets/1"), 404, "not_found")
    response = await client.get("/tickets/")
    assert_error(response, 404, "not_found")
    assert "location" not in response.headers


async def test_json_errors_whatever_accept_says(client: httpx.AsyncClient) -> None:
    response = await client.get("/tickets/1", headers={"Accept": "text/html"})
    assert_error(response, 404, "not_found")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    for raw in (b"{bad", b'{"subject": "x",}', b"\xff\xfe", b"[" * 5000 + b"]" * 5000):
        response = await client.post(
            "/tickets", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "invalid_json")


async def test_non_object_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/tickets", json=[1, 2])
    body = assert_error(response, 422, "validation_failed")
    assert "body" in body["errors"]  # type: ignore[operator]


async def test_unsupported_content_type_is_415(client: httpx.AsyncClient) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await client.post(
            "/tickets", content=b"subject=x", headers={"Content-Type": content_type}
        )
        assert_error(response, 415, "unsupported_media_type")
    response = await client.post(
        "/tickets", content=b'{"subject": "x"}', headers={"Content-Type": ""}
    )
    assert_error(response, 415, "unsupported_media_type")


async def test_vnd_api_json_and_charset_are_accepted(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    for content_type in ("application/vnd.api+json", "application/json; charset=utf-8"):
        response = await client.post(
            "/tickets",
            content=f'{{"subject": "x", "user_id": {owner["id"]}}}'.encode(),
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 201


async def test_oversize_body_is_413_and_writes_nothing(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    big = (
        b'{"subject": "x", "user_id": '
        + owner["id"].encode()
        + b', "pad": "'
        + b"a" * (1024 * 1024)
        + b'"}'
    )
    assert_error(
        await client.post("/tickets", content=big, headers={"Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )

    async def stream() -> object:
        for _ in range(40):
            yield b" " * 32768

    response = await client.post(
        "/tickets", content=stream(), headers={"Content-Type": "application/json"}
    )  # type: ignore[arg-type]
    assert_error(response, 413, "payload_too_large")
    assert (await client.get("/tickets")).json()["meta"]["total"] == 0


async def test_validation_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/tickets", json={})
    assert response.json() == {
        "message": "The subject field is required. (and 1 more error)",
        "code": "validation_failed",
        "errors": {
            "subject": ["The subject field is required."],
            "user_id": ["The user id field is required."],
        },
    }


async def test_conflict_is_409(client: httpx.AsyncClient) -> None:
    owner = await factories.user(client)
    await factories.ticket(client, owner["id"])
    assert_error(await client.delete(f"/users/{owner['id']}"), 409, "conflict")


async def test_frameworks_own_validation_errors_use_our_shape(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def typed(number: int) -> dict[str, int]:
        return {"number": number}

    app.add_api_route("/api/v1/admin/typed", typed)
    body = assert_error(
        await client.get("/typed", params={"number": "x"}), 422, "validation_failed"
    )
    assert "number" in body["errors"]  # type: ignore[operator]


async def test_unexpected_fault_is_500_with_request_id(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/api/v1/admin/boom", boom)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/boom")
    body = assert_error(response, 500, "internal")
    assert body["message"] == "Server error"
    assert "kaboom" not in response.text
    assert isinstance(body["request_id"], str)
    assert any(str(body["request_id"]) in record.getMessage() for record in caplog.records)
