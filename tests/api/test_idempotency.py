"""Idempotency-Key on every POST (SPEC 12), on SQLite and PostgreSQL: replays, reuse with
another request, per-key scope, uploads, kept and released answers, header syntax, expiry,
in-flight and abandoned reservations, cleanup, concurrency and the OpenAPI document."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, select, update

from supportdesk.auth import repository as auth_repository
from supportdesk.auth.keys import hash_token
from supportdesk.auth.service import create_key
from supportdesk.config import Settings
from supportdesk.errors import DatabaseUnavailable
from supportdesk.idempotency import service as idempotency
from supportdesk.idempotency.keys import StoredResponse, fingerprint
from supportdesk.jobs import idempotency as idempotency_job
from supportdesk.jobs.runner import JobContext
from supportdesk.jsonapi import body as body_module
from supportdesk.tables import idempotency_keys
from supportdesk.tickets import service as tickets_service
from tests import factories
from tests.conftest import KeyFactory, Secrets

KEY = "Idempotency-Key"
LONG_AGO = "2000-01-01T00:00:00.000000Z"
ABANDONED = "2020-01-01T00:00:00.000000Z"  # a reservation far older than ABANDONED_AFTER
TICKETS = "/api/v1/admin/tickets"


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def settings(database_url: str, storage_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        storage_dir=str(storage_dir),
        jobs=False,
        webhook_allow_private=True,
        max_attachment_bytes=64 * 1024,
        max_attachments=3,
    )


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> dict[str, Any]:
    return await factories.user(client)


def stored_files(storage_dir: Path) -> list[Path]:
    folders = [storage_dir / "files", storage_dir / "pending"]
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


async def key_id(app: FastAPI, token: str) -> int:
    async with app.state.db.read() as conn:
        row = await auth_repository.find_by_hash(conn, hash_token(token))
    assert row is not None
    return int(row["id"])


async def rows(app: FastAPI) -> list[dict[str, Any]]:
    statement = select(idempotency_keys).order_by(idempotency_keys.c.key)
    async with app.state.db.read() as conn:
        return [dict(row) for row in await conn.fetch_all(statement)]


async def set_row(app: FastAPI, key: str, **values: Any) -> None:
    statement = (
        update(idempotency_keys).where(idempotency_keys.c.key == bindparam("k")).values(values)
    )
    async with app.state.db.transaction() as conn:
        assert await conn.execute(statement, {"k": key}) == 1


async def total(client: httpx.AsyncClient, path: str, **params: str) -> int:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    count: int = response.json()["meta"]["total"]
    return count


async def events(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await client.get("/events", params={"filter[event]": name, "limit": "1000"})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def assert_replay(first: httpx.Response, again: httpx.Response) -> None:
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get("location") == first.headers.get("location")
    # the request id is the repeat's own
    assert again.headers["x-request-id"] != first.headers["x-request-id"]


async def test_a_repeated_create_replays_the_first_answer_and_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body = {"subject": "Printer on fire", "user_id": int(owner["id"])}
    first = await client.post("/tickets", json=body, headers={KEY: "create-1"})
    assert first.status_code == 201, first.text
    assert first.headers["location"].endswith(f"/tickets/{first.json()['data']['id']}")
    # stored before it was sent: a retry that follows the answer always finds it
    [row] = await rows(app)
    assert (row["key"], row["status_code"]) == ("create-1", 201)

    again = await client.post("/tickets", json=body, headers={KEY: "create-1"})
    assert_replay(first, again)
    assert await total(client, "/tickets") == 1
    assert len(await events(client, "ticket.created")) == 1
    assert len(await rows(app)) == 1


async def test_another_request_with_the_same_key_is_422(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body = {"subject": "One", "user_id": int(owner["id"])}
    assert (await client.post("/tickets", json=body, headers={KEY: "k"})).status_code == 201
    others = [
        client.post("/tickets", json={**body, "subject": "Two"}, headers={KEY: "k"}),
        client.post("/tickets", json=body, params={"include": "user"}, headers={KEY: "k"}),
        client.post("/users", json={"email": "x@example.com"}, headers={KEY: "k"}),
    ]
    for pending in others:
        response = await pending
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["code"] == "idempotency_key_reused"
        assert list(error["errors"]) == ["Idempotency-Key"]
        assert "idempotent-replayed" not in response.headers
    assert await total(client, "/tickets") == 1
    assert await total(client, "/users") == 1  # the owner only


async def test_keys_are_scoped_to_the_api_key(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyFactory, owner: dict[str, Any]
) -> None:
    body = {"subject": "Shared key", "user_id": int(owner["id"])}
    first = await client.post("/tickets", json=body, headers={KEY: "same"})
    other = await make_key("*")
    second = await client.post(
        "/tickets", json=body, headers={KEY: "same", "Authorization": f"Bearer {other}"}
    )
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert first.json()["data"]["id"] != second.json()["data"]["id"]
    assert await total(client, "/tickets") == 2
    assert sorted(row["api_key_id"] for row in await rows(app)) == sorted(
        [await key_id(app, client.headers["authorization"][7:]), await key_id(app, other)]
    )


async def test_a_repeated_upload_replays_with_one_message_one_attachment_one_file(
    client: httpx.AsyncClient, owner: dict[str, Any], storage_dir: Path
) -> None:
    ticket = await factories.ticket(client, owner["id"])
    data = {"ticket_id": ticket["id"], "user_id": owner["id"], "message": "See attached"}
    files = [("attachments[]", ("log.txt", b"line 1\nline 2\n", "text/plain"))]
    first, again = [
        await client.post(
            "/ticket-messages",
            data=data,
            files=files,
            headers={KEY: "upload"},
            params={"include": "attachments"},
        )
        for _ in range(2)
    ]
    assert first.status_code == 201, first.text
    # httpx draws a new multipart boundary for every request: the key still matches
    assert first.request.headers["content-type"] != again.request.headers["content-type"]
    assert_replay(first, again)
    assert await total(client, "/ticket-messages", **{"filter[ticket_id]": ticket["id"]}) == 1
    assert len(first.json()["included"]) == 1
    assert len(stored_files(storage_dir)) == 1

    # the same file content under another name is another request
    renamed = [("attachments[]", ("other.txt", b"line 1\nline 2\n", "text/plain"))]
    other = await client.post("/ticket-messages", data=data, files=renamed, headers={KEY: "upload"})
    assert other.json()["code"] == "idempotency_key_reused"

    # files added to an existing message, twice with one key
    message_id = first.json()["data"]["id"]
    more = [("attachments[]", ("more.txt", b"more", "text/plain"))]
    added = await client.post(
        f"/ticket-messages/{message_id}/attachments", files=more, headers={KEY: "add"}
    )
    assert added.status_code == 201, added.text
    repeated = await client.post(
        f"/ticket-messages/{message_id}/attachments", files=more, headers={KEY: "add"}
    )
    assert_replay(added, repeated)
    assert len(stored_files(storage_dir)) == 2
    assert len(await events(client, "ticket_attachment.created")) == 2


async def test_a_large_upload_is_spooled_and_replayed_in_chunks(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    storage_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The body read ahead for the fingerprint goes to a temporary file past the spool's
    memory, and reaches the route intact, in many chunks."""
    monkeypatch.setattr(body_module, "_SPOOL_MEMORY", 4096)
    monkeypatch.setattr(body_module, "_CHUNK", 1000)
    ticket = await factories.ticket(client, owner["id"])
    data = {"ticket_id": ticket["id"], "user_id": owner["id"], "message": "Big ones"}
    contents = [bytes([n]) * 60_000 + bytes(range(256)) for n in range(3)]
    files = [
        ("attachments[]", (f"f{n}.bin", c, "application/octet-stream"))
        for n, c in enumerate(contents)
    ]
    query = {"include": "attachments"}
    first = await client.post(
        "/ticket-messages", data=data, files=files, params=query, headers={KEY: "big"}
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        "/ticket-messages", data=data, files=files, params=query, headers={KEY: "big"}
    )
    assert_replay(first, again)
    attachments = first.json()["included"]
    for attachment, content in zip(attachments, contents, strict=True):
        download = await client.get(f"/ticket-attachments/{attachment['id']}/download")
        assert download.content == content
    assert len(stored_files(storage_dir)) == 3


async def test_body_limits_still_apply(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any], settings: Settings
) -> None:
    ticket = await factories.ticket(client, owner["id"])
    padding = "x" * settings.max_body_bytes
    json_body = {"subject": "Big", "user_id": int(owner["id"]), "pad": padding}
    too_big = await client.post("/tickets", json=json_body, headers={KEY: "json"})
    assert too_big.status_code == 413
    data = {"ticket_id": ticket["id"], "user_id": owner["id"], "message": "Too big"}
    one_too_many = settings.max_attachment_bytes + 1
    files = [("attachments[]", ("big.bin", b"x" * one_too_many, "application/octet-stream"))]
    over = await client.post("/ticket-messages", data=data, files=files, headers={KEY: "file"})
    assert over.status_code == 413, over.text  # the route's per-file limit, a kept answer
    huge = [("attachments[]", ("huge.bin", b"x" * settings.max_upload_bytes, "text/plain"))]
    whole = await client.post("/ticket-messages", data=data, files=huge, headers={KEY: "huge"})
    assert whole.status_code == 413  # past the largest body: refused before any reservation
    assert [row["key"] for row in await rows(app)] == ["file"]
    assert await total(client, "/ticket-messages") == 0


async def test_a_client_error_is_kept_and_replayed(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    invalid = {"subject": "", "user_id": int(owner["id"])}
    first = await client.post("/tickets", json=invalid, headers={KEY: "bad"})
    assert first.status_code == 422
    assert first.json()["code"] == "validation_failed"
    again = await client.post("/tickets", json=invalid, headers={KEY: "bad"})
    assert_replay(first, again)
    # the key is spent on that request: a corrected body needs a new key
    fixed = await client.post("/tickets", json={**invalid, "subject": "Ok"}, headers={KEY: "bad"})
    assert fixed.json()["code"] == "idempotency_key_reused"
    missing = await client.post("/webhooks/999/test", headers={KEY: "missing"})
    assert missing.status_code == 404
    assert_replay(missing, await client.post("/webhooks/999/test", headers={KEY: "missing"}))
    assert [row["status_code"] for row in await rows(app)] == [422, 404]
    assert await total(client, "/tickets") == 0


@pytest.mark.parametrize(
    "fault",
    [RuntimeError("boom"), DatabaseUnavailable("The database is unavailable; try again.")],
    ids=["500", "503"],
)
async def test_a_server_error_releases_the_key_and_a_retry_runs(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    fault: Exception,
) -> None:
    body = {"subject": "Flaky", "user_id": int(owner["id"])}

    async def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise fault

    with monkeypatch.context() as patched:
        patched.setattr(tickets_service, "create_ticket", failing)
        failed = await client.post("/tickets", json=body, headers={KEY: "retry-me"})
    assert failed.status_code >= 500
    assert await rows(app) == []
    retried = await client.post("/tickets", json=body, headers={KEY: "retry-me"})
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert await total(client, "/tickets") == 1


@pytest.mark.parametrize(
    "value",
    ["", "has space", "x" * 256, "tab\there", b"caf\xc3\xa9"],
    ids=["empty", "space", "too-long", "control", "non-ascii"],
)
async def test_a_malformed_key_is_400_and_nothing_is_written(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any], value: str | bytes
) -> None:
    body = {"subject": "Hello", "user_id": int(owner["id"])}
    response = await client.post("/tickets", json=body, headers={KEY: value})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_idempotency_key"
    assert await total(client, "/tickets") == 0
    assert await rows(app) == []


async def test_key_syntax_limits(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    body = {"subject": "Hello", "user_id": int(owner["id"])}
    longest = "~" + "k" * 253 + "!"
    assert (await client.post("/tickets", json=body, headers={KEY: longest})).status_code == 201
    twice = await client.post("/tickets", json=body, headers=[(KEY, "a"), (KEY, "b")])
    assert twice.status_code == 400
    assert twice.json()["code"] == "invalid_idempotency_key"


async def test_authentication_permission_and_rate_limit_come_first(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    owner: dict[str, Any],
    secrets: Secrets,
) -> None:
    body = {"subject": "Hello", "user_id": int(owner["id"])}
    viewer = await make_key("tickets.view")
    _, limited = await create_key(app.state.db, "limited", ["*"], [], 1)
    secrets.tokens.append(limited)
    as_limited = {"Authorization": f"Bearer {limited}"}
    assert (await client.get("/tickets", headers=as_limited)).status_code == 200
    for token, status in (("nope", 401), (viewer, 403), (limited, 429)):
        response = await client.post(
            "/tickets",
            json=body,
            headers={KEY: "", "Authorization": f"Bearer {token}"},  # malformed, but first...
        )
        assert response.status_code == status
    assert await rows(app) == []


async def test_only_posts_take_a_key(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    ticket = await factories.ticket(client, owner["id"])
    assert (await client.get("/tickets", headers={KEY: "x y"})).status_code == 200
    patch = {"priority": "high"}
    for _ in range(2):
        response = await client.patch(f"/tickets/{ticket['id']}", json=patch, headers={KEY: "p"})
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers
    assert await rows(app) == []  # nor does a POST without the header write a row


async def test_an_expired_key_is_free_again(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body = {"subject": "Daily", "user_id": int(owner["id"])}
    first = await client.post("/tickets", json=body, headers={KEY: "daily"})
    await set_row(app, "daily", expires_at=LONG_AGO)
    second = await client.post("/tickets", json=body, headers={KEY: "daily"})
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["data"]["id"] != first.json()["data"]["id"]
    [row] = await rows(app)
    assert row["expires_at"] > first.json()["data"]["attributes"]["created_at"]
    # expired with another body: a new request, not a reuse
    await set_row(app, "daily", expires_at=LONG_AGO)
    third = await client.post("/tickets", json={**body, "subject": "New"}, headers={KEY: "daily"})
    assert third.status_code == 201
    assert await total(client, "/tickets") == 3


def ticket_request(user_id: int) -> tuple[bytes, str]:
    """A create-ticket body as bytes and its fingerprint, as the guard computes it."""
    body = orjson.dumps({"subject": "Held", "user_id": user_id})
    return body, fingerprint("POST", TICKETS, b"", "application/json", body)


async def test_a_repeat_while_the_first_is_in_flight_is_409(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body, print_ = ticket_request(int(owner["id"]))
    mine = await key_id(app, client.headers["authorization"][7:])
    held = await idempotency.reserve(app.state.db, mine, "held", print_)
    headers = {KEY: "held", "Content-Type": "application/json"}
    response = await client.post("/tickets", content=body, headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_flight"
    assert response.headers["retry-after"] == "1"
    # another body under a held key is a reuse, whether or not the first has answered
    other = await client.post("/tickets", content=body[:-1] + b" }", headers=headers)
    assert other.json()["code"] == "idempotency_key_reused"
    assert await total(client, "/tickets") == 0

    # the holder answers: repeats get its answer
    answer = StoredResponse(201, {"content-type": "application/vnd.api+json"}, b'{"held":1}')
    assert await idempotency.record(held, answer)
    replayed = await client.post("/tickets", content=body, headers=headers)
    assert (replayed.status_code, replayed.content) == (201, b'{"held":1}')
    assert replayed.headers["idempotent-replayed"] == "true"


async def test_an_abandoned_reservation_is_taken_over(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body, print_ = ticket_request(int(owner["id"]))
    mine = await key_id(app, client.headers["authorization"][7:])
    await idempotency.reserve(app.state.db, mine, "crashed", print_)
    await set_row(app, "crashed", created_at=ABANDONED)
    dead = idempotency.Reservation(app.state.db, mine, "crashed", ABANDONED)
    headers = {KEY: "crashed", "Content-Type": "application/json"}
    response = await client.post("/tickets", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    # the dead holder cannot overwrite the answer, or free the key, if it ever comes back
    lost = StoredResponse(500, {}, b"late")
    assert not await idempotency.record(dead, lost)
    await idempotency.release(dead)
    again = await client.post("/tickets", content=body, headers=headers)
    assert_replay(response, again)
    assert await total(client, "/tickets") == 1


async def test_the_job_purges_expired_keys(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "PURGE_BATCH", 2)  # several batches
    for n in range(5):
        body = {"subject": f"T{n}", "user_id": int(owner["id"])}
        assert (await client.post("/tickets", json=body, headers={KEY: f"k{n}"})).status_code == 201
    for n in range(4):
        await set_row(app, f"k{n}", expires_at=LONG_AGO)
    context = JobContext(app.state.db, app.state.settings, app.state.bus, "test")
    await idempotency_job.step(context)
    assert [row["key"] for row in await rows(app)] == ["k4"]
    assert await idempotency.purge(app.state.db) == 0


async def test_twenty_concurrent_repeats_create_one_ticket(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body = {"subject": "Double click", "user_id": int(owner["id"])}
    responses = await asyncio.gather(
        *(client.post("/tickets", json=body, headers={KEY: "race"}) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    firsts = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(firsts) == 1
    assert {r.content for r in created} == {firsts[0].content}
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "idempotency_key_in_flight"
    assert await total(client, "/tickets") == 1
    assert len(await events(client, "ticket.created")) == 1
    settled = await client.post("/tickets", json=body, headers={KEY: "race"})
    assert_replay(firsts[0], settled)


async def test_any_post_replays(client: httpx.AsyncClient) -> None:
    """Users and webhooks and their actions, as the tickets and messages above."""
    user = await client.post("/users", json={"email": "once@example.com"}, headers={KEY: "u"})
    assert_replay(
        user, await client.post("/users", json={"email": "once@example.com"}, headers={KEY: "u"})
    )
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    created = await client.post("/webhooks", json=hook, headers={KEY: "w"})
    assert_replay(created, await client.post("/webhooks", json=hook, headers={KEY: "w"}))
    webhook_id = created.json()["data"]["id"]
    rotated = await client.post(f"/webhooks/{webhook_id}/rotate-secret", headers={KEY: "r"})
    again = await client.post(f"/webhooks/{webhook_id}/rotate-secret", headers={KEY: "r"})
    assert_replay(rotated, again)
    tested = await client.post(f"/webhooks/{webhook_id}/test", headers={KEY: "t"})
    assert tested.status_code == 202
    assert_replay(tested, await client.post(f"/webhooks/{webhook_id}/test", headers={KEY: "t"}))
    assert await total(client, "/users") == 1
    assert await total(client, "/webhooks") == 1
    assert await total(client, f"/webhooks/{webhook_id}/deliveries") == 1


async def test_every_post_documents_the_key_and_its_answers(anonymous: httpx.AsyncClient) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    posts = {
        path: item["post"]
        for path, item in document["paths"].items()
        if "post" in item and path.startswith("/api/v1/admin")
    }
    assert len(posts) >= 8
    for path, operation in posts.items():
        names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert names == ["Idempotency-Key"], path
        responses = operation["responses"]
        assert {"400", "409", "422"} <= set(responses), path
        assert "idempotency_key_reused" in responses["422"]["description"], path
        assert "idempotency_key_in_flight" in responses["409"]["description"], path
        assert "required" in responses["422"]["content"]["application/json"]["schema"], path
        success = next(status for status in responses if status.startswith("2"))
        assert "Idempotent-Replayed" in responses[success]["headers"], path
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "post":
                names = [p["name"] for p in operation.get("parameters", [])]
                assert "Idempotency-Key" not in names, (method, path)
