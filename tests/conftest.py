"""Shared fixtures: a clean migrated database per test on SQLite (a template file copied) and
on PostgreSQL (tables truncated), the app on top of it, an HTTP client and API keys.

PostgreSQL tests are skipped with a visible reason when no server answers, unless
SUPPORTDESK_REQUIRE_POSTGRES=1 (set by .ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from supportdesk.app import create_app, lifespan
from supportdesk.auth.keys import hash_token
from supportdesk.auth.service import create_key
from supportdesk.config import Settings
from supportdesk.db import DatabaseUrl
from supportdesk.db import migrate as migrations
from tests.mail.smtp_receiver import Receiver

POSTGRES_ADMIN_URL = os.environ.get(
    "SUPPORTDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("SUPPORTDESK_REQUIRE_POSTGRES") == "1"
# one database per concurrent test session (parallel checkouts on one server)
TEST_DATABASE = os.environ.get("SUPPORTDESK_TEST_DATABASE", "supportdesk_test")
TABLES = (
    "ticket_messages",
    "tickets",
    "api_keys",
    "users",
    "events",
    "job_leases",
    "webhook_deliveries",
    "webhooks",
    "canned_replies",
    "mail_outbox",
    "mail_inbox",
    "web_sessions",
    "sign_in_links",
    "presence",
)


def postgres_url(database: str) -> str:
    return str(
        DatabaseUrl.parse(POSTGRES_ADMIN_URL)
        .url.set(database=database)
        .render_as_string(hide_password=False)
    )


async def _recreate_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database() -> str:
    """A freshly migrated PostgreSQL database for this test session."""
    try:
        asyncio.run(_recreate_database(TEST_DATABASE))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (SUPPORTDESK_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    url = postgres_url(TEST_DATABASE)
    migrations.upgrade(DatabaseUrl.parse(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    return path


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        # the mail job's cursor, the secrets of mail and sessions (event ids start again at 1)
        await conn.execute("DELETE FROM meta WHERE key LIKE 'mail_%' OR key LIKE 'web_%'")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean, migrated database: every API test runs once on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    else:
        url: str = request.getfixturevalue("postgres_database")
        asyncio.run(_truncate(url))
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The app of the API tests runs no background jobs: tests that exercise a job drive its
    step themselves (or turn jobs on), so nothing else writes behind a test's back."""
    return Settings(database_url=database_url, storage_dir=str(tmp_path / "storage"), jobs=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with lifespan(application):
        yield application


KeyFactory = Callable[..., Awaitable[str]]


@dataclass
class Secrets:
    """What must never appear in a response or a log line: every token a test issued, its
    stored hash, and any password hash."""

    tokens: list[str] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)

    def forbidden(self) -> list[str]:
        return [*self.tokens, *(hash_token(t) for t in self.tokens), "$argon2"]


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(autouse=True)
def no_secret_leaks(secrets: Secrets, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Runs around every test: all log records at every level, and every response the test
    clients received, are searched for the test's secrets (issue 5)."""
    caplog.set_level(logging.DEBUG)
    yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    texts = [
        text
        for record in records
        for text in (record.getMessage(), str(getattr(record, "fields", "")), str(record.exc_text))
    ]
    for response in secrets.responses:
        texts.append(response.text)
        texts.append(str(response.headers))
    for secret in secrets.forbidden():
        for text in texts:
            assert secret not in text, f"a secret leaked: {secret[:12]}..."


@pytest.fixture
def make_key(app: FastAPI, secrets: Secrets) -> KeyFactory:
    async def make(*permissions: str, allowed_ips: tuple[str, ...] = ()) -> str:
        _, token = await create_key(app.state.db, "test", permissions or ("*",), allowed_ips)
        secrets.tokens.append(token)
        return token

    return make


@pytest.fixture
async def token(make_key: KeyFactory) -> str:
    return await make_key("*")


def _recorder(secrets: Secrets) -> dict[str, list[Callable[[httpx.Response], Awaitable[None]]]]:
    async def record(response: httpx.Response) -> None:
        await response.aread()
        secrets.responses.append(response)

    return {"response": [record]}


@pytest.fixture
async def client(app: FastAPI, token: str, secrets: Secrets) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the all-permissions key; its responses are checked for leaks."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver/api/v1/admin",
        headers={"Authorization": f"Bearer {token}"},
        event_hooks=_recorder(secrets),
    ) as http:
        yield http


@pytest.fixture
async def anonymous(app: FastAPI, secrets: Secrets) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks=_recorder(secrets)
    ) as http:
        yield http


@pytest.fixture(scope="session")
def smtp_receiver() -> Iterator[Receiver]:
    """One real SMTP server (aiosmtpd) for the whole session."""
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp(smtp_receiver: Receiver) -> Iterator[Receiver]:
    """The session's SMTP server, empty and answering 250; put back so after the test."""
    smtp_receiver.clear()
    yield smtp_receiver
    if smtp_receiver._controller is None:
        smtp_receiver.start()
    smtp_receiver.clear()
