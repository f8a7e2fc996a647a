"""/docs in a real browser: Swagger UI renders the API from this server alone, under the page's
Content-Security-Policy (a violation is a console error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LOCAL_HOST, Traffic, is_local

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_docs_renders_every_operation_from_this_server(
    page: Page, traffic: Traffic, tmp_path: Path
) -> None:
    response = await page.goto("/docs")
    assert response is not None and response.ok
    assert response.headers["content-security-policy"] == "default-src 'self'; img-src 'self' data:"
    operations = page.locator('.opblock-summary-path[data-path="/api/v1/admin/tickets"]')
    await expect(operations.first).to_be_visible(timeout=30_000)
    await expect(page.locator(".opblock-tag", has_text="canned replies")).to_be_visible()
    # an operation opened and made ready to try: more of Swagger UI's styles and scripts at work
    await operations.first.click()
    await page.get_by_role("button", name="Try it out").click()
    await expect(page.get_by_role("button", name="Execute")).to_be_visible()
    await page.screenshot(path=tmp_path / "docs.png", full_page=True)
    assert (tmp_path / "docs.png").stat().st_size > 0
    assert traffic.console_errors == []
    assert any(url.endswith("/openapi.json") for url in traffic.requests)
    assert all(is_local(url) for url in traffic.requests), LOCAL_HOST
