"""The headers of the browser's answers (SPEC 14): every page, error pages included, says
`Content-Security-Policy: default-src 'self'`, no sniffing, no framing; a downloaded file is
sandboxed, and only raster images are ever shown inline (never SVG or HTML, which can carry
script)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.routing import Route

from supportdesk.tables import ticket_attachments
from supportdesk.web import sessions
from tests import factories
from tests.web.browser import Browser
from tests.web.conftest import Browsers, People


def assert_page_headers(response: httpx.Response, what: str) -> None:
    assert response.headers["content-security-policy"].startswith("default-src 'self'"), what
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"], what
    assert response.headers["x-content-type-options"] == "nosniff", what
    assert response.headers["x-frame-options"] == "DENY", what


def html_get_routes(app: FastAPI, prefix: str) -> list[str]:
    """The GET routes of pages (not the streams or the files)."""
    return sorted(
        route.path
        for route in app.routes
        if isinstance(route, Route)
        and "GET" in (route.methods or ())
        and route.path.startswith(prefix)
        and not route.path.endswith("/live")
        and "/attachments/" not in route.path
    )


@pytest.fixture
async def ticket(client: httpx.AsyncClient, people: People) -> int:
    created = await factories.ticket(client, people.customer["id"])
    await factories.post_message(client, created["id"], people.customer["id"], "Hello")
    return int(created["id"])


async def test_every_page_and_error_page_carries_the_security_headers(
    app: FastAPI,
    browsers: Browsers,
    as_staff: Browser,
    as_customer: Browser,
    people: People,
    ticket: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = await sessions.new_link(app.state.db, int(people.customer["id"]))
    anonymous = browsers()
    answers: dict[str, httpx.Response] = {}
    for path in html_get_routes(app, "/console"):
        url = path.format(ticket_id=ticket)
        answers[url] = await as_staff.get(url)
    for path in html_get_routes(app, "/portal"):
        url = path.format(ticket_id=ticket)
        answers[url] = await as_customer.get(url)
    answers["/login"] = await anonymous.get("/login")
    answers["/login/link/{token}"] = await anonymous.get(f"/login/link/{link}")
    assert all(r.status_code == 200 for r in answers.values()), {
        k: r.status_code for k, r in answers.items()
    }
    errors = {
        "403 console": await as_customer.get("/console/"),
        "403 portal": await as_staff.get(f"/portal/tickets/{ticket}"),
        "403 csrf": await anonymous.post("/login", {"email": "a@example.com"}, csrf=None),
        "404 ticket": await as_staff.get("/console/tickets/999999"),
        "404 portal ticket": await as_customer.get("/portal/tickets/999999"),
        "404 unknown console path": await as_staff.get("/console/nothing/here"),
        "404 unknown portal path": await as_customer.get("/portal/nothing"),
        "404 unknown login path": await anonymous.get("/login/nothing/here"),
        "400 bad filter": await as_staff.get("/console/", params={"filter[nope]": "1"}),
        "401 wrong password": await anonymous.post(
            "/login", {"email": "a@example.com", "password": "wrongwrong"}
        ),
        "410 spent link": await anonymous.get("/login/link/not-a-link"),
        "422 portal form": await as_customer.post("/portal/tickets/new", {"subject": ""}),
    }
    monkeypatch.setattr(sessions, "ATTEMPTS_PER_ADDRESS", 0)
    errors["429"] = await anonymous.post("/login", {"email": "a@example.com", "password": "x"})
    for name, response in errors.items():
        assert response.status_code == int(name[:3]), (name, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), name
        answers[name] = response
    # the redirects too
    answers["303 sign in"] = await anonymous.get("/console/")
    answers["303 form"] = await as_staff.post(f"/console/tickets/{ticket}", {"status": "open"})
    for what, response in answers.items():
        assert_page_headers(response, what)
    # and our own files
    for name in ("app.css", "app.js", "icon.svg"):
        assert_page_headers(await anonymous.get(f"/static/{name}"), name)


FILES = [
    ("photo.png", b"\x89PNG\r\n\x1a\n....", "image/png"),
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "image/svg+xml"),
    ("page.html", b"<script>alert(document.cookie)</script>", "text/html"),
    ("page.htm", b"<script>alert(document.cookie)</script>", "application/octet-stream"),
    ("notes.txt", b"just text", "text/plain"),
]  # fmt: skip


async def test_files_are_sandboxed_and_only_raster_images_are_ever_inline(
    app: FastAPI,
    client: httpx.AsyncClient,
    as_staff: Browser,
    as_customer: Browser,
    people: People,
    ticket: int,
) -> None:
    response = await client.post(
        "/ticket-messages",
        data={"ticket_id": ticket, "user_id": people.customer["id"], "message": "Files"},
        files=[("attachments", file) for file in FILES],
    )
    assert response.status_code == 201, response.text
    async with app.state.db.read() as conn:
        rows = await conn.fetch_all(
            select(ticket_attachments.c.id, ticket_attachments.c.filename).order_by(
                ticket_attachments.c.id
            )
        )
    ids = {row["filename"]: row["id"] for row in rows}
    for browser, area in ((as_staff, "console"), (as_customer, "portal")):
        for name, body, _ in FILES:
            for inline in (None, "1"):
                download = await browser.get(
                    f"/{area}/attachments/{ids[name]}",
                    params={"inline": inline} if inline else None,
                )
                what = (area, name, inline)
                assert download.status_code == 200, what
                assert download.content == body, what
                csp = download.headers["content-security-policy"]
                assert csp.startswith("sandbox"), what
                assert "default-src 'none'" in csp, what
                assert download.headers["x-content-type-options"] == "nosniff", what
                disposition = download.headers["content-disposition"]
                if name == "photo.png" and inline:
                    assert disposition.startswith("inline;"), what
                else:
                    assert disposition.startswith("attachment;"), what
                assert f'filename="{name}"' in disposition, what
    page = await as_customer.get(f"/portal/tickets/{ticket}")
    assert f'<img src="/portal/attachments/{ids["photo.png"]}?inline=1"' in page.text
    assert f'<img src="/portal/attachments/{ids["drawing.svg"]}' not in page.text
