"""Test data made through the API itself, so every fixture row passed the same rules."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from fastapi import FastAPI

from supportdesk import timestamps
from supportdesk.ticket_messages import repository as messages_repository

_counter = itertools.count(1)


async def user(client: httpx.AsyncClient, **attributes: Any) -> dict[str, Any]:
    body = {"email": f"user{next(_counter)}@example.com", "first_name": "Test", **attributes}
    response = await client.post("/users", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def staff(client: httpx.AsyncClient, **attributes: Any) -> dict[str, Any]:
    return await user(client, role_id=1, **attributes)


async def ticket(
    client: httpx.AsyncClient, user_id: str | int, **attributes: Any
) -> dict[str, Any]:
    body = {"subject": "Something is broken", "user_id": int(user_id), **attributes}
    response = await client.post("/tickets", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def message(app: FastAPI, ticket_id: str | int, user_id: str | int, text: str) -> int:
    """A ticket message written straight to the database (the messages API is issue 3's)."""
    now = timestamps.now()
    async with app.state.db.transaction() as conn:
        return await messages_repository.writer.insert(
            conn,
            {
                "ticket_id": int(ticket_id),
                "user_id": int(user_id),
                "message": text,
                "created_at": now,
                "updated_at": now,
            },
        )


async def post_message(
    client: httpx.AsyncClient, ticket_id: str | int, user_id: str | int, text: str = "Hello"
) -> dict[str, Any]:
    """A message through the Ticket Messages API."""
    body = {"ticket_id": int(ticket_id), "user_id": int(user_id), "message": text}
    response = await client.post("/ticket-messages", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
