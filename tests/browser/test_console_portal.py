"""The console and the portal in a real browser (SPEC 14; the scenario of issue 12): staff and a
customer working one ticket at once, with live updates and presence; the keyboard; the pages
without JavaScript and at 375 px; and screenshots of every main page in light, dark and phone
width (docs/screenshots/ when SUPPORTDESK_SCREENSHOTS says so).

Every page comes from `new_page`, which fails the test on a request off 127.0.0.1; each test
also asserts that no page logged a console error (a CSP violation is one)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import Traffic
from tests.browser.desk import (
    ERROR_PAGE,
    MAIN_PAGES,
    WAIT_MS,
    Desk,
    NewPage,
    Visitors,
    goto_live,
    png,
    sign_in,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(90)]

# Where the screenshots go: the test's own folder, or with SUPPORTDESK_SCREENSHOTS set (to
# docs/screenshots, say) a folder of one's choosing: the committed ones are refreshed by
# `SUPPORTDESK_SCREENSHOTS=docs/screenshots pytest tests/browser`, and a test run leaves the
# tree as it found it.
SCREENSHOTS = os.environ.get("SUPPORTDESK_SCREENSHOTS")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
# stands for "the page did not load again": set before, still there after
STAYED = "window.__stayed = true"
STILL_THERE = "window.__stayed === true"


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
    assert await image.evaluate("img => img.complete && img.naturalWidth === 48")
    async with customer.expect_download(timeout=WAIT_MS) as downloading:
        await customer.locator("#thread a[download]", has_text="viewer.png").click()
    download = await downloading.value
    assert download.suggested_filename == "viewer.png"
    assert Path(await download.path()).read_bytes() == png()
    await customer.evaluate(STAYED)

    # A: staff signs in, opens the Needs-attention queue and the ticket by its subject
    staff = await new_page(viewport=DESKTOP)
    await sign_in(staff, desk.admin.email, desk.admin.password, "/console/")
    await staff.get_by_role("link", name=re.compile(r"^Needs attention")).click()
    await staff.get_by_role("link", name=subject, exact=True).click()
    await expect(staff).to_have_url(re.compile(rf"/console/tickets/{ticket_id}$"))

    # C: a second staff member on the same page sees A there, then A writing
    other = await new_page(viewport=DESKTOP, storage_state=await desk.state(browser, desk.agent))
    await goto_live(other, f"/console/tickets/{ticket_id}")
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

    # C starts a draft: A sees C writing
    draft = other.get_by_label("Reply", exact=True)
    await draft.fill("Bea's draft, half written")
    await expect(staff.locator("#presence")).to_have_text("Bea Agent is replying", timeout=WAIT_MS)

    # B answers; C sees it arrive without reloading, the draft kept; the note never reaches B
    customer_reply = customer.get_by_label("Reply", exact=True)
    await customer_reply.fill("Thanks, the new copy opens fine.")
    await customer.get_by_role("button", name="Send", exact=True).click()
    await expect(thread).to_contain_text("the new copy opens fine")
    await expect(other.locator("#thread")).to_contain_text(
        "the new copy opens fine", timeout=WAIT_MS
    )
    assert await other.evaluate(STILL_THERE), "the second staff page loaded again"
    await expect(draft).to_have_value("Bea's draft, half written")
    await expect(thread).not_to_contain_text(note)
    await expect(thread.locator("li.message")).to_have_count(3)

    # C leaves: A's page no longer names C
    await other.goto("about:blank")
    await expect(staff.locator("#presence > li")).to_have_count(0, timeout=WAIT_MS)

    # A closes it; B's page shows it closed, live
    await customer.evaluate(STAYED)
    await staff.get_by_role("button", name="Close ticket").click()
    await expect(staff.get_by_label("Status", exact=True)).to_have_value("closed")
    await expect(customer.locator("#fields")).to_contain_text("closed", timeout=WAIT_MS)
    assert await customer.evaluate(STILL_THERE)
    assert traffic.console_errors == []


async def test_queue_and_list_follow_live_and_bulk_close(
    new_page: NewPage, desk: Desk, browser: Browser, traffic: Traffic
) -> None:
    """A new ticket appears in the console's queue (with its count) and the customer's list
    without reloading, a box ticked meanwhile stays ticked; staff answer, the customer's list
    shows it; then two tickets are closed at once."""
    customer = desk.customer
    older = await desk.api.ticket(customer, "Live: older ticket", (customer, "Older."))
    staff = await new_page(viewport=DESKTOP, storage_state=await desk.state(browser, desk.admin))
    await goto_live(staff, "/console/?queue=unassigned")
    count = staff.locator('#queues a[href="/console/?queue=unassigned"] .count')
    before = int(await count.inner_text())
    await staff.get_by_label(f"Select ticket {older}").check()
    mine = await new_page(viewport=DESKTOP, storage_state=await desk.state(browser, customer))
    await goto_live(mine, "/portal/")
    for page in (staff, mine):
        await page.evaluate(STAYED)

    subject = "Live: printer on fire"
    fresh = await desk.api.ticket(customer, subject, (customer, "It smokes."))
    await expect(staff.get_by_role("link", name=subject)).to_be_visible(timeout=WAIT_MS)
    await expect(count).to_have_text(str(before + 1), timeout=WAIT_MS)
    await expect(staff.get_by_label(f"Select ticket {older}")).to_be_checked()
    item = mine.locator(".ticket-list li", has=mine.get_by_role("link", name=subject))
    await expect(item).to_contain_text("customer-reply", timeout=WAIT_MS)
    await desk.api.message(fresh, desk.agent, "Unplug it, we are on our way.")
    await expect(item).to_contain_text("replied", timeout=WAIT_MS)
    for page in (staff, mine):
        assert await page.evaluate(STILL_THERE), f"{page.url} loaded again"

    await staff.get_by_label(f"Select ticket {fresh}").check()
    await staff.get_by_label("With selected").select_option(label="Close")
    await staff.get_by_role("button", name="Apply to selected").click()
    await expect(staff.get_by_role("link", name=subject)).to_be_hidden()
    await staff.goto("/console/?queue=closed")
    for ticket in (older, fresh):
        await expect(staff.get_by_label(f"Select ticket {ticket}")).to_be_visible()
    assert traffic.console_errors == []


async def test_console_keyboard(
    new_page: NewPage, desk: Desk, browser: Browser, traffic: Traffic
) -> None:
    """`?` help, `j`/`k` through the queue and the thread, Enter opens, `r` reply and
    Ctrl+Enter sends, `a` assigns to me, `c` closes, `/` searches."""
    customer = desk.customer
    await desk.api.ticket(customer, "Keys: older ticket", (customer, "The older one."))
    newer = await desk.api.ticket(customer, "Keys: newer ticket", (customer, "The newer one."))
    page = await new_page(viewport=DESKTOP, storage_state=await desk.state(browser, desk.admin))
    await goto_live(page, "/console/?queue=all")

    await page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    subjects = page.locator("#tickets tbody a.subject")
    await expect(subjects.nth(1)).to_have_text("Keys: older ticket")
    selected = re.compile(r"\bselected\b")
    for key, index in (("j", 0), ("j", 1), ("k", 0)):
        await page.keyboard.press(key)
        await expect(subjects.nth(index)).to_be_focused()
        await expect(subjects.nth(index)).to_have_class(selected)
    await expect(page.locator("a.subject.selected")).to_have_count(1)
    # a ticket arrives on top while one is selected: the selection stays where it was
    await desk.api.ticket(customer, "Keys: newest ticket", (customer, "Just in."))
    await expect(subjects.first).to_have_text("Keys: newest ticket", timeout=WAIT_MS)
    await expect(subjects.nth(1)).to_be_focused()
    await expect(subjects.nth(1)).to_have_class(selected)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/console/tickets/{newer}$"))
    await page.wait_for_load_state()  # the script runs before "load": keys before it do nothing

    await page.keyboard.press("j")
    first = page.locator("#thread > li").first
    await expect(first).to_be_focused()
    # a message arrives while one is selected: the selection stays where it was
    await desk.api.message(newer, desk.agent, "A word from Bea.")
    await expect(page.locator("#thread")).to_contain_text("A word from Bea.", timeout=WAIT_MS)
    await expect(first).to_be_focused()
    await expect(first).to_have_class(selected)
    await page.keyboard.press("r")
    reply = page.get_by_label("Reply", exact=True)
    await expect(reply).to_be_focused()
    await expect(reply).to_have_value("")  # the key did not type itself
    await page.keyboard.type("Answered from the keyboard.")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator("#thread")).to_contain_text("Answered from the keyboard.")
    await expect(page.locator("#thread > li.message")).to_have_count(3)

    await page.wait_for_load_state()
    await page.keyboard.press("a")
    await expect(page.get_by_label("Assignee")).to_have_value(str(desk.admin.id))
    await page.wait_for_load_state()
    await page.keyboard.press("c")
    await expect(page.get_by_label("Status", exact=True)).to_have_value("closed")
    await page.wait_for_load_state()
    await page.keyboard.press("/")
    await expect(page.get_by_label("Search")).to_be_focused()
    assert traffic.console_errors == []


async def test_pages_work_without_javascript(
    new_page: NewPage, desk: Desk, browser: Browser, traffic: Traffic
) -> None:
    """With JavaScript off every page reads and every form works: the thread, the reply box
    and the fields are there, and a reply is sent by the form alone."""
    subject = "Scripts off: mail bounces"
    ticket = await desk.conversation(subject)
    anyone = await new_page(java_script_enabled=False)
    await anyone.goto("/login")
    await expect(anyone.get_by_label("Email")).to_be_editable()
    await expect(anyone.get_by_label("Password")).to_be_editable()
    await expect(anyone.get_by_role("button", name="Sign in")).to_be_visible()

    staff = await new_page(
        java_script_enabled=False, storage_state=await desk.state(browser, desk.admin)
    )
    await staff.goto("/console/?queue=all")
    await expect(staff.get_by_role("link", name=subject)).to_be_visible()
    await expect(staff.get_by_role("button", name="Apply to selected")).to_be_visible()
    await staff.get_by_role("link", name=subject).click()
    thread = staff.locator("#thread")
    await expect(thread.locator("> li")).to_have_count(4)
    await expect(thread).to_contain_text("550 5.7.1")
    await expect(thread.locator("> li.note")).to_contain_text("OPS-311")
    await expect(staff.get_by_role("img", name="bounce.png")).to_be_visible()
    await expect(staff.get_by_label("Status", exact=True)).to_be_visible()
    await expect(staff.get_by_role("dialog")).to_be_hidden()
    await staff.get_by_label("Reply", exact=True).fill("Sent with scripts off.")
    await staff.get_by_role("button", name="Send", exact=True).click()
    await expect(staff).to_have_url(re.compile(rf"/console/tickets/{ticket}#latest$"))
    await expect(thread).to_contain_text("Sent with scripts off.")

    customer = await new_page(
        java_script_enabled=False, storage_state=await desk.state(browser, desk.customer)
    )
    await customer.goto("/portal/")
    await customer.get_by_role("link", name=subject).click()
    thread = customer.locator("#thread")
    await expect(thread).to_contain_text("Sent with scripts off.")
    await expect(thread).not_to_contain_text("OPS-311")
    await expect(thread.locator("> li")).to_have_count(4)
    await customer.get_by_label("Reply", exact=True).fill("Thanks, got it.")
    await customer.get_by_role("button", name="Send", exact=True).click()
    await expect(thread).to_contain_text("Thanks, got it.")
    await customer.goto("/portal/tickets/new")
    for label in ("Subject", "Department", "Message", "Attachments"):
        await expect(customer.get_by_label(label)).to_be_visible()
    await expect(customer.get_by_role("button", name="Open ticket")).to_be_visible()
    assert traffic.console_errors == []


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        pytest.param("light", {"viewport": DESKTOP, "color_scheme": "light"}, id="light"),
        pytest.param("dark", {"viewport": DESKTOP, "color_scheme": "dark"}, id="dark"),
        pytest.param("phone", {"viewport": PHONE, "color_scheme": "light"}, id="phone"),
    ],
)
async def test_main_pages_screenshots_and_phone_width(
    mode: str,
    options: dict[str, object],
    new_page: NewPage,
    desk: Desk,
    browser: Browser,
    traffic: Traffic,
    tmp_path: Path,
) -> None:
    """Each main page in the theme or width, written as NAME-MODE.png (the viewport only) to
    `SCREENSHOTS`; at 375 px no page scrolls sideways."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    visitors = Visitors(desk, browser, new_page, **options)
    for place in MAIN_PAGES:
        page = await visitors.open(place)
        await expect(page.locator("h1")).to_be_visible()
        if mode == "phone":
            width = await page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= PHONE["width"] + 1, f"{place.name} is {width} px wide at 375 px"
        await page.screenshot(path=folder / f"{place.name}-{mode}.png", animations="disabled")
    if mode == "phone":
        page = await visitors.open(ERROR_PAGE)
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"] + 1, f"the error page is {width} px wide at 375 px"
        # Chromium's note on the page's 404, which is the point here
        traffic.console_errors = [e for e in traffic.console_errors if page.url not in e]
    assert traffic.console_errors == []


async def test_sign_in_returns_to_the_page_asked_for_and_sign_out(
    new_page: NewPage, desk: Desk, traffic: Traffic
) -> None:
    """A ticket's link opened signed out asks to sign in, then shows the ticket; signing out
    ends the session (that session only)."""
    ticket = await desk.sample_ticket()
    page = await new_page(viewport=DESKTOP)
    await page.goto(f"/portal/tickets/{ticket}")
    await expect(page).to_have_url(re.compile(rf"/login\?next=/portal/tickets/{ticket}$"))
    await page.get_by_label("Email").fill(desk.customer.email)
    await page.get_by_label("Password").fill(desk.customer.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(rf"/portal/tickets/{ticket}$"))
    await expect(page.locator("#thread")).to_contain_text("550 5.7.1")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto("/portal/")
    await expect(page).to_have_url(re.compile(r"/login\?next=/portal/$"))
    assert traffic.console_errors == []
