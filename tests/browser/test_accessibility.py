"""axe-core (from axe-playwright-python) on every page of the browser, in the light and the dark
theme: no violation of impact "serious" or "critical" (SPEC 14: every control labelled, text
readable in both themes).

axe is put into the page by Playwright's `evaluate`, which the pages' Content-Security-Policy
does not govern; the pages themselves still run under it (a violation is a console error)."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Traffic
from tests.browser.desk import ERROR_PAGE, MAIN_PAGES, Desk, NewPage, Visitors

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(90)]

DESKTOP = {"width": 1280, "height": 800}
BLOCKING = ("serious", "critical")
axe = Axe()


def described(violation: dict[str, Any]) -> str:
    """One violation as a line a person can act on: the rule, its impact, and where."""
    where = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
    return f"{violation['id']} ({violation['impact']}): {violation['help']} at {where}"


async def blocking_violations(page: Page) -> list[str]:
    results = await axe.run(page)
    return [described(v) for v in results.response["violations"] if v["impact"] in BLOCKING]


def unexpected(traffic: Traffic, answered: list[str]) -> list[str]:
    """The console errors but Chromium's note on each page that was answered with an error
    status on purpose (an error page, a form sent back with its errors)."""
    return [
        line
        for line in traffic.console_errors
        if not (line.startswith("Failed to load resource: the server responded with a status of 4")
                and any(line.endswith(f"({url})") for url in answered))
    ]  # fmt: skip


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_page_passes_axe(
    scheme: str, new_page: NewPage, desk: Desk, browser: Browser, traffic: Traffic
) -> None:
    """The main pages, the keyboard help over the console's ticket page, an error page, and
    the sign-in and new-ticket forms sent back with their errors."""
    visitors = Visitors(desk, browser, new_page, viewport=DESKTOP, color_scheme=scheme)
    found: dict[str, list[str]] = {}
    answered: list[str] = []
    for place in (*MAIN_PAGES, ERROR_PAGE):
        page = await visitors.open(place)
        await expect(page.locator("h1")).to_be_visible()
        found[place.name] = await blocking_violations(page)
        if place is ERROR_PAGE:
            answered.append(page.url)
        if place.name == "console-ticket":  # and the keyboard help over it
            await page.keyboard.press("?")
            await expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
            found["shortcuts-dialog"] = await blocking_violations(page)
        if place.name == "sign-in":  # a wrong password (an address that is nobody's)
            await page.get_by_label("Email").fill("nobody@example.com")
            await page.get_by_label("Password").fill("not-the-password")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
            answered.append(page.url)
            found["sign-in-error"] = await blocking_violations(page)
        if place.name == "portal-new-ticket":  # a subject, but no message
            await page.get_by_label("Subject").fill("Nothing to say")
            await page.get_by_role("button", name="Open ticket").click()
            await expect(page.locator("#message-error")).to_be_visible()
            answered.append(page.url)
            found["portal-new-ticket-error"] = await blocking_violations(page)
    failures = {name: lines for name, lines in found.items() if lines}
    assert failures == {}, "\n".join(
        f"{name}: {line}" for name, lines in failures.items() for line in lines
    )
    assert unexpected(traffic, answered) == []


async def test_skip_link_and_focus_are_visible(
    new_page: NewPage, desk: Desk, browser: Browser, traffic: Traffic
) -> None:
    """The first Tab shows the skip link, which takes the keyboard to the page's content."""
    page = await new_page(storage_state=await desk.state(browser, desk.admin), viewport=DESKTOP)
    await page.goto("/console/")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    box = await skip.bounding_box()
    assert box is not None and box["x"] >= 0, "the focused skip link is off screen"
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Needs attention")).to_be_focused()
    assert traffic.console_errors == []
