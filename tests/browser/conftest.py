"""Real-browser tests: one headless Chromium for the session, driven by Playwright, against one
real `supportdesk serve` on a free port of 127.0.0.1 (tests/e2e/conftest.py's `serving`).

The browser is Debian's (`apt-get install chromium`): Playwright's own browser downloads are
not reachable from our machines. The tests are skipped when it is not installed, unless
SUPPORTDESK_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.

Playwright's async API, on the session's event loop: the suite runs pytest-asyncio in auto
mode, and the sync API leaves its own loop marked as running in the main thread between calls,
so every async test after the first browser test of a run would fail ("Runner.run() cannot be
called from a running event loop"). Each browser test module therefore starts with
`pytestmark = pytest.mark.asyncio(loop_scope="session")` (checked at collection): a test on a
loop of its own could not use the session's browser.

Every page comes from a context of its own (`page`), which lets no request leave 127.0.0.1:
one that would is aborted, and fails the test (`Traffic.offsite`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Route,
    async_playwright,
)

from tests.browser.desk import WAIT_MS, Api, Desk, NewPage, Person
from tests.e2e.conftest import Server, serving

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("SUPPORTDESK_REQUIRE_BROWSER") == "1"
MISSING = "chromium is not installed (apt-get install chromium)"
# no sandbox: the tests run as root in containers, where Chromium's sandbox cannot start
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HERE = Path(__file__).parent
LOCAL_HOST = "127.0.0.1"
# URLs that are no network request
LOCAL_SCHEMES = ("data", "blob", "about")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fail early, with the fix, on a browser test that would run on a loop of its own."""
    for item in items:
        if not (
            HERE in item.path.parents
            and isinstance(item, pytest.Function)
            and inspect.iscoroutinefunction(item.obj)
        ):
            continue
        scopes = {marker.kwargs.get("loop_scope") for marker in item.iter_markers("asyncio")}
        if "session" not in scopes:
            raise pytest.UsageError(
                f"{item.nodeid}: a browser test runs on the session's event loop; start its "
                'module with `pytestmark = pytest.mark.asyncio(loop_scope="session")`'
            )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session."""
    if not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"{MISSING} (SUPPORTDESK_REQUIRE_BROWSER=1)")
        pytest.skip(MISSING)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`supportdesk serve` on a fresh SQLite file for the whole session: `base_url`, and the
    demo key it printed in `demo_token`."""
    directory = tmp_path_factory.mktemp("browser")
    with serving(directory, f"sqlite:///{directory / 'browser.db'}") as running:
        yield running


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname == LOCAL_HOST


@dataclass
class Traffic:
    """What a test's page did: every request's URL, those that would have left 127.0.0.1
    (aborted), and the console's errors and uncaught exceptions (CSP violations are among
    them)."""

    requests: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


async def guarded_context(
    browser: Browser, server: Server, traffic: Traffic, **options: Any
) -> BrowserContext:
    """A new context with relative URLs on the server, that records every request into
    `traffic` and aborts (and records) any that would leave 127.0.0.1. `options` are
    `Browser.new_context`'s (`color_scheme`, `viewport`, `storage_state`...)."""
    context = await browser.new_context(base_url=server.base_url, **options)

    def on_request(request: Request) -> None:
        traffic.requests.append(request.url)

    async def block(route: Route) -> None:
        traffic.offsite.append(route.request.url)
        await route.abort("blockedbyclient")

    context.on("request", on_request)
    await context.route(lambda url: not is_local(url), block)
    return context


async def watched_page(context: BrowserContext, traffic: Traffic) -> Page:
    """A new tab of the context whose console errors and uncaught exceptions go to
    `traffic`."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            traffic.console_errors.append(f"{message.text} ({message.location.get('url')})")

    tab = await context.new_page()
    tab.on("console", on_console)
    tab.on("pageerror", lambda error: traffic.console_errors.append(str(error)))
    return tab


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, server: Server, traffic: Traffic) -> AsyncIterator[Page]:
    """A page in a context of its own (no cookies or storage from other tests), with relative
    URLs on the server. Fails the test when a request went anywhere but 127.0.0.1."""
    context = await guarded_context(browser, server, traffic)
    try:
        yield await watched_page(context, traffic)
    finally:
        await context.close()
    assert traffic.offsite == [], f"requests left {LOCAL_HOST}: {traffic.offsite}"


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Browser, server: Server, traffic: Traffic) -> AsyncIterator[NewPage]:
    """Makes pages as `page` does, each in a context of its own made with the options given
    (`await new_page(color_scheme="dark", storage_state=...)`): several people at once, or
    one page in several themes and sizes. Their actions and navigations wait `WAIT_MS` at
    most (`expect` waits 5 s unless told). All are closed after the test, which fails when a
    request of any went anywhere but 127.0.0.1."""
    contexts: list[BrowserContext] = []

    async def make(**options: Any) -> Page:
        context = await guarded_context(browser, server, traffic, **options)
        context.set_default_timeout(WAIT_MS)  # every action and navigation: 10 s at most
        contexts.append(context)
        return await watched_page(context, traffic)

    try:
        yield make
    finally:
        for context in contexts:
            await context.close()
    assert traffic.offsite == [], f"requests left {LOCAL_HOST}: {traffic.offsite}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def desk(server: Server) -> AsyncIterator[Desk]:
    """The session's people: the demo staff login serve printed, a second staff member and a
    customer (made through the API, with passwords)."""
    assert server.demo_password is not None, "serve printed no demo staff login"
    api = Api(server)
    try:
        found = await api.get("/users", {"filter[email]": server.demo_staff})
        admin = Person(int(found[0]["id"]), server.demo_staff, server.demo_password,
                       "Demo Staff", staff=True)  # fmt: skip
        agent = await api.person("Bea", "Agent", staff=True)
        customer = await api.person("Cara", "Customer", staff=False)
        yield Desk(server, api, admin, agent, customer, {})
    finally:
        await api.close()
