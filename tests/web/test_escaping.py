"""Text is always escaped (SPEC 14): script in a subject, a message, a person's name, a file's
name or a canned reply shows as text in the console and the portal, never as markup; URLs in
messages become links only for http(s), opened apart from the page (`noopener noreferrer`).

Besides looking for the payloads, every page is parsed: no element of it may carry an `on...`
attribute, a `javascript:` URL, or a script that is not our own file."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from supportdesk.tables import ticket_attachments
from tests import factories
from tests.web.browser import Browser
from tests.web.conftest import Browsers, People

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS = "javascript:alert(1)"
RAW = ("<script>alert", "<img src=x", "onerror=alert(1)>", 'href="javascript:')
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&gt;&lt;img src=x onerror=alert(1)&gt;")


class Markup(HTMLParser):
    """The elements of a page, to find anything that would run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and not str(found.get("src", "")).startswith("/static/app.js"):
            self.problems.append(f"a script: {attrs}")
        if tag in ("iframe", "object", "embed", "base"):
            self.problems.append(f"a {tag}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            url = (value or "").strip().lower()
            if name in ("href", "src", "action", "formaction") and not url.startswith(
                ("/", "#", "https://", "http://")
            ):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "a":
            self.links.append(found)


def inert(page: httpx.Response) -> Markup:
    """Check a page: every payload escaped, nothing in it that would run."""
    assert page.status_code in (200, 400, 401, 403, 404, 422), page.status_code
    for raw in RAW:
        assert raw not in page.text, raw
    parsed = Markup()
    parsed.feed(page.text)
    assert parsed.problems == []
    return parsed


@pytest.fixture
async def hostile(
    app: FastAPI, client: httpx.AsyncClient, people: People, as_staff: Browser
) -> dict[str, int]:
    """Payloads everywhere: the customer's and a colleague's names, a ticket's subject, its
    messages, a file's name, a canned reply's name and body, the ticket's history."""
    for user in (people.customer, people.colleague):
        response = await client.patch(
            f"/users/{user['id']}", json={"first_name": SCRIPT, "last_name": IMG}
        )
        assert response.status_code == 200, response.text
    ticket = await factories.ticket(
        client,
        people.customer["id"],
        subject=f"{SCRIPT} {IMG} {JS}",
        assigned_to=int(people.colleague["id"]),
    )
    text = (
        f"{SCRIPT}\n{IMG}\n{JS}\nSee https://example.com/a?b=1&c=2. "
        'Or http://x.example/"onmouseover=alert(1)// or <a href="javascript:alert(1)">me</a>'
    )
    response = await client.post(
        "/ticket-messages",
        data={"ticket_id": ticket["id"], "user_id": people.customer["id"], "message": text},
        files=[("attachments", (f"{IMG}.png", b"\x89PNG....", "image/png"))],
    )
    assert response.status_code == 201, response.text
    # the file's name with its quote (httpx sends `"` in a file name as %22; mail may not)
    async with app.state.db.transaction() as conn:
        await conn.execute(update(ticket_attachments).values(filename=f"{IMG}.png"))
    staff_reply = f"{SCRIPT} answered, see javascript:alert(2) and https://example.org/help"
    await factories.post_message(client, ticket["id"], people.colleague["id"], staff_reply)
    response = await client.patch(f"/tickets/{ticket['id']}", json={"subject": f"{IMG} again"})
    assert response.status_code == 200
    canned = await client.post(
        "/canned-replies",
        json={"name": SCRIPT, "body": f"{IMG} Hello {{{{ customer.first_name }}}}"},
    )
    assert canned.status_code == 201, canned.text
    return {"ticket": int(ticket["id"]), "canned": int(canned.json()["data"]["id"])}


async def test_the_console_escapes_every_payload(
    as_staff: Browser, browsers: Browsers, people: People, hostile: dict[str, int]
) -> None:
    ticket = hostile["ticket"]
    queue = await as_staff.get("/console/", params={"queue": "all"})
    inert(queue)
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt; again" in queue.text  # the subject
    assert ESCAPED[0] in queue.text  # the customer's and the assignee's names

    colleague = browsers()
    await colleague.sign_in(People.email(people.colleague))
    presence = await colleague.post(f"/console/tickets/{ticket}/presence", {"state": "replying"})
    inert(presence)

    page = await as_staff.get(f"/console/tickets/{ticket}")
    inert(page)
    for escaped in ESCAPED:
        assert escaped in page.text
    assert f"{ESCAPED[0]} &#34;&gt;&lt;img" in page.text  # the names, with the presence list's
    assert "is replying" in page.text
    assert "javascript:alert(1)" in page.text  # as text

    with_canned = await as_staff.get(f"/console/tickets/{ticket}", params={"canned": "x"})
    inert(with_canned)
    filled = await as_staff.get(
        f"/console/tickets/{ticket}", params={"canned": str(hostile["canned"])}
    )
    inert(filled)
    assert f'<option value="{hostile["canned"]}">{ESCAPED[0]}</option>' in filled.text
    textarea = filled.text.split('name="message"', 1)[1].split("</textarea>", 1)[0]
    assert f"{ESCAPED[1]} Hello {ESCAPED[0]}" in textarea


async def test_the_portal_escapes_every_payload(
    as_customer: Browser, hostile: dict[str, int]
) -> None:
    listing = await as_customer.get("/portal/")
    inert(listing)
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt; again" in listing.text
    page = await as_customer.get(f"/portal/tickets/{hostile['ticket']}")
    inert(page)
    for escaped in ESCAPED:
        assert escaped in page.text
    # the file's name, in its link and in the image's alt text
    assert 'alt="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.png"' in page.text


async def test_urls_become_links_only_for_http_and_https(
    as_customer: Browser, hostile: dict[str, int]
) -> None:
    page = await as_customer.get(f"/portal/tickets/{hostile['ticket']}")
    links = [a for a in inert(page).links if a.get("target") == "_blank"]
    assert [a["href"] for a in links] == [
        "https://example.com/a?b=1&c=2",  # the sentence's full stop is not the URL's
        "http://x.example/",  # a quote ends a URL
        "https://example.org/help",
    ]
    for link in links:
        assert link["rel"] == "noopener noreferrer nofollow"
    assert 'href="https://example.com/a?b=1&amp;c=2"' in page.text
    assert "&lt;a href=&quot;javascript:alert(1)&quot;&gt;me&lt;/a&gt;" in page.text


async def test_reflected_input_is_escaped_on_forms_and_error_pages(
    browsers: Browsers, as_staff: Browser, as_customer: Browser
) -> None:
    """What a visitor sends comes back in forms (`next`, the address typed in, a draft) and
    in error messages (a bad queue or filter, an unknown path): as text."""
    browser = browsers()
    inert(await browser.get("/login", params={"next": f"/console/{IMG}{SCRIPT}"}))
    inert(await browser.post("/login", {"email": f"{SCRIPT}@example.com", "password": IMG}))
    inert(await as_staff.get("/console/", params={"queue": SCRIPT}))
    inert(await as_staff.get("/console/", params={f"filter[{SCRIPT}]": IMG}))
    inert(await as_staff.get("/console/", params={"sort": SCRIPT}))
    inert(await as_staff.get(f"/console/{SCRIPT}"))
    new = await as_customer.post("/portal/tickets/new", {"subject": "", "message": SCRIPT})
    assert new.status_code == 422
    inert(new)
    assert ESCAPED[0] in new.text
