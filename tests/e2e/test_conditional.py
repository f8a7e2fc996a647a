"""Conditional writes across processes: `supportdesk serve --workers 2`, clients on separate
connections PATCH one ticket at once with the same `If-Match`; exactly one wins each round, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.e2e.conftest import serving

WRITERS = 8
ROUNDS = 3


async def _race(base: str, token: str) -> None:
    api = f"{base}/api/v1/admin"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        owner = (await http.post("/users", json={"email": "race@example.com"})).json()["data"]
        ticket = await http.post("/tickets", json={"subject": "Race", "user_id": owner["id"]})
        url = f"/tickets/{ticket.json()['data']['id']}"
        current = ticket.headers["etag"]
        # one connection each, so the kernel spreads them over both workers
        writers = [
            httpx.AsyncClient(base_url=api, headers=headers, timeout=30) for _ in range(WRITERS)
        ]
        try:
            for round_ in range(ROUNDS):
                responses = await asyncio.gather(
                    *(
                        writer.patch(
                            url,
                            json={"subject": f"Round {round_} writer {n}"},
                            headers={"If-Match": current},
                        )
                        for n, writer in enumerate(writers)
                    )
                )
                statuses = sorted(response.status_code for response in responses)
                assert statuses == [200] + [412] * (WRITERS - 1), statuses
                winner = next(r for r in responses if r.status_code == 200)
                read = await http.get(url)
                assert read.headers["etag"] == winner.headers["etag"] != current
                assert read.json() == winner.json()
                current = winner.headers["etag"]
        finally:
            for writer in writers:
                await writer.aclose()
        history = (await http.get(f"{url}/history")).json()["data"]
        names = [item["attributes"]["event"] for item in history]
        assert names == ["ticket.created"] + ["ticket.updated"] * ROUNDS
        # a reader holding the last tag gets 304 from either worker
        for _ in range(4):
            async with httpx.AsyncClient(base_url=api, headers=headers) as fresh:
                response = await fresh.get(url, headers={"If-None-Match": current})
                assert response.status_code == 304 and response.content == b""


def test_two_workers_one_if_match_one_winner(tmp_path: Path, empty_database_url: str) -> None:
    with serving(tmp_path, empty_database_url, "--workers", "2") as server:
        asyncio.run(_race(server.base_url, server.demo_token))
        log = server.output.read_text()
        assert "Traceback" not in log and "locked" not in log
