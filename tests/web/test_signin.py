"""Signing in and out with e-mail and password (SPEC 14): where each kind of user lands, where
`next` may send them, the same answer for a wrong password and an unknown address, and
sessions that end for good at sign-out and when a password is set."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from supportdesk.tables import web_sessions
from supportdesk.web import sessions
from tests import factories
from tests.web.browser import PASSWORD, Browser
from tests.web.conftest import Browsers, People


async def session_rows(app: FastAPI, user_id: str | int) -> list[dict[str, object]]:
    async with app.state.db.read() as conn:
        query = select(web_sessions).where(web_sessions.c.user_id == int(user_id))
        return [dict(row) for row in await conn.fetch_all(query)]


async def test_the_sign_in_form_has_the_fields_and_button_people_rely_on(
    browsers: Browsers,
) -> None:
    """SPEC 14 names them: "Email", "Password", "Sign in"."""
    page = await browsers().get("/login")
    assert page.status_code == 200
    assert '<label for="email">Email</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert '<button type="submit" class="primary">Sign in</button>' in page.text


async def test_staff_land_on_the_console_and_customers_on_the_portal(
    browsers: Browsers, people: People
) -> None:
    staff = browsers()
    response = await staff.sign_in(People.email(people.staff))
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    console = await staff.get("/console/")
    assert console.status_code == 200
    assert "Sam Staff" in console.text

    customer = browsers()
    response = await customer.sign_in(People.email(people.customer).upper())  # any case
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/"
    portal = await customer.get("/portal/")
    assert portal.status_code == 200
    assert "Cora Customer" in portal.text


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/console/tickets/7", "/console/tickets/7"),
        ("/console/?queue=mine&filter[search]=disk", "/console/?queue=mine&filter[search]=disk"),
        ("//evil.example", "/console/"),
        ("//evil.example/console", "/console/"),
        ("https://evil.example", "/console/"),
        ("https://evil.example/console/", "/console/"),
        ("/console//evil.example", "/console/"),
        ("/console/\\evil.example", "/console/"),
        ("/\\evil.example", "/console/"),
        ("javascript:alert(1)", "/console/"),
        ("/login", "/console/"),
        ("/api/v1/admin/users", "/console/"),
        ("/console/\r\nSet-Cookie: planted=1", "/console/%0D%0ASet-Cookie:%20planted=1"),
    ],
)
async def test_next_is_honoured_only_for_console_and_portal_paths(
    browsers: Browsers, people: People, next_url: str, landing: str
) -> None:
    """An open redirect after sign-in would make our sign-in page a phishing tool: anything
    but a path of the console or the portal goes to the user's default page."""
    browser = browsers()
    response = await browser.sign_in(People.email(people.staff), next_url=next_url)
    assert response.status_code == 303
    assert response.headers["location"] == landing
    assert "planted" not in str(response.headers.get_list("set-cookie"))
    # a signed-in visitor sent to /login goes on by the same rule
    again = await browser.get("/login", params={"next": next_url})
    assert again.status_code == 303
    assert again.headers["location"] == landing


async def test_a_signed_out_visitor_comes_back_to_the_page_they_asked_for(
    browsers: Browsers, people: People
) -> None:
    browser = browsers()
    asked = await browser.get("/portal/tickets/new")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/login?next=/portal/tickets/new"
    form = await browser.get(asked.headers["location"])
    assert '<input type="hidden" name="next" value="/portal/tickets/new">' in form.text
    response = await browser.sign_in(People.email(people.customer), next_url="/portal/tickets/new")
    assert response.headers["location"] == "/portal/tickets/new"


async def test_a_wrong_password_and_an_unknown_address_get_the_same_401(
    app: FastAPI, browsers: Browsers, people: People
) -> None:
    """Nobody learns from the answer whether an address has an account."""
    wrong = browsers()
    answer = await wrong.sign_in(People.email(people.customer), "not the password")
    assert answer.status_code == 401
    assert "Wrong email or password." in answer.text
    assert '<form method="post" action="/login"' in answer.text
    assert 'value="cora@example.com"' in answer.text  # the address stays filled in
    assert sessions.COOKIE not in answer.headers.get("set-cookie", "")

    unknown = browsers()
    nobody = await unknown.sign_in("nobody@example.com", PASSWORD)
    assert nobody.status_code == 401
    assert "Wrong email or password." in nobody.text
    assert sessions.COOKIE not in nobody.headers.get("set-cookie", "")
    assert nobody.text.replace("nobody@example.com", "cora@example.com").replace(
        unknown.csrf or "?", "TOKEN"
    ) == answer.text.replace(wrong.csrf or "?", "TOKEN")

    assert await session_rows(app, people.customer["id"]) == []
    assert (await wrong.get("/portal/")).status_code == 303


async def test_a_user_without_a_password_cannot_sign_in_with_any(
    browsers: Browsers, client: httpx.AsyncClient
) -> None:
    """Users made by mail or by the API without one have no password: none works for them."""
    await factories.user(client, email="nopass@example.com")
    for password in ("", PASSWORD, "x" * 8):
        answer = await browsers().sign_in("nopass@example.com", password)
        assert answer.status_code == 401


async def test_logout_deletes_the_session_so_a_copy_of_the_cookie_is_worthless(
    app: FastAPI, browsers: Browsers, as_customer: Browser, people: People
) -> None:
    cookie = as_customer.session_cookie
    assert cookie is not None
    assert len(await session_rows(app, people.customer["id"])) == 1

    response = await as_customer.post("/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert 'sd_session=""' in response.headers["set-cookie"]
    assert await session_rows(app, people.customer["id"]) == []
    assert (await as_customer.get("/portal/")).status_code == 303

    # the old cookie, replayed by another browser (say, a thief's), signs nobody in
    thief = browsers()
    thief.plant(sessions.COOKIE, cookie)
    replayed = await thief.get("/portal/")
    assert replayed.status_code == 303
    assert replayed.headers["location"] == "/login?next=/portal/"


async def test_setting_a_password_ends_every_session_of_the_user(
    app: FastAPI, browsers: Browsers, people: People
) -> None:
    first, second, other = browsers(), browsers(), browsers()
    await first.sign_in(People.email(people.staff))
    await second.sign_in(People.email(people.staff))
    await other.sign_in(People.email(people.colleague))
    assert len(await session_rows(app, people.staff["id"])) == 2

    await sessions.set_password(app.state.db, int(people.staff["id"]), "a brand new password")

    assert await session_rows(app, people.staff["id"]) == []
    for browser in (first, second):
        assert (await browser.get("/console/")).status_code == 303
    assert (await other.get("/console/")).status_code == 200  # nobody else's
    assert (await browsers().sign_in(People.email(people.staff))).status_code == 401
    fresh = await browsers().sign_in(People.email(people.staff), "a brand new password")
    assert fresh.status_code == 303


async def test_an_expired_session_is_signed_out(
    app: FastAPI, as_staff: Browser, people: People
) -> None:
    assert (await as_staff.get("/console/")).status_code == 200
    async with app.state.db.transaction() as conn:
        await conn.execute(
            update(web_sessions)
            .where(web_sessions.c.user_id == int(people.staff["id"]))
            .values(expires_at="2020-01-01T00:00:00.000000Z")
        )
    response = await as_staff.get("/console/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/console/"


async def test_a_password_set_through_the_api_ends_the_users_sessions_too(
    app: FastAPI, client: httpx.AsyncClient, browsers: Browsers, people: People
) -> None:
    """An administrator resetting a stolen account's password through the API must throw the
    thief out of the browser as `supportdesk users set-password` does."""
    thief, other = browsers(), browsers()
    await thief.sign_in(People.email(people.customer))
    await other.sign_in(People.email(people.stranger))
    response = await client.patch(
        f"/users/{people.customer['id']}", json={"password": "a brand new password"}
    )
    assert response.status_code == 200
    assert await session_rows(app, people.customer["id"]) == []
    assert (await thief.get("/portal/")).status_code == 303
    assert (await other.get("/portal/")).status_code == 200
    # other changes leave the sessions be
    await thief.sign_in(People.email(people.customer), "a brand new password")
    await client.patch(f"/users/{people.customer['id']}", json={"first_name": "Corinna"})
    assert "Corinna Customer" in (await thief.get("/portal/")).text


async def test_a_form_sent_after_the_session_ran_out_comes_back_to_its_page(
    app: FastAPI, as_customer: Browser, people: People
) -> None:
    """Not to the POST's own URL (a 405 page after signing in): to the page the form was on."""
    async with app.state.db.transaction() as conn:
        await conn.execute(update(web_sessions).values(expires_at="2020-01-01T00:00:00.000000Z"))
    sent = await as_customer.post(
        "/portal/tickets/new", {"subject": "x", "message": "y"},
        headers={"Referer": "http://testserver/portal/tickets/new"},
    )  # fmt: skip
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=/portal/tickets/new"
    elsewhere = await as_customer.post(
        "/portal/tickets/new", {"subject": "x"}, headers={"Referer": "https://evil.example/x"}
    )
    assert elsewhere.headers["location"] == "/login?next=/portal/"


async def test_signing_out_after_the_session_ran_out_just_clears_the_cookie(
    app: FastAPI, as_customer: Browser
) -> None:
    """The form's token died with the session: no 403 for wanting out."""
    async with app.state.db.transaction() as conn:
        await conn.execute(update(web_sessions).values(expires_at="2020-01-01T00:00:00.000000Z"))
    response = await as_customer.post("/logout", csrf=None)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert 'sd_session=""' in response.headers["set-cookie"]
