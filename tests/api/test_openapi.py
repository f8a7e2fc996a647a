"""The published OpenAPI document lists what the parser really accepts, and the errors."""

from __future__ import annotations

import httpx
import pytest

from supportdesk.canned_replies.placeholders import PLACEHOLDERS
from supportdesk.canned_replies.resource import CANNED_REPLIES
from supportdesk.tickets.resource import TICKETS
from supportdesk.users.resource import USERS


@pytest.fixture
async def document(anonymous: httpx.AsyncClient) -> dict[str, object]:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def parameters(document: dict[str, object], path: str, method: str) -> dict[str, dict[str, object]]:
    operation = document["paths"][path][method]  # type: ignore[index]
    return {p["name"]: p for p in operation.get("parameters", [])}


async def test_list_endpoints_document_every_filter_sort_and_include(
    document: dict[str, object],
) -> None:
    for path, spec in (
        ("/api/v1/admin/tickets", TICKETS),
        ("/api/v1/admin/users", USERS),
        ("/api/v1/admin/canned-replies", CANNED_REPLIES),
    ):
        params = parameters(document, path, "get")
        for f in spec.filters:
            assert f"filter[{f.name}]" in params
        for sort in spec.sorts:
            assert sort in str(params["sort"]["description"])
        for include in spec.includes:
            assert include in str(params["include"]["description"])
        assert {"page", "per_page", f"fields[{spec.type}]"} <= set(params)


async def test_operations_document_errors_and_bodies(document: dict[str, object]) -> None:
    paths = document["paths"]  # type: ignore[index]
    create = paths["/api/v1/admin/tickets"]["post"]  # type: ignore[index]
    assert {"201", "401", "403", "413", "415", "422"} <= set(create["responses"])
    assert "application/json" in create["requestBody"]["content"]
    schema = create["responses"]["422"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"message", "code"}
    item = paths["/api/v1/admin/tickets/{ticket_id}"]  # type: ignore[index]
    assert {"get", "put", "patch", "delete"} <= set(item)
    assert "404" in item["get"]["responses"]
    assert "409" in paths["/api/v1/admin/users/{user_id}"]["delete"]["responses"]  # type: ignore[index]
    ticket = create["responses"]["201"]["content"]["application/vnd.api+json"]["schema"]
    assert "subject" in ticket["properties"]["data"]["properties"]["attributes"]["properties"]
    assert "/health" in paths


async def test_docs_page(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


async def test_messages_multipart_and_download_are_documented(document: dict[str, object]) -> None:
    paths = document["paths"]  # type: ignore[index]
    create = paths["/api/v1/admin/ticket-messages"]["post"]  # type: ignore[index]
    form = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["attachments[]"]["items"]["format"] == "binary"
    assert {"ticket_id", "user_id", "message"} <= set(form["properties"])
    add = paths["/api/v1/admin/ticket-messages/{message_id}/attachments"]["post"]  # type: ignore[index]
    assert "multipart/form-data" in add["requestBody"]["content"]
    download = paths["/api/v1/admin/ticket-attachments/{attachment_id}/download"]["get"]  # type: ignore[index]
    assert (
        download["responses"]["200"]["content"]["application/octet-stream"]["schema"]["format"]
        == "binary"
    )
    assert "Content-Disposition" in download["responses"]["200"]["headers"]
    listing = parameters(document, "/api/v1/admin/ticket-messages", "get")
    assert {"filter[ticket_id]", "filter[user_id]", "filter[created_after]", "include"} <= set(
        listing
    )


async def test_canned_replies_are_documented(document: dict[str, object]) -> None:
    paths = document["paths"]  # type: ignore[index]
    collection = paths["/api/v1/admin/canned-replies"]  # type: ignore[index]
    item = paths["/api/v1/admin/canned-replies/{canned_reply_id}"]  # type: ignore[index]
    render = paths["/api/v1/admin/canned-replies/{canned_reply_id}/render"]["post"]  # type: ignore[index]
    assert {"get", "post"} <= set(collection) and {"get", "put", "patch", "delete"} <= set(item)
    operations = [collection["get"], collection["post"], *item.values(), render]
    assert all(op["tags"] == ["canned replies"] for op in operations)
    assert {"201", "401", "403", "413", "415", "422"} <= set(collection["post"]["responses"])
    assert {"200", "401", "403", "404", "422"} <= set(render["responses"])
    for operation in (collection["post"], item["patch"], render):
        for name in PLACEHOLDERS:
            assert f"{{{{ {name} }}}}" in operation["description"]
    assert "canned_replies.view" in render["description"]
    assert "tickets.view" in render["description"]
    assert set(render["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "ticket_id",
        "user_id",
    }
    rendered = render["responses"]["200"]["content"]["application/vnd.api+json"]["schema"]
    data = rendered["properties"]["data"]["properties"]
    assert data["type"] == {"const": "canned_reply_renders"}
    assert set(data["attributes"]["properties"]) == {
        "canned_reply_id",
        "ticket_id",
        "agent_id",
        "body",
    }
    tags = [tag["name"] for tag in document["tags"]]  # type: ignore[index]
    assert "canned replies" in tags
