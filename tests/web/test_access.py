"""Who may see what (SPEC 14): every page of the console and the portal (found in the app's
routes) sends a visitor not signed in to the sign-in page; a customer in the console and staff
in the portal get a 403 page; any ticket, file or stream that is not the customer's is 404,
and internal notes and their files never reach the portal."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.routing import Route

from supportdesk.tables import ticket_attachments, ticket_messages
from tests import factories
from tests.web.browser import Browser, csrf_of, snapshot
from tests.web.conftest import Browsers, People


@dataclass
class Tickets:
    mine: int  # the customer Cora's, with a public file and an internal note with a file
    theirs: int  # the customer Otto's, with a public file
    my_file: int
    note_file: int
    their_file: int


def routes(app: FastAPI, prefix: str, method: str) -> list[str]:
    return sorted(
        route.path
        for route in app.routes
        if isinstance(route, Route)
        and method in (route.methods or ())
        and route.path.startswith(prefix)
    )


def filled(path: str, tickets: Tickets, ticket: int | None = None) -> str:
    return path.format(ticket_id=ticket or tickets.mine, attachment_id=tickets.my_file)


async def attachment_ids(app: FastAPI, ticket_id: int) -> list[int]:
    query = (
        select(ticket_attachments.c.id)
        .select_from(ticket_attachments.join(ticket_messages))
        .where(ticket_messages.c.ticket_id == ticket_id)
        .order_by(ticket_attachments.c.id)
    )
    async with app.state.db.read() as conn:
        return [row["id"] for row in await conn.fetch_all(query)]


@pytest.fixture
async def tickets(
    app: FastAPI, client: httpx.AsyncClient, people: People, as_staff: Browser
) -> Tickets:
    ids = []
    for owner, subject in ((people.customer, "Printer of Cora"), (people.stranger, "VPN of Otto")):
        response = await client.post(
            "/ticket-messages",
            data={
                "ticket_id": (await factories.ticket(client, owner["id"], subject=subject))["id"],
                "user_id": owner["id"],
                "message": f"{subject} is broken",
            },
            files=[("attachments", (f"{owner['id']}-photo.png", b"\x89PNG....", "image/png"))],
        )
        assert response.status_code == 201, response.text
        ids.append(int(response.json()["data"]["attributes"]["ticket_id"]))
    mine, theirs = ids
    note = await as_staff.post(
        f"/console/tickets/{mine}/messages",
        {"kind": "note", "message": "Internal: the customer owes us money"},
        [("attachments", ("internal-invoice.pdf", b"%PDF-1.4", "application/pdf"))],
    )
    assert note.status_code == 303, note.text
    my_file, note_file = await attachment_ids(app, mine)
    (their_file,) = await attachment_ids(app, theirs)
    return Tickets(mine, theirs, my_file, note_file, their_file)


async def test_a_visitor_not_signed_in_is_sent_to_sign_in_from_every_page(
    app: FastAPI, browsers: Browsers, tickets: Tickets
) -> None:
    pages = routes(app, "/console", "GET") + routes(app, "/portal", "GET")
    assert "/console/" in pages and "/portal/tickets/{ticket_id}" in pages
    browser = browsers()
    for path in pages:
        url = filled(path, tickets)
        response = await browser.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"] == f"/login?next={url}", url
    # the query string comes back too
    response = await browser.get("/console/?queue=mine&filter[search]=vpn")
    assert response.headers["location"] == "/login?next=" + quote(
        "/console/?queue=mine&filter[search]=vpn", safe="/"
    )
    # and posting a form while signed out does not write
    before = await snapshot(app)
    posted = await browser.post(f"/portal/tickets/{tickets.mine}/messages", {"message": "x"})
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login?next=")
    assert await snapshot(app) == before


async def test_a_customer_gets_a_403_page_on_every_console_route(
    app: FastAPI, as_customer: Browser, tickets: Tickets
) -> None:
    before = await snapshot(app)
    token = as_customer.csrf
    for method in ("GET", "POST"):
        for path in routes(app, "/console", method):
            url = filled(path, tickets)
            if method == "GET":
                response = await as_customer.get(url)
            else:
                response = await as_customer.post(
                    url, {"status": "closed", "message": "x", "state": "viewing"}, csrf=token
                )
            assert response.status_code == 403, (method, url)
            assert response.headers["content-type"].startswith("text/html"), url
            assert "The console is for staff" in response.text, url
    assert await snapshot(app) == before


async def test_staff_get_a_403_page_on_every_portal_route(
    app: FastAPI, as_staff: Browser, tickets: Tickets
) -> None:
    before = await snapshot(app)
    token = as_staff.csrf
    for method in ("GET", "POST"):
        for path in routes(app, "/portal", method):
            url = filled(path, tickets)
            if method == "GET":
                response = await as_staff.get(url)
            else:
                response = await as_staff.post(url, {"subject": "s", "message": "x"}, csrf=token)
            assert response.status_code == 403, (method, url)
            assert response.headers["content-type"].startswith("text/html"), url
            assert "The portal is for customers" in response.text, url
    assert await snapshot(app) == before


async def test_the_403_page_lets_a_signed_in_visitor_sign_out(as_customer: Browser) -> None:
    """The error page shows the "Sign out" button of every page: its form must work."""
    page = await as_customer.get("/console/")
    assert page.status_code == 403
    assert "Sign out" in page.text
    token = csrf_of(page.text)
    assert token
    response = await as_customer.post("/logout", csrf=token)
    assert response.status_code == 303
    assert (await as_customer.get("/portal/")).status_code == 303


async def test_another_customers_ticket_is_404_everywhere_in_the_portal(
    app: FastAPI, as_customer: Browser, tickets: Tickets
) -> None:
    before = await snapshot(app)
    theirs = tickets.theirs
    answers = {
        "page": await as_customer.get(f"/portal/tickets/{theirs}"),
        "reply": await as_customer.post(
            f"/portal/tickets/{theirs}/messages",
            {"message": "Let me in"},
            [("attachments", ("x.txt", b"x", "text/plain"))],
        ),
        "close": await as_customer.post(f"/portal/tickets/{theirs}/close"),
        "file": await as_customer.get(f"/portal/attachments/{tickets.their_file}"),
        "file inline": await as_customer.get(
            f"/portal/attachments/{tickets.their_file}", params={"inline": "1"}
        ),
        "live": await as_customer.get("/portal/live", params={"ticket": str(theirs)}),
        "no such ticket": await as_customer.get("/portal/tickets/999999"),
        "no such file": await as_customer.get("/portal/attachments/999999"),
    }
    for name, response in answers.items():
        assert response.status_code == 404, name
        assert response.headers["content-type"].startswith("text/html"), name
        assert "Otto" not in response.text, name
    assert await snapshot(app) == before
    listing = await as_customer.get("/portal/")
    assert "Printer of Cora" in listing.text
    assert "Otto" not in listing.text and f"/portal/tickets/{theirs}" not in listing.text


async def test_internal_notes_and_their_files_never_reach_the_portal(
    as_customer: Browser, as_staff: Browser, tickets: Tickets
) -> None:
    page = await as_customer.get(f"/portal/tickets/{tickets.mine}")
    assert page.status_code == 200
    assert "Printer of Cora is broken" in page.text
    assert "owes us money" not in page.text
    assert "internal-invoice" not in page.text
    assert "Internal note" not in page.text
    assert f"/portal/attachments/{tickets.note_file}" not in page.text
    assert f"/portal/attachments/{tickets.my_file}" in page.text
    # the note's file, even on the customer's own ticket
    assert (await as_customer.get(f"/portal/attachments/{tickets.note_file}")).status_code == 404
    assert (await as_customer.get(f"/portal/attachments/{tickets.my_file}")).status_code == 200

    # staff see the note, set apart
    console = await as_staff.get(f"/console/tickets/{tickets.mine}")
    assert "owes us money" in console.text
    assert 'class="message note staff"' in console.text
    assert "Internal note" in console.text
    assert (await as_staff.get(f"/console/attachments/{tickets.note_file}")).status_code == 200


@pytest.mark.parametrize("bad", ["99999999999999999999", "9223372036854775808", "0", "-1", "x"])
async def test_ids_no_database_holds_are_4xx_pages(
    as_staff: Browser, as_customer: Browser, bad: str
) -> None:
    """Never a database error: a path id outside BIGINT is a 422 page, a query parameter's
    is ignored."""
    for browser, path in (
        (as_staff, f"/console/tickets/{bad}"),
        (as_staff, f"/console/attachments/{bad}"),
        (as_customer, f"/portal/tickets/{bad}"),
        (as_customer, f"/portal/attachments/{bad}"),
    ):
        response = await browser.get(path)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), path
    posted = await as_customer.post(f"/portal/tickets/{bad}/messages", {"message": "x"})
    assert posted.status_code in (404, 422)
