"""The rate limit of sign-in attempts (SPEC 14): past `ATTEMPTS_PER_ADDRESS` a minute for one
address, or `ATTEMPTS_PER_CLIENT` from one client, the answer is a 429 page, even for the
right password. Counted in the limiter's store (a file under each test's own storage dir)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from supportdesk.web import sessions
from tests.web.browser import PASSWORD, Browser
from tests.web.conftest import Browsers, People


class Clock:
    """The sign-in module's clock, held still (a test must not straddle two windows)."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC).replace(second=20, microsecond=0)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = self

        class Frozen(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return clock.moment.astimezone(tz) if tz else clock.moment.replace(tzinfo=None)

        monkeypatch.setattr(sessions, "datetime", Frozen)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    held = Clock()
    held.install(monkeypatch)
    return held


WRONG = "wrong password"


async def attempt(browser: Browser, email: str, password: str = WRONG) -> int:
    response = await browser.post("/login", {"email": email, "password": password})
    return response.status_code


async def test_past_the_limit_for_an_address_every_attempt_is_a_429_page(
    app: FastAPI, browsers: Browsers, people: People, clock: Clock
) -> None:
    browser = browsers()
    await browser.get("/login")
    email = People.email(people.customer)
    for _ in range(sessions.ATTEMPTS_PER_ADDRESS):
        assert await attempt(browser, email) == 401

    refused = await browser.post("/login", {"email": email.upper(), "password": PASSWORD})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60  # the rest of the minute
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["content-security-policy"].startswith("default-src 'self'")
    assert "Slow down" in refused.text
    assert "Too many sign-in attempts" in refused.text
    assert browser.session_cookie is None  # the right password did not sign in

    # from another browser too (the limit is the address's), and for a sign-in link
    other = browsers()
    assert await attempt(other, email, PASSWORD) == 429
    app.state.settings = app.state.settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:9"})
    link = await other.post("/login/link", {"email": email})
    assert link.status_code == 429

    # another address is not held back
    assert await attempt(browsers(), People.email(people.staff), PASSWORD) == 303

    # the next minute, the address may try again
    clock.moment += timedelta(minutes=1)
    assert await attempt(browser, email, PASSWORD) == 303


async def test_past_the_limit_for_a_client_every_address_is_a_429(
    browsers: Browsers, people: People, clock: Clock
) -> None:
    """One client trying many addresses (spraying one password) is held back as well."""
    browser = browsers()
    await browser.get("/login")
    for number in range(sessions.ATTEMPTS_PER_CLIENT):
        assert await attempt(browser, f"guess{number}@example.com") == 401
    assert await attempt(browser, People.email(people.staff), PASSWORD) == 429
    assert browser.session_cookie is None
