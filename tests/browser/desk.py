"""The people and data of the browser tests, made through the API with the demo key, and
signing in through the real sign-in form (`sign_in`)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import Server

# every wait of these tests; a step that takes longer is a failure, not slowness
WAIT_MS = 10_000
_serial = itertools.count(1)


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    password: str
    name: str  # as the pages show it (first and last name)
    staff: bool


class Api:
    """The admin API as the demo key (JSON bodies; the answers' `data`)."""

    def __init__(self, server: Server) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"{server.base_url}/api/v1/admin",
            headers={"Authorization": f"Bearer {server.demo_token}"},
            timeout=10,
        )

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def get(self, path: str, params: dict[str, str]) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def person(self, first: str, last: str, *, staff: bool) -> Person:
        """A new user with a password of their own (an address no other test uses)."""
        email = f"{first.lower()}.{next(_serial)}@example.com"
        password = f"pw-{first.lower()}-{next(_serial)}-secret"
        body = {"email": email, "first_name": first, "last_name": last, "password": password,
                "role_id": 1 if staff else None}  # fmt: skip
        data = await self.post("/users", body)
        return Person(int(data["id"]), email, password, f"{first} {last}", staff)

    async def ticket(self, customer: Person, subject: str, *messages: tuple[Person, str]) -> int:
        data = await self.post("/tickets", {"subject": subject, "user_id": customer.id})
        for author, text in messages:
            await self.message(int(data["id"]), author, text)
        return int(data["id"])

    async def message(
        self, ticket_id: int, author: Person, text: str, *, internal: bool = False
    ) -> None:
        body = {"ticket_id": ticket_id, "user_id": author.id, "message": text}
        if internal:
            body["internal"] = True
        await self.post("/ticket-messages", body)

    async def canned_reply(self, name: str, body: str) -> int:
        data = await self.post("/canned-replies", {"name": name, "body": body})
        return int(data["id"])

    async def close(self) -> None:
        await self.client.aclose()


async def sign_in(page: Page, email: str, password: str, landing: str) -> None:
    """Through the sign-in form, as a person does; ends on `landing` (a path)."""
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(landing) + "$"), timeout=WAIT_MS)


@dataclass
class Desk:
    """The session's desk: the API, the demo staff login (`admin`), a second staff member
    (`agent`) and a customer, each able to give a signed-in browser state (`state`)."""

    server: Server
    api: Api
    admin: Person
    agent: Person
    customer: Person
    states: dict[str, Any]

    async def state(self, browser: Browser, person: Person) -> Any:
        """Cookies of a session of `person`, signed in once through the form (sign-ins are
        rate-limited: each further context starts from this state)."""
        if person.email not in self.states:
            context = await browser.new_context(base_url=self.server.base_url)
            try:
                page = await context.new_page()
                landing = "/console/" if person.staff else "/portal/"
                await sign_in(page, person.email, person.password, landing)
                self.states[person.email] = await context.storage_state()
            finally:
                await context.close()
        return self.states[person.email]
