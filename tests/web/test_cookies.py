"""The session cookie (SPEC 14): its flags over http and https, a new session at every
sign-in whatever cookie the browser brought (no session fixation), and forged or tampered
cookies taken as no session at all."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest
from fastapi import FastAPI

from supportdesk.web import sessions
from tests.web.browser import Browser, set_cookies
from tests.web.conftest import Browsers, People


def flags(header: str) -> set[str]:
    """The attributes of a `Set-Cookie` header, lower case, without the value."""
    return {part.strip().lower() for part in header.split(";")[1:]}


async def test_the_session_cookie_is_httponly_samesite_lax_and_not_secure_over_http(
    browsers: Browsers, people: People
) -> None:
    browser = browsers()
    form = await browser.get("/login")
    pre_session = flags(set_cookies(form)[sessions.CSRF_COOKIE])
    assert {"httponly", "samesite=lax", "path=/"} <= pre_session
    assert "secure" not in pre_session

    response = await browser.sign_in(People.email(people.staff))
    cookies = set_cookies(response)
    session = flags(cookies[sessions.COOKIE])
    assert {"httponly", "samesite=lax", "path=/"} <= session
    assert "secure" not in session
    assert any(f.startswith("max-age=") for f in session)
    # the pre-session cookie has done its work
    assert cookies[sessions.CSRF_COOKIE].startswith(f'{sessions.CSRF_COOKIE}="";')


async def test_over_https_the_cookies_are_secure(browsers: Browsers, people: People) -> None:
    browser = browsers("https://testserver")
    form = await browser.get("/login")
    assert {"secure", "httponly", "samesite=lax"} <= flags(set_cookies(form)[sessions.CSRF_COOKIE])
    response = await browser.sign_in(People.email(people.customer))
    assert response.status_code == 303
    session = flags(set_cookies(response)[sessions.COOKIE])
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= session
    assert (await browser.get("/portal/")).status_code == 200

    signed_out = await browser.post("/logout")
    assert {"secure", "httponly", "samesite=lax"} <= flags(set_cookies(signed_out)[sessions.COOKIE])


async def test_a_forged_cookie_planted_before_sign_in_is_not_the_session_after(
    browsers: Browsers, people: People
) -> None:
    browser = browsers()
    await browser.get("/login")
    planted = "planted-by-an-attacker"
    browser.plant(sessions.COOKIE, planted)
    response = await browser.sign_in(People.email(people.staff))
    assert response.status_code == 303
    assert browser.session_cookie not in (None, planted)
    assert not str(browser.session_cookie).startswith(planted)

    # a pre-login value the site itself made (the CSRF cookie) is no session either
    other = browsers()
    await other.get("/login")
    pre_login = other.http.cookies.get(sessions.CSRF_COOKIE)
    assert pre_login is not None
    other.plant(sessions.COOKIE, pre_login)
    assert (await other.get("/console/")).status_code == 303
    await other.sign_in(People.email(people.staff))
    assert other.session_cookie != pre_login


async def test_an_attackers_own_session_planted_in_a_browser_never_becomes_the_victims(
    browsers: Browsers, people: People
) -> None:
    """The attacker signs in, puts their cookie in the victim's browser, the victim signs in
    there: the victim gets a new session, and the session that browser had (the attacker's)
    is signed out, so the attacker's copy of the cookie is worth nothing either."""
    attacker = browsers()
    await attacker.sign_in(People.email(people.colleague))
    known = attacker.session_cookie
    assert known is not None

    victim = browsers()
    victim.plant(sessions.COOKIE, known)
    page = await victim.get("/console/")  # the attacker's console: the token is theirs too
    assert page.status_code == 200
    response = await victim.post(
        "/login", {"email": People.email(people.staff), "password": "correct horse battery"}
    )
    assert response.status_code == 303
    assert victim.session_cookie not in (None, known)
    mine = await victim.get("/console/")
    assert "Sam Staff" in mine.text

    theirs = await attacker.get("/console/")
    assert theirs.status_code == 303
    assert theirs.headers["location"].startswith("/login")


def _signed_with(key: bytes, token: str) -> str:
    return f"{token}.{hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]}"


@pytest.mark.parametrize(
    "tamper",
    [
        "junk",
        "empty",
        "dots",
        "unsigned",
        "wrong key",
        "flipped signature",
        "changed token",
        "huge",
    ],
)
async def test_a_forged_or_tampered_cookie_is_a_visitor_not_signed_in(
    app: FastAPI, browsers: Browsers, as_staff: Browser, tamper: str
) -> None:
    real = as_staff.session_cookie
    assert real is not None
    token, _, signature = real.rpartition(".")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    values = {
        "junk": "not a cookie at all",
        "empty": "",
        "dots": "...",
        "unsigned": token,
        "wrong key": _signed_with(b"some other secret", token),
        "flipped signature": f"{token}.{flipped}",
        "changed token": f"{secrets.token_urlsafe(32)}.{signature}",
        "huge": "A" * 4000 + "." + "b" * 32,
    }
    browser = browsers()
    browser.plant(sessions.COOKIE, values[tamper])
    console = await browser.get("/console/")
    assert console.status_code == 303
    assert console.headers["location"] == "/login?next=/console/"
    portal = await browser.get("/portal/tickets/1")
    assert portal.status_code == 303
    assert portal.headers["location"] == "/login?next=/portal/tickets/1"
    form = await browser.get("/login")
    assert form.status_code == 200
    assert "Sign in" in form.text
    assert (await as_staff.get("/console/")).status_code == 200  # the real one still works


async def test_behind_a_tls_proxy_the_public_url_makes_the_cookies_secure(
    app: FastAPI, browsers: Browsers
) -> None:
    """A proxy whose forwarded scheme uvicorn does not trust still serves the desk over https:
    an https public URL is enough to mark the cookies Secure."""
    app.state.settings = app.state.settings.model_copy(
        update={"public_url": "https://desk.example.com"}
    )
    form = await browsers().get("/login")
    assert "secure" in flags(set_cookies(form)[sessions.CSRF_COOKIE])
