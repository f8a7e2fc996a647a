"""Shared fixtures: a clean migrated database per test on SQLite (a template file copied) and
on PostgreSQL (tables truncated), the app on top of it, an HTTP client and API keys.

PostgreSQL tests are skipped with a visible reason when no server answers, unless
SUPPORTDESK_REQUIRE_POSTGRES=1 (set by .ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from supportdesk.app import create_app, lifespan
from supportdesk.auth.service import create_key
from supportdesk.config import Settings
from supportdesk.db import DatabaseUrl
from supportdesk.db import migrate as migrations

POSTGRES_ADMIN_URL = os.environ.get(
    "SUPPORTDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("SUPPORTDESK_REQUIRE_POSTGRES") == "1"
TEST_DATABASE = "supportdesk_test"
TABLES = ("ticket_messages", "tickets", "api_keys", "users")


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
    return Settings(database_url=database_url, storage_dir=str(tmp_path / "storage"))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with lifespan(application):
        yield application


KeyFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(app: FastAPI) -> KeyFactory:
    async def make(*permissions: str, allowed_ips: tuple[str, ...] = ()) -> str:
        _, token = await create_key(app.state.db, "test", permissions or ("*",), allowed_ips)
        return token

    return make


@pytest.fixture
async def token(make_key: KeyFactory) -> str:
    return await make_key("*")


@pytest.fixture
async def client(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the all-permissions key."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver/api/v1/admin",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        yield http


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
