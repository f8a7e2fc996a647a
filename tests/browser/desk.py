"""The people and data of the browser tests, made through the API with the demo key, and
signing in through the real sign-in form (`sign_in`)."""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import Server

# conftest's `new_page`: a page in a new guarded context made with these context options
NewPage = Callable[..., Awaitable[Page]]
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
        self,
        ticket_id: int,
        author: Person,
        text: str,
        *,
        internal: bool = False,
        files: Sequence[tuple[str, bytes, str]] = (),
    ) -> None:
        """A message; with `files` (name, content, media type), multipart with attachments."""
        if files:
            fields = {"ticket_id": str(ticket_id), "user_id": str(author.id), "message": text}
            response = await self.client.post(
                "/ticket-messages",
                data=fields,
                files=[("attachments[]", file) for file in files],
            )
            assert response.status_code == 201, response.text
            return
        body: dict[str, Any] = {"ticket_id": ticket_id, "user_id": author.id, "message": text}
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
    sample: int | None = None  # `sample_ticket`'s id, once made

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

    async def sample_ticket(self) -> int:
        """The ticket of the screenshots and the accessibility checks (made once; no test
        changes it)."""
        if self.sample is None:
            self.sample = await self.conversation("Emails to our domain bounce since Monday")
        return self.sample

    async def conversation(self, subject: str) -> int:
        """A ticket with a thread worth looking at: the customer's question with a screenshot
        and a long link, a staff answer, an internal note and the customer's answer."""
        api, customer, agent = self.api, self.customer, self.agent
        ticket_id = await api.ticket(customer, subject)
        await api.message(
            ticket_id,
            customer,
            "Every mail to billing@example.org comes back with 550 5.7.1. The bounce points "
            "to https://example.org/help/mail/delivery-status-notifications"
            "?code=550-5.7.1&lang=en-GB-long-parameter-that-does-not-wrap-easily "
            "(screenshot attached).",
            files=[("bounce.png", png(), "image/png")],
        )
        await api.message(
            ticket_id,
            agent,
            "Thanks Cara. Your SPF record does not list our relay; we are adding it.",
        )
        await api.message(
            ticket_id, agent, "DNS change requested with ops, ticket OPS-311.", internal=True
        )
        await api.message(ticket_id, customer, "Thank you, I will check again tomorrow.")
        return ticket_id


@dataclass(frozen=True)
class Place:
    """One of the browser's main pages: its name (of its screenshots), who sees it (`anyone`
    for a visitor not signed in), and its path (with `{ticket}` for the sample ticket)."""

    name: str
    who: str  # "anyone", "staff", "customer"
    path: str


MAIN_PAGES = (
    Place("sign-in", "anyone", "/login"),
    Place("console-queue", "staff", "/console/"),
    Place("console-ticket", "staff", "/console/tickets/{ticket}"),
    Place("portal-list", "customer", "/portal/"),
    Place("portal-ticket", "customer", "/portal/tickets/{ticket}"),
    Place("portal-new-ticket", "customer", "/portal/tickets/new"),
)
ERROR_PAGE = Place("error", "customer", "/portal/tickets/999999")


def png(width: int = 48, height: int = 32) -> bytes:
    """A small valid PNG (a blue rectangle), to attach as a screenshot would be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x1f\x6f\xeb" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


class Visitors:
    """One page per kind of visitor (`Place.who`), made on first use with the same context
    options (a theme, a viewport, JavaScript off), signed in for staff and customers."""

    def __init__(self, desk: Desk, browser: Browser, new_page: NewPage, **options: Any) -> None:
        self.desk, self.browser, self.new_page, self.options = desk, browser, new_page, options
        self.pages: dict[str, Page] = {}

    async def open(self, place: Place) -> Page:
        """The visitor's page at the place (the sample ticket's, for a ticket page)."""
        page = self.pages.get(place.who)
        if page is None:
            person = {"staff": self.desk.admin, "customer": self.desk.customer}.get(place.who)
            state = None if person is None else await self.desk.state(self.browser, person)
            page = await self.new_page(storage_state=state, **self.options)
            self.pages[place.who] = page
        path = place.path.format(ticket=await self.desk.sample_ticket())
        response = await page.goto(path)
        assert response is not None
        expected = 404 if place is ERROR_PAGE else 200
        assert response.status == expected, f"{path}: {response.status}"
        return page


async def goto_live(page: Page, path: str) -> None:
    """Open a live page and wait until its event stream answered: the stream starts from the
    newest event when it is asked for, so a change made before that would not be shown."""
    async with page.expect_response(lambda r: "/live" in r.url, timeout=WAIT_MS) as streaming:
        await page.goto(path)
    response = await streaming.value
    assert response.ok, f"{response.url}: {response.status}"
