"""The webhooks resource on SQLite and PostgreSQL: create (the secret shown once), read, update,
delete, rotation, and every error path."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.config import Settings
from tests.conftest import KeyFactory
from tests.webhooks import create

URL = "http://127.0.0.1:9/hook"  # never called: these tests run no dispatcher
MISSING = object()  # a key left out of the body


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url, storage_dir=str(tmp_path / "storage"), webhook_allow_private=True
    )


async def test_create_returns_201_location_and_the_secret_once(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhooks",
        json={"url": f" {URL} ", "events": ["ticket.*", "user.created"], "description": "CRM"},
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["type"] == "webhooks"
    assert response.headers["location"].endswith(f"/api/v1/admin/webhooks/{data['id']}")
    attributes = data["attributes"]
    assert attributes["url"] == URL
    assert attributes["events"] == ["ticket.*", "user.created"]
    assert attributes["description"] == "CRM"
    assert attributes["enabled"] is True
    assert attributes["disabled_reason"] is None and attributes["failing_since"] is None
    secret = attributes["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    one = await client.get(f"/webhooks/{data['id']}")
    listing = await client.get("/webhooks")
    for response in (one, listing):
        assert response.status_code == 200
        assert secret not in response.text and 'secret"' not in response.text
    assert one.json()["data"]["attributes"]["events"] == ["ticket.*", "user.created"]
    assert listing.json()["meta"]["total"] == 1
    other = await create(client, URL, ["*"])
    assert other["attributes"]["secret"] != secret


async def test_create_disabled_and_list_pages(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhooks", json={"url": URL, "events": ["*"], "enabled": False})
    assert response.json()["data"]["attributes"]["enabled"] is False
    for _ in range(2):
        await create(client, URL, ["user.*"])
    document = (await client.get("/webhooks?per_page=2&page=2")).json()
    assert document["meta"]["total"] == 3 and len(document["data"]) == 1
    assert document["meta"]["last_page"] == 2


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "url", "The url field is required."),
        ({"events": MISSING}, "events", "The events field is required."),
        ({"url": "ftp://example.com/x"}, "url", "The url field must be an http or https URL."),
        ({"url": "http:///path"}, "url", "The url field must be an http or https URL."),
        ({"url": "example.com/hook"}, "url", "The url field must be an http or https URL."),
        ({"url": "http://x" + "y" * 2050}, "url", "must not be greater than 2048 characters"),
        ({"url": "http://xn--/"}, "url", "The url field must be an http or https URL."),
        ({"url": "http://a..b/"}, "url", "The url field is refused: a..b does not resolve"),
        ({"url": f"http://{'a' * 300}/"}, "url", "label too long"),
        ({"events": []}, "events", "The events field must be a non-empty list of event names."),
        ({"events": "ticket.*"}, "events", "must be a non-empty list of event names."),
        ({"events": [3]}, "events", "must be a non-empty list of event names."),
        ({"events": ["ticket.*", "tickets.*"]}, "events", "unknown event 'tickets.*'"),
        ({"events": ["user.exploded"]}, "events", "unknown event 'user.exploded'"),
        ({"events": ["webhook.test"]}, "events", "webhook.test is sent only by"),
        ({"enabled": "yes"}, "enabled", "The enabled field must be true or false."),
        ({"enabled": 1}, "enabled", "The enabled field must be true or false."),
        ({"description": "x" * 256}, "description", "not be greater than 255 characters"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
) -> None:
    merged = {"url": URL, "events": ["*"], **body} if body else {}
    full = {name: value for name, value in merged.items() if value is not MISSING}
    response = await client.post("/webhooks", json=full)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_failed"
    assert any(message in text for text in payload["errors"][field]), payload
    assert (await client.get("/webhooks")).json()["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1, a loopback address"),
        ("http://localhost:8080/hook", "a loopback address"),
        ("https://[::1]/hook", "::1, a loopback address"),
        ("http://10.1.2.3/hook", "10.1.2.3, a private address"),
        ("http://192.168.0.10/hook", "a private address"),
        ("http://169.254.169.254/latest", "169.254.169.254, a link-local address"),
        ("http://224.0.0.1/hook", "224.0.0.1, a multicast address"),
        ("http://0.0.0.0/hook", "0.0.0.0, an unspecified address"),
        ("http://[::ffff:10.0.0.1]/hook", "a private address"),
        ("http://100.64.0.1/hook", "a non-public address"),
    ],
)
async def test_private_addresses_are_refused(
    app: FastAPI, client: httpx.AsyncClient, url: str, kind: str
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhook_allow_private": False})
    response = await client.post("/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == 422
    [message] = response.json()["errors"]["url"]
    assert message.startswith("The url field is refused: ") and kind in message, message
    # a public address is accepted (and never called: nothing is dispatched here)
    response = await client.post("/webhooks", json={"url": "https://1.1.1.1/h", "events": ["*"]})
    assert response.status_code == 201
    hook = response.json()["data"]["id"]
    response = await client.patch(f"/webhooks/{hook}", json={"url": url})
    assert response.status_code == 422
    assert (await client.get(f"/webhooks/{hook}")).json()["data"]["attributes"]["url"] == (
        "https://1.1.1.1/h"
    )


async def test_update_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    hook = await create(client, URL, ["ticket.*"])
    path = f"/webhooks/{hook['id']}"
    response = await client.patch(path, json={"description": "Billing", "events": ["user.*"]})
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert attributes["description"] == "Billing" and attributes["events"] == ["user.*"]
    assert attributes["url"] == URL and "secret" not in attributes
    assert attributes["updated_at"] >= hook["attributes"]["updated_at"]
    response = await client.put(path, json={"description": None, "enabled": False})
    attributes = response.json()["data"]["attributes"]
    assert attributes["description"] is None and attributes["enabled"] is False
    response = await client.patch(path, json={"enabled": None})
    assert response.json()["data"]["attributes"]["enabled"] is False
    response = await client.patch(path, json={"events": ["nope"]})
    assert response.status_code == 422 and "nope" in response.json()["errors"]["events"][0]
    response = await client.patch(path, json={"url": None})
    assert response.status_code == 422


async def test_rotation_returns_a_new_secret_once(client: httpx.AsyncClient) -> None:
    hook = await create(client, URL, ["*"])
    response = await client.post(f"/webhooks/{hook['id']}/rotate-secret")
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert attributes["secret"].startswith("whsec_")
    assert attributes["secret"] != hook["attributes"]["secret"]
    assert attributes["previous_secret_expires_at"] > attributes["updated_at"]
    shown = await client.get(f"/webhooks/{hook['id']}")
    assert attributes["secret"] not in shown.text
    assert hook["attributes"]["secret"] not in shown.text


async def test_delete(client: httpx.AsyncClient) -> None:
    hook = await create(client, URL, ["*"])
    response = await client.delete(f"/webhooks/{hook['id']}")
    assert response.status_code == 204 and response.content == b""
    assert (await client.get(f"/webhooks/{hook['id']}")).status_code == 404
    assert (await client.delete(f"/webhooks/{hook['id']}")).status_code == 404


async def test_missing_resources_are_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/webhooks/999"),
        ("PATCH", "/webhooks/999"),
        ("DELETE", "/webhooks/999"),
        ("POST", "/webhooks/999/rotate-secret"),
        ("POST", "/webhooks/999/test"),
        ("GET", "/webhooks/999/deliveries"),
        ("POST", "/webhooks/999/deliveries/1/retry"),
        ("GET", "/webhooks/abc"),
    ]:
        response = await client.request(method, path, json={})
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"
    hook = await create(client, URL, ["*"])
    response = await client.post(f"/webhooks/{hook['id']}/deliveries/12345/retry")
    assert response.status_code == 404
    assert "webhook_deliveries" in response.json()["message"]
    response = await client.get(f"/webhooks/{hook['id']}/deliveries")
    assert response.status_code == 200 and response.json()["data"] == []


async def test_retry_while_disabled_is_a_conflict(client: httpx.AsyncClient) -> None:
    hook = await create(client, URL, ["*"])
    queued = (await client.post(f"/webhooks/{hook['id']}/test")).json()["data"]
    await client.patch(f"/webhooks/{hook['id']}", json={"enabled": False})
    response = await client.post(f"/webhooks/{hook['id']}/deliveries/{queued['id']}/retry")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


async def test_webhooks_need_the_manage_permission(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    hook = await create(client, URL, ["*"])
    paths = [
        ("GET", "/webhooks"),
        ("POST", "/webhooks"),
        ("GET", f"/webhooks/{hook['id']}"),
        ("PATCH", f"/webhooks/{hook['id']}"),
        ("DELETE", f"/webhooks/{hook['id']}"),
        ("POST", f"/webhooks/{hook['id']}/rotate-secret"),
        ("POST", f"/webhooks/{hook['id']}/test"),
        ("GET", f"/webhooks/{hook['id']}/deliveries"),
        ("POST", f"/webhooks/{hook['id']}/deliveries/1/retry"),
    ]
    viewer = {"Authorization": f"Bearer {await make_key('tickets.view', 'events.view')}"}
    manager = {"Authorization": f"Bearer {await make_key('webhooks.manage')}"}
    for method, path in paths:
        url = f"/api/v1/admin{path}"
        assert (await anonymous.request(method, url, json={})).status_code == 401
        forbidden = await anonymous.request(method, url, json={}, headers=viewer)
        assert forbidden.status_code == 403
        assert "webhooks.manage" in forbidden.json()["message"]
    allowed = await anonymous.get(f"/api/v1/admin/webhooks/{hook['id']}", headers=manager)
    assert allowed.status_code == 200


async def test_the_openapi_document_lists_the_webhook_operations(
    anonymous: httpx.AsyncClient,
) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    base = "/api/v1/admin/webhooks"
    assert {"get", "post"} <= set(paths[base])
    assert {"get", "put", "patch", "delete"} <= set(paths[f"{base}/{{webhook_id}}"])
    created = paths[base]["post"]["responses"]["201"]["content"]["application/vnd.api+json"]
    assert (
        "secret"
        in created["schema"]["properties"]["data"]["properties"]["attributes"]["properties"]
    )
    shown = paths[f"{base}/{{webhook_id}}"]["get"]["responses"]["200"]["content"]
    attributes = shown["application/vnd.api+json"]["schema"]["properties"]["data"]["properties"]
    assert "secret" not in attributes["attributes"]["properties"]
    assert "409" in paths[f"{base}/{{webhook_id}}/test"]["post"]["responses"]
    assert (
        "202"
        in paths[f"{base}/{{webhook_id}}/deliveries/{{delivery_id}}/retry"]["post"]["responses"]
    )
