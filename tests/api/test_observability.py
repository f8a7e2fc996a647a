"""Request ids, JSON access logs, and 500s that log their traceback with the request id."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.logs import JsonFormatter


async def test_every_response_carries_a_request_id(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    responses = [
        await client.get("/tickets"),
        await client.get("/tickets/999"),
        await client.post("/tickets", json={}),
        await client.get("/nowhere"),
        await anonymous.get("/health"),
        await anonymous.get("/api/v1/admin/tickets"),
    ]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(len(i) == 32 for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("abc-123_X.y", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id", False),
        ("a\u00e9", False),
        ("", False),
    ],
)
async def test_a_sane_client_request_id_is_echoed(
    client: httpx.AsyncClient, sent: str, echoed: bool
) -> None:
    response = await client.get("/tickets", headers={"X-Request-ID": sent.encode("utf-8")})
    assert (response.headers["x-request-id"] == sent) is echoed


async def test_access_log_records(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    with caplog.at_level(logging.INFO, logger="supportdesk.access"):
        response = await client.get(
            "/tickets", params={"filter[status]": "open"}, headers={"X-Request-ID": "trace-1"}
        )
        await client.get("/tickets", headers={"Authorization": "Bearer wrong"})
    records = [r for r in caplog.records if r.name == "supportdesk.access"]
    assert len(records) == 2
    fields = records[0].fields  # type: ignore[attr-defined]
    assert fields["method"] == "GET" and fields["path"] == "/api/v1/admin/tickets"
    assert (
        fields["status"] == 200
        and fields["request_id"] == "trace-1" == response.headers["x-request-id"]
    )
    assert isinstance(fields["key_id"], int) and fields["duration_ms"] >= 0
    assert records[1].fields["status"] == 401 and records[1].fields["key_id"] is None  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(records[0]))
    assert {
        "ts",
        "level",
        "logger",
        "message",
        "method",
        "path",
        "status",
        "duration_ms",
        "key_id",
        "request_id",
    } <= set(line)
    assert "filter" not in json.dumps(line)  # query strings are not logged


async def test_a_500_logs_its_traceback_with_the_request_id(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise ZeroDivisionError("the sky fell")

    app.add_api_route("/api/v1/admin/explode", explode)
    response = await client.get("/explode", headers={"X-Request-ID": "boom-42"})
    assert response.status_code == 500
    assert response.json() == {
        "message": "Server error",
        "code": "internal",
        "request_id": "boom-42",
    }
    assert response.headers["x-request-id"] == "boom-42"
    errors = [r for r in caplog.records if r.name == "supportdesk.errors"]
    assert len(errors) == 1
    line = json.loads(JsonFormatter().format(errors[0]))
    assert line["request_id"] == "boom-42"
    assert "ZeroDivisionError: the sky fell" in line["traceback"]
