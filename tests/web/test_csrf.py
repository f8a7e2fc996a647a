"""CSRF (SPEC 14: a token on every form): every POST route of the browser, found in the app's
routes so that a new one without a check fails here, answers 403 without its token and with a
wrong one, and writes nothing; with the right token the same request goes through. Before
sign-in the token is the pre-session cookie's (double submit)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from supportdesk.web import pages, sessions
from tests import factories
from tests.web.browser import PASSWORD, Browser, snapshot
from tests.web.conftest import Browsers, People


def browser_post_routes(app: FastAPI) -> set[str]:
    return {
        route.path
        for route in app.routes
        if isinstance(route, Route)
        and "POST" in (route.methods or ())
        and route.path.startswith(pages.BROWSER_PREFIXES)
    }


@dataclass
class Scene:
    people: People
    ticket: int  # the customer's
    second: int  # another of the customer's (to merge)
    link: str  # a sign-in link's token for the customer


@dataclass
class Form:
    """Who sends the form (`None`, `staff`, `customer`) and what a real one holds."""

    who: str | None
    data: dict[str, Any]
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


FILE = [("attachments", ("notes.txt", b"some notes", "text/plain"))]

# every POST route of the browser and a form that writes something when its token is right
FORMS: dict[str, Callable[[Scene], Form]] = {
    "/login": lambda s: Form(
        None, {"email": People.email(s.people.customer), "password": PASSWORD}
    ),
    "/login/link": lambda s: Form(None, {"email": People.email(s.people.customer)}),
    "/login/link/{token}": lambda s: Form(None, {"password": ""}),
    "/logout": lambda s: Form("staff", {}),
    "/console/tickets/bulk": lambda s: Form("staff", {"ids": [s.ticket], "action": "close"}),
    "/console/tickets/{ticket_id}": lambda s: Form("staff", {"status": "on-hold"}),
    "/console/tickets/{ticket_id}/messages": lambda s: Form(
        "staff", {"message": "Try this", "kind": "reply"}, FILE
    ),
    "/console/tickets/{ticket_id}/merge": lambda s: Form("staff", {"source_ids": str(s.second)}),
    "/console/tickets/{ticket_id}/presence": lambda s: Form("staff", {"state": "viewing"}),
    "/portal/tickets/new": lambda s: Form(
        "customer", {"subject": "Help", "message": "Please"}, FILE
    ),
    "/portal/tickets/{ticket_id}/messages": lambda s: Form("customer", {"message": "More"}, FILE),
    "/portal/tickets/{ticket_id}/close": lambda s: Form("customer", {}),
}


def test_every_post_route_of_the_browser_is_checked_here(app: FastAPI) -> None:
    """A POST route added to the browser without an entry in FORMS fails this test, so the
    CSRF tests below always cover every form."""
    assert browser_post_routes(app) == set(FORMS)


@pytest.fixture
async def scene(app: FastAPI, client: httpx.AsyncClient, people: People) -> Scene:
    ticket = await factories.ticket(client, people.customer["id"], subject="First")
    await factories.post_message(client, ticket["id"], people.customer["id"], "It broke")
    second = await factories.ticket(client, people.customer["id"], subject="Second")
    link = await sessions.new_link(app.state.db, int(people.customer["id"]))
    # mail set up (nothing is sent: jobs are off), so that a sign-in link is queued
    app.state.settings = app.state.settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:9"})
    return Scene(people, int(ticket["id"]), int(second["id"]), link)


async def _browser_for(who: str | None, browsers: Browsers, people: People) -> Browser:
    browser = browsers()
    if who is None:
        await browser.get("/login")  # the pre-session cookie and its token
    else:
        user = people.staff if who == "staff" else people.customer
        response = await browser.sign_in(People.email(user))
        assert response.status_code == 303
    return browser


def stored_files(app: FastAPI) -> list[Path]:
    root = Path(app.state.settings.storage_dir)
    return sorted(p for p in (root / "files").rglob("*") if p.is_file())


async def wrong_tokens(browser: Browser, browsers: Browsers, people: People) -> dict[str, str]:
    """Tokens a forger could have: none that is this browser's."""
    someone = browsers()
    await someone.sign_in(People.email(people.colleague))
    stranger = browsers()
    await stranger.get("/login")
    assert browser.csrf and someone.csrf and stranger.csrf
    return {
        "another session's": someone.csrf,
        "another browser's pre-session": stranger.csrf,
        "made up": "x" * len(browser.csrf),
        "this one, changed": browser.csrf[:-1] + ("A" if browser.csrf[-1] != "A" else "B"),
        "this one, signed as the cookie is": str(browser.http.cookies.get(sessions.CSRF_COOKIE)),
    }


@pytest.mark.parametrize("path", sorted(FORMS))
async def test_a_post_without_its_token_is_403_and_writes_nothing(
    app: FastAPI, browsers: Browsers, scene: Scene, path: str
) -> None:
    form = FORMS[path](scene)
    url = path.format(ticket_id=scene.ticket, token=scene.link)
    browser = await _browser_for(form.who, browsers, scene.people)
    before = await snapshot(app)

    refusals = {"no token": await browser.post(url, form.data, form.files, csrf=None)}
    refusals["an empty token"] = await browser.post(url, form.data, form.files, csrf=" ")
    for name, token in (await wrong_tokens(browser, browsers, scene.people)).items():
        refusals[name] = await browser.post(url, form.data, form.files, csrf=token)
        refusals[f"{name} as a header"] = await browser.post(
            url, form.data, form.files, csrf=None, headers={"X-CSRF-Token": token}
        )
    for name, response in refusals.items():
        assert response.status_code == 403, (name, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("text/html"), name
        assert "did not come from this site" in response.text, name
    after = await snapshot(app)
    after["web_sessions"] = [  # the forgers' own sign-ins of `wrong_tokens`
        row for row in after["web_sessions"] if row["user_id"] != int(scene.people.colleague["id"])
    ]
    assert after == before
    assert stored_files(app) == []

    # the same form with the browser's own token goes through
    accepted = await browser.post(url, form.data, form.files)
    assert accepted.status_code != 403, accepted.text[:300]
    assert await snapshot(app) != before


async def test_the_token_may_come_as_a_header(
    app: FastAPI, as_staff: Browser, scene: Scene
) -> None:
    """The page's script may send the token as `X-CSRF-Token` (from the page's meta tag)."""
    token = as_staff.csrf
    assert token is not None
    url = f"/console/tickets/{scene.ticket}/presence"
    response = await as_staff.post(
        url, {"state": "viewing"}, csrf=None, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200


async def test_the_sign_in_forms_token_is_the_pre_session_cookies(
    app: FastAPI, browsers: Browsers, people: People
) -> None:
    """Double submit: the form's token matches the signed `sd_csrf` cookie the same page set;
    without that cookie, the token alone is worth nothing."""
    browser = browsers()
    page = await browser.get("/login")
    token = browser.csrf
    cookie = browser.http.cookies.get(sessions.CSRF_COOKIE)
    assert token and cookie and cookie.startswith(token + ".")
    # the cookie stays the same while the browser keeps it: every tab's form still works
    await browser.get("/login")
    assert browser.csrf == token
    assert page.status_code == 200

    thief = browsers()  # has the token (say, read off a page) but not the cookie
    stolen = await thief.post(
        "/login", {"email": People.email(people.staff), "password": PASSWORD}, csrf=token
    )
    assert stolen.status_code == 403
    assert thief.session_cookie is None

    response = await browser.post(
        "/login", {"email": People.email(people.staff), "password": PASSWORD}, csrf=token
    )
    assert response.status_code == 303
    assert browser.session_cookie is not None
    # signed in, the forms carry the session's token; the pre-session one is over
    console = await browser.get("/console/")
    assert browser.csrf != token
    assert browser.csrf is not None and browser.csrf in console.text
    late = await browser.post("/console/tickets/1/presence", {"state": "viewing"}, csrf=token)
    assert late.status_code == 403


async def test_an_endless_form_is_cut_off_not_read_to_its_end(browsers: Browsers) -> None:
    """A form of no declared length (chunked) is refused once it passes the size of any form
    of the site, as it arrives: nobody, signed in or not, can make the server hold it."""
    browser = browsers()
    await browser.get("/login")
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b"email=a%40example.com&password="
        for _ in range(1024):  # 64 MiB if it were all read, in fields of 64 KiB
            sent += 1
            yield b"&field=" + b"p" * 65536

    response = await browser.http.post(
        "/login",
        content=endless(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert sent < 8, f"{sent} chunks of 64 KiB were read"
