"""Idempotency-Key across worker processes (SPEC 12): `serve --workers 2`, 20 clients sending
one create with one key at once over real HTTP, on SQLite and PostgreSQL. The row's unique
insert decides: one ticket, every other answer a replay of it or a 409 while it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.e2e.conftest import serving

CLIENTS = 20


async def _race(base: str, token: str) -> tuple[list[httpx.Response], httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{base}/api/v1/admin"
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        owner = (await http.post("/users", json={"email": "race@example.com"})).json()["data"]
    body = {"subject": "Pay invoice", "user_id": int(owner["id"])}
    # one connection per client, all opened before the first request, so the requests
    # reach both workers at once
    clients = [httpx.AsyncClient(base_url=api, headers=headers, timeout=30) for _ in range(CLIENTS)]
    await asyncio.gather(*(client.get("/ticket-settings") for client in clients))
    gate = asyncio.Event()

    async def one(client: httpx.AsyncClient) -> httpx.Response:
        await gate.wait()
        return await client.post("/tickets", json=body, headers={"Idempotency-Key": "pay-42"})

    racing = [asyncio.create_task(one(client)) for client in clients]
    await asyncio.sleep(0.05)
    gate.set()
    responses = await asyncio.gather(*racing)
    for client in clients[1:]:
        await client.aclose()
    return responses, clients[0]


async def _check(base: str, token: str) -> None:
    responses, http = await _race(base, token)
    try:
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 409}, statuses
        created = [r for r in responses if r.status_code == 201]
        firsts = [r for r in created if "idempotent-replayed" not in r.headers]
        assert len(firsts) == 1, statuses
        assert {r.content for r in created} == {firsts[0].content}
        assert {r.headers["location"] for r in created} == {firsts[0].headers["location"]}
        tickets = (await http.get("/tickets")).json()
        assert tickets["meta"]["total"] == 1
        assert tickets["data"][0]["id"] == firsts[0].json()["data"]["id"]
        feed = await http.get("/events", params={"filter[event]": "ticket.created"})
        assert len(feed.json()["data"]) == 1
        later = await http.post(
            "/tickets",
            content=firsts[0].request.content,
            headers={"Idempotency-Key": "pay-42", "Content-Type": "application/json"},
        )
        assert later.status_code == 201
        assert later.headers["idempotent-replayed"] == "true"
        assert later.content == firsts[0].content
        print(f"\n{statuses.count(201)} x 201 (1 first), {statuses.count(409)} x 409")
    finally:
        await http.aclose()


def test_twenty_clients_two_workers_one_ticket(tmp_path: Path, empty_database_url: str) -> None:
    with serving(tmp_path, empty_database_url, "--workers", "2") as server:
        asyncio.run(_check(server.base_url, server.demo_token))
        log = server.output.read_text()
        assert "Traceback" not in log
