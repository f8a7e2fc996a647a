"""The console and the portal in a real browser (SPEC 14; the scenario of issue 12): staff and a
customer working one ticket at once, with live updates and presence; the keyboard; the pages
without JavaScript and at 375 px; and screenshots of every main page in light, dark and phone
width, written to docs/screenshots/.

Every page comes from `new_page`, which fails the test on a request off 127.0.0.1; each test
also asserts that no page logged a console error (a CSP violation is one)."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import NewPage, Traffic
from tests.browser.desk import WAIT_MS, Desk, sign_in

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(90)]

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
# stands for "the page did not load again": set before, still there after
STAYED = "window.__stayed = true"
STILL_THERE = "window.__stayed === true"


def png(width: int = 24, height: int = 16) -> bytes:
    """A small valid PNG (a blue rectangle), to attach as a screenshot would be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x1f\x6f\xeb" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


async def test_staff_and_customer_work_one_ticket_live(
    new_page: NewPage, desk: Desk, browser: Browser, traffic: Traffic
) -> None:
    """Issue 12: a customer opens a ticket in the portal; staff answer it in the console with a
    canned reply, add a note, assign it and close it, while the customer's page and a second
    staff member's page follow without reloading, and each staff page shows who else is
    there."""
    canned = "Invoice resent"
    await desk.api.canned_reply(
        canned, "Hi {{ customer.first_name }}, about #{{ ticket.id }}: {{ agent.first_name }}"
    )

    # B: the customer signs in and opens a ticket with a screenshot attached
    customer = await new_page(viewport=DESKTOP)
    await sign_in(customer, desk.customer.email, desk.customer.password, "/portal/")
    await customer.get_by_role("link", name="Open a ticket").click()
    subject = "Invoice PDF will not open"
    await customer.get_by_label("Subject").fill(subject)
    await customer.get_by_label("Message").fill("The invoice I downloaded says it is damaged.")
    await customer.get_by_label("Attachments").set_input_files(
        [{"name": "viewer.png", "mimeType": "image/png", "buffer": png()}]
    )
    await customer.get_by_role("button", name="Open ticket").click()
    await expect(customer).to_have_url(re.compile(r"/portal/tickets/\d+$"), timeout=WAIT_MS)
    ticket_id = int(customer.url.rsplit("/", 1)[1])
    thread = customer.locator("#thread")
    await expect(thread).to_contain_text("says it is damaged")
    image = customer.get_by_role("img", name="viewer.png")
    await expect(image).to_be_visible()
    assert await image.evaluate("img => img.complete && img.naturalWidth === 24")
    await customer.evaluate(STAYED)

    # A: staff signs in, opens the Needs-attention queue and the ticket by its subject
    staff = await new_page(viewport=DESKTOP)
    await sign_in(staff, desk.admin.email, desk.admin.password, "/console/")
    await staff.get_by_role("link", name=re.compile(r"^Needs attention")).click()
    await staff.get_by_role("link", name=subject, exact=True).click()
    await expect(staff).to_have_url(re.compile(rf"/console/tickets/{ticket_id}$"))

    # C: a second staff member on the same page sees A there, then A writing
    other = await new_page(viewport=DESKTOP, storage_state=await desk.state(browser, desk.agent))
    await other.goto(f"/console/tickets/{ticket_id}")
    await expect(other.locator("#presence")).to_have_text("Demo Staff is viewing", timeout=WAIT_MS)
    await other.evaluate(STAYED)
    reply = staff.get_by_label("Reply", exact=True)
    await reply.press_sequentially("Looking")
    await expect(other.locator("#presence")).to_have_text("Demo Staff is replying", timeout=WAIT_MS)
    await expect(staff.locator("#presence")).to_have_text("Bea Agent is viewing", timeout=WAIT_MS)
    await reply.fill("")
    await reply.blur()
    await expect(other.locator("#presence")).to_have_text("Demo Staff is viewing", timeout=WAIT_MS)

    # A answers with the canned reply, filled in for this ticket, and a line of their own
    await staff.get_by_label("Canned reply").select_option(label=canned)
    await staff.get_by_role("button", name="Insert").click()
    await expect(reply).to_have_value(f"Hi Cara, about #{ticket_id}: Demo")
    await reply.press("End")
    await reply.press_sequentially(" A new copy is on its way.")
    await staff.get_by_role("button", name="Send", exact=True).click()
    await expect(staff.locator("#thread")).to_contain_text("A new copy is on its way.")
    await expect(reply).to_have_value("")

    # B sees the answer arrive on the open page
    await expect(thread).to_contain_text("A new copy is on its way.", timeout=WAIT_MS)
    assert await customer.evaluate(STILL_THERE), "the customer's page loaded again"

    # A adds an internal note, set apart, and assigns the ticket to themselves
    note = "Customer is on an old PDF viewer; billing knows."
    await staff.get_by_label("Internal note").check()
    await reply.fill(note)
    await staff.get_by_role("button", name="Send", exact=True).click()
    noted = staff.locator("#thread > li.note")
    await expect(noted).to_contain_text(note)
    await expect(noted).to_contain_text("Internal note")
    await staff.get_by_role("button", name="Assign to me").click()
    await expect(staff.get_by_label("Assignee")).to_have_value(str(desk.admin.id))
    await expect(other.get_by_label("Assignee")).to_have_value(str(desk.admin.id), timeout=WAIT_MS)

    # B answers; C sees it arrive without reloading; the note never reaches B
    customer_reply = customer.get_by_label("Reply", exact=True)
    await customer_reply.fill("Thanks, the new copy opens fine.")
    await customer.get_by_role("button", name="Send", exact=True).click()
    await expect(thread).to_contain_text("the new copy opens fine")
    await expect(other.locator("#thread")).to_contain_text(
        "the new copy opens fine", timeout=WAIT_MS
    )
    assert await other.evaluate(STILL_THERE), "the second staff page loaded again"
    await expect(thread).not_to_contain_text(note)
    await expect(thread.locator("li.message")).to_have_count(3)

    # A closes it; B's page shows it closed, live
    await customer.evaluate(STAYED)
    await staff.get_by_role("button", name="Close ticket").click()
    await expect(staff.get_by_label("Status", exact=True)).to_have_value("closed")
    await expect(customer.locator("#fields")).to_contain_text("closed", timeout=WAIT_MS)
    assert await customer.evaluate(STILL_THERE)
    assert traffic.console_errors == []
