"""Fixtures of the browser tests: people with passwords (made through the API), browsers on
the app that sign in through the form, and browsers already signed in as staff or customer.
Every page a browser gets is searched for secrets like the API's answers (no password hash
ever reaches a page)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from supportdesk.config import Settings
from supportdesk.users import service as users_service
from supportdesk.web import sessions
from tests import factories
from tests.conftest import Secrets
from tests.web.browser import PASSWORD, Browser

# small, so that a test can send a file past it
MAX_ATTACHMENT = 64 * 1024


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        storage_dir=str(tmp_path / "storage"),
        jobs=False,
        max_attachment_bytes=MAX_ATTACHMENT,
    )


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its smallest cost (a hash carries its parameters, so verifying is as cheap):
    these tests are about who gets in, and would spend most of their time hashing."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(users_service, "_hasher", cheap)
    monkeypatch.setattr(sessions, "_hasher", cheap)
    monkeypatch.setattr(sessions, "_DUMMY_HASH", cheap.hash("not anyone's password"))


@dataclass
class People:
    """Two staff users and two customers, each with the password `PASSWORD` (as the API gives
    them: `data` of the users' documents, so `id` is a string)."""

    staff: dict[str, Any]
    colleague: dict[str, Any]
    customer: dict[str, Any]
    stranger: dict[str, Any]

    @staticmethod
    def email(user: dict[str, Any]) -> str:
        email: str = user["attributes"]["email"]
        return email


async def _person(client: httpx.AsyncClient, staff: bool, email: str, name: str) -> Any:
    first, last = name.split()
    attributes = {"email": email, "first_name": first, "last_name": last, "password": PASSWORD}
    if staff:
        return await factories.staff(client, **attributes)
    return await factories.user(client, **attributes)


@pytest.fixture
async def people(client: httpx.AsyncClient) -> People:
    return People(
        staff=await _person(client, True, "sam@example.net", "Sam Staff"),
        colleague=await _person(client, True, "cole@example.net", "Cole League"),
        customer=await _person(client, False, "cora@example.com", "Cora Customer"),
        stranger=await _person(client, False, "otto@example.com", "Otto Other"),
    )


Browsers = Callable[..., Browser]


@pytest.fixture
async def browsers(app: FastAPI, secrets: Secrets) -> AsyncIterator[Browsers]:
    """Opens browsers on the app (`browsers()`, or `browsers("https://testserver")`)."""

    async def record(response: httpx.Response) -> None:
        await response.aread()
        secrets.responses.append(response)

    opened: list[Browser] = []

    def open_browser(base_url: str = "http://testserver") -> Browser:
        browser = Browser(app, base_url, record)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        await browser.aclose()


@pytest.fixture
async def as_staff(browsers: Browsers, people: People) -> Browser:
    """A browser signed in as the staff user Sam."""
    browser = browsers()
    response = await browser.sign_in(People.email(people.staff))
    assert response.status_code == 303, response.text
    return browser


@pytest.fixture
async def as_customer(browsers: Browsers, people: People) -> Browser:
    """A browser signed in as the customer Cora."""
    browser = browsers()
    response = await browser.sign_in(People.email(people.customer))
    assert response.status_code == 303, response.text
    return browser
