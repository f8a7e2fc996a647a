"""Attachments: multipart uploads, downloads, limits, hostile names, and files that live and
die with their rows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.config import Settings
from tests import factories
from tests.conftest import KeyFactory

LIMIT = 64 * 1024


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def settings(database_url: str, storage_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        storage_dir=str(storage_dir),
        max_attachment_bytes=LIMIT,
        max_attachments=3,
    )


def stored_files(storage_dir: Path) -> list[Path]:
    """Attachment files, stored or pending (the folder also holds the rate-limit counts)."""
    folders = [storage_dir / "files", storage_dir / "pending"]
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


@pytest.fixture
async def parties(client: httpx.AsyncClient) -> dict[str, str]:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    ticket = await factories.ticket(client, owner["id"])
    return {"owner": owner["id"], "agent": agent["id"], "ticket": ticket["id"]}


async def upload(
    client: httpx.AsyncClient,
    parties: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]],
    message: str = "See attached",
    **query: str,
) -> httpx.Response:
    data = {"ticket_id": parties["ticket"], "user_id": parties["agent"], "message": message}
    return await client.post("/ticket-messages", data=data, files=files, params=query)


async def test_upload_and_download(
    client: httpx.AsyncClient, parties: dict[str, str], storage_dir: Path
) -> None:
    png = bytes(range(256)) * 40
    response = await upload(
        client,
        parties,
        [
            ("attachments[]", ("screen shot.png", png, "image/png")),
            ("attachments[]", ("notes.txt", b"hello\n", "text/plain")),
        ],
        include="attachments",
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["data"]["attributes"]["message"] == "See attached"
    attachments = document["included"]
    assert [a["attributes"]["filename"] for a in attachments] == ["screen shot.png", "notes.txt"]
    first = attachments[0]["attributes"]
    assert (first["mime_type"], first["filesize"], first["message_id"]) == (
        "image/png",
        len(png),
        int(document["data"]["id"]),
    )
    assert [r["id"] for r in document["data"]["relationships"]["attachments"]["data"]] == [
        a["id"] for a in attachments
    ]
    download = await client.get(f"/ticket-attachments/{attachments[0]['id']}/download")
    assert download.status_code == 200
    assert download.content == png
    assert download.headers["content-type"] == "image/png"
    assert (
        download.headers["content-disposition"]
        == "attachment; filename=\"screen shot.png\"; filename*=UTF-8''screen%20shot.png"
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    files = stored_files(storage_dir)
    assert len(files) == 2
    assert all(len(f.name) == 32 and "screen" not in f.name for f in files)
    assert (await client.get(f"/tickets/{parties['ticket']}")).json()["data"]["attributes"][
        "status"
    ] == "replied"


async def test_message_may_be_blank_with_files(
    client: httpx.AsyncClient, parties: dict[str, str]
) -> None:
    response = await upload(
        client,
        parties,
        [("attachments", ("a.bin", b"\x00\x01", "application/octet-stream"))],
        message="",
    )
    assert response.status_code == 201
    assert response.json()["data"]["attributes"]["message"] == ""
    fields = {"ticket_id": parties["ticket"], "user_id": parties["agent"], "message": " "}
    multipart_without_files = [(k, (None, v.encode())) for k, v in fields.items()]
    response = await client.post("/ticket-messages", files=multipart_without_files)
    assert response.status_code == 422
    assert response.json()["errors"] == {"message": ["The message field is required."]}


async def test_add_attachments_to_a_message(
    client: httpx.AsyncClient, parties: dict[str, str]
) -> None:
    message = await factories.post_message(
        client, parties["ticket"], parties["owner"], "log attached next"
    )
    response = await client.post(
        f"/ticket-messages/{message['id']}/attachments",
        files=[("attachments[]", ("log.txt", b"line\n" * 10, "text/plain"))],
    )
    assert response.status_code == 201
    assert response.headers["location"].endswith(f"/ticket-messages/{message['id']}")
    included = response.json()["included"]
    assert [i["attributes"]["filename"] for i in included] == ["log.txt"]
    assert (
        await client.get(f"/ticket-attachments/{included[0]['id']}/download")
    ).content == b"line\n" * 10
    assert (
        await client.post(f"/ticket-messages/{message['id']}/attachments", json={})
    ).status_code == 415
    empty = await client.post(
        f"/ticket-messages/{message['id']}/attachments", files=[], data={"x": "1"}
    )
    assert empty.status_code in (415, 422)
    missing = await client.post(
        "/ticket-messages/99999/attachments", files=[("attachments[]", ("a", b"a", "text/plain"))]
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("name", "stored", "fallback"),
    [
        ("../../etc/passwd", "passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini", "win.ini"),
        # httpx percent-encodes quotes in part names, as browsers do
        ('evil"; filename="x.html', "evil%22; filename=%22x.html", "evil%22_ filename=%22x.html"),
        ("nul\x00byte\r\nheader.txt", "nul%00byte%0D%0Aheader.txt", "nul%00byte%0D%0Aheader.txt"),
        ("résumé 📎.pdf", "résumé 📎.pdf", "r_sum_ _.pdf"),
        (".", ".", "."),
        ("x" * 400, "x" * 255, "x" * 255),
    ],
)
async def test_hostile_file_names_are_metadata_only(
    client: httpx.AsyncClient,
    parties: dict[str, str],
    storage_dir: Path,
    name: str,
    stored: str,
    fallback: str,
) -> None:
    response = await upload(
        client, parties, [("attachments[]", (name, b"data", "text/plain"))], include="attachments"
    )
    assert response.status_code == 201, response.text
    attachment = response.json()["included"][0]
    assert attachment["attributes"]["filename"] == stored
    download = await client.get(f"/ticket-attachments/{attachment['id']}/download")
    disposition = download.headers["content-disposition"]
    assert disposition.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert "\r" not in disposition and "\n" not in disposition
    for path in stored_files(storage_dir):
        assert path.resolve().is_relative_to(storage_dir.resolve())
    assert not (storage_dir.parent / "etc").exists()


async def test_raw_control_characters_in_a_file_name(
    client: httpx.AsyncClient, parties: dict[str, str]
) -> None:
    boundary = "b0undary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (
            ("ticket_id", parties["ticket"]),
            ("user_id", parties["agent"]),
            ("message", "raw"),
        )
    ]
    parts.append(
        f"--{boundary}\r\nContent-Disposition: form-data; "
        'name="attachments[]"; filename="be\x07ll\x1b;\\x.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nbody\r\n".encode()
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    response = await client.post(
        "/ticket-messages",
        content=body,
        params={"include": "attachments"},
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    attachment = response.json()["included"][0]
    assert attachment["attributes"]["filename"] == "x.txt"
    download = await client.get(f"/ticket-attachments/{attachment['id']}/download")
    assert download.content == b"body"


async def test_a_text_value_under_the_file_field_is_refused(
    client: httpx.AsyncClient, parties: dict[str, str]
) -> None:
    fields = {
        "ticket_id": parties["ticket"],
        "user_id": parties["agent"],
        "message": "m",
        "attachments[]": "not a file",
    }
    response = await client.post(
        "/ticket-messages", files=[(k, (None, v.encode())) for k, v in fields.items()]
    )
    assert response.status_code == 422
    assert "attachments[]" in response.json()["errors"]
    empty_name = await client.post(
        "/ticket-messages",
        data=fields | {"attachments[]": ""},
        files=[("attachments[]", ("", b"x", "text/plain"))],
    )
    assert empty_name.status_code == 422


async def test_mime_type_from_extension_when_not_declared(
    client: httpx.AsyncClient, parties: dict[str, str]
) -> None:
    response = await upload(
        client,
        parties,
        [
            ("attachments[]", ("report.pdf", b"%PDF-1.4", "application/octet-stream")),
            ("attachments[]", ("blob", b"?", "not a type")),
        ],
        include="attachments",
    )
    types = [i["attributes"]["mime_type"] for i in response.json()["included"]]
    assert types == ["application/pdf", "application/octet-stream"]


async def test_size_limit_is_413_and_leaves_nothing(
    client: httpx.AsyncClient, parties: dict[str, str], storage_dir: Path
) -> None:
    files = [
        ("attachments[]", ("ok.txt", b"ok", "text/plain")),
        ("attachments[]", ("big.bin", b"x" * (LIMIT + 1), "application/octet-stream")),
    ]
    response = await upload(client, parties, files)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert stored_files(storage_dir) == []
    assert (await client.get("/ticket-messages")).json()["meta"]["total"] == 0
    exactly = await upload(
        client, parties, [("attachments[]", ("edge.bin", b"x" * LIMIT, "application/octet-stream"))]
    )
    assert exactly.status_code == 201


async def test_too_many_files_is_422(
    client: httpx.AsyncClient, parties: dict[str, str], storage_dir: Path
) -> None:
    files = [("attachments[]", (f"f{n}.txt", b"x", "text/plain")) for n in range(4)]
    response = await upload(client, parties, files)
    assert response.status_code in (400, 422)
    assert stored_files(storage_dir) == []


async def test_failed_request_leaves_no_file_and_no_row(
    client: httpx.AsyncClient, parties: dict[str, str], storage_dir: Path
) -> None:
    data = {"ticket_id": "99999", "user_id": parties["agent"], "message": "lost"}
    response = await client.post(
        "/ticket-messages", data=data, files=[("attachments[]", ("a.txt", b"abc", "text/plain"))]
    )
    assert response.status_code == 422
    assert stored_files(storage_dir) == []
    response = await client.post(
        "/ticket-messages",
        data={"message": "x"},
        files=[("attachments[]", ("a.txt", b"abc", "text/plain"))],
    )
    assert response.status_code == 422
    assert stored_files(storage_dir) == []
    bad = await client.post(
        "/ticket-messages",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert bad.status_code in (400, 422)
    assert stored_files(storage_dir) == []
    assert (await client.get("/ticket-messages")).json()["meta"]["total"] == 0


async def attach(client: httpx.AsyncClient, ticket: str, user: str) -> dict[str, Any]:
    response = await client.post(
        "/ticket-messages",
        data={"ticket_id": ticket, "user_id": user, "message": "file"},
        files=[("attachments[]", ("a.txt", os.urandom(100), "text/plain"))],
        params={"include": "attachments"},
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def test_deleting_removes_files(
    client: httpx.AsyncClient, parties: dict[str, str], storage_dir: Path
) -> None:
    first = await attach(client, parties["ticket"], parties["agent"])
    await attach(client, parties["ticket"], parties["owner"])
    assert len(stored_files(storage_dir)) == 2
    assert (await client.delete(f"/ticket-messages/{first['data']['id']}")).status_code == 204
    assert len(stored_files(storage_dir)) == 1
    assert (
        await client.get(f"/ticket-attachments/{first['included'][0]['id']}/download")
    ).status_code == 404
    assert (await client.delete(f"/tickets/{parties['ticket']}")).status_code == 204
    assert stored_files(storage_dir) == []

    customer = await factories.user(client)
    mine = await factories.ticket(client, customer["id"])
    await attach(client, mine["id"], customer["id"])
    elsewhere = await factories.ticket(client, parties["owner"])
    await attach(client, elsewhere["id"], customer["id"])
    kept = await attach(client, elsewhere["id"], parties["owner"])
    assert len(stored_files(storage_dir)) == 3
    assert (
        await client.delete(f"/users/{customer['id']}", params={"force": "true"})
    ).status_code == 204
    assert len(stored_files(storage_dir)) == 1
    download = await client.get(f"/ticket-attachments/{kept['included'][0]['id']}/download")
    assert download.status_code == 200


async def test_download_errors_and_permissions(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, parties: dict[str, str]
) -> None:
    document = await attach(client, parties["ticket"], parties["agent"])
    path = f"/ticket-attachments/{document['included'][0]['id']}/download"
    assert (await client.get("/ticket-attachments/99999/download")).status_code == 404
    assert (await client.get("/ticket-attachments/abc/download")).status_code == 404
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1/admin") as http:
        assert (await http.get(path)).status_code == 401
        key = await make_key("tickets.view")
        assert (await http.get(path, headers={"Authorization": f"Bearer {key}"})).status_code == 403
        files = [("attachments[]", ("a", b"a", "text/plain"))]
        response = await http.post(
            f"/ticket-messages/{document['data']['id']}/attachments",
            files=files,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 403
