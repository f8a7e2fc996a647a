"""A write storm against a running server: many clients creating tickets, messages (some with
an attachment) and updating tickets at once, each remembering exactly what the server
acknowledged with a 2xx, so that the database can be checked against it afterwards."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Acknowledged:
    """Everything the server answered 2xx to, keyed by the ids it gave."""

    tickets: dict[int, str] = field(default_factory=dict)  # id -> subject
    messages: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (ticket, text)
    attachments: dict[int, bytes] = field(default_factory=dict)  # id -> content
    priorities: dict[int, str] = field(default_factory=dict)  # ticket -> last priority acked
    statuses: list[int] = field(default_factory=list)  # every status code seen
    failures: list[str] = field(default_factory=list)  # transport errors (the kill)


async def storm(
    base_url: str, token: str, user_id: int, clients: int, seconds: float
) -> Acknowledged:
    acked = Acknowledged()
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    # Idle connections expire here well before uvicorn closes them (5 s, as httpx's default
    # expiry): with equal timeouts a connection idle for five seconds could be picked for a
    # request just as the server closed it, a ReadError for a request the server never saw.
    limits = httpx.Limits(max_connections=clients, keepalive_expiry=1.0)

    async def client(http: httpx.AsyncClient, n: int) -> None:
        rng = random.Random(n)
        mine: list[int] = []  # each client updates only its own tickets: the last ack wins
        while time.monotonic() < deadline:
            op = rng.random()
            try:
                if not mine or op < 0.3:
                    subject = f"storm {n}-{next(counter)} \u00e9\u2713"
                    r = await http.post("/tickets", json={"subject": subject, "user_id": user_id})
                    acked.statuses.append(r.status_code)
                    if r.status_code == 201:
                        ticket = int(r.json()["data"]["id"])
                        acked.tickets[ticket] = subject
                        mine.append(ticket)
                elif op < 0.6:
                    ticket = rng.choice(mine)
                    text = f"message {n}-{next(counter)}"
                    r = await http.post(
                        "/ticket-messages",
                        json={"ticket_id": ticket, "user_id": user_id, "message": text},
                    )
                    acked.statuses.append(r.status_code)
                    if r.status_code == 201:
                        acked.messages[int(r.json()["data"]["id"])] = (ticket, text)
                elif op < 0.7:
                    ticket = rng.choice(mine)
                    text = f"file {n}-{next(counter)}"
                    content = rng.randbytes(rng.randint(1, 20_000))
                    r = await http.post(
                        "/ticket-messages",
                        data={"ticket_id": str(ticket), "user_id": str(user_id), "message": text},
                        files=[
                            ("attachments[]", ("data.bin", content, "application/octet-stream"))
                        ],
                        params={"include": "attachments"},
                    )
                    acked.statuses.append(r.status_code)
                    if r.status_code == 201:
                        body = r.json()
                        acked.messages[int(body["data"]["id"])] = (ticket, text)
                        acked.attachments[int(body["included"][0]["id"])] = content
                else:
                    ticket = rng.choice(mine)
                    priority = rng.choice(["low", "medium", "high", "urgent"])
                    r = await http.patch(f"/tickets/{ticket}", json={"priority": priority})
                    acked.statuses.append(r.status_code)
                    if r.status_code == 200:
                        acked.priorities[ticket] = priority
            except httpx.TransportError as exc:
                acked.failures.append(type(exc).__name__)
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(
        base_url=f"{base_url}/api/v1/admin", headers=headers, limits=limits, timeout=30
    ) as http:
        await asyncio.gather(*(client(http, n) for n in range(clients)))
    return acked
