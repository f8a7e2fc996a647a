"""The staff console through its forms (SPEC 14): queues with their counts, search, filters,
sorts and paging; bulk actions; the ticket page's fields, reply box (reply, note, "send and set
status", canned replies), merge and presence. Writes are the signed-in user's, in the event
log as `{"type": "user", "id": ...}`."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import factories
from tests.web.browser import Browser, snapshot
from tests.web.conftest import Browsers, People

_QUEUE_LINK = re.compile(r'\?queue=(\w+)"[^>]*>([^<]+?) <span class="count">(\d+)</span>')
_ROW = re.compile(r'<tr data-ticket="(\d+)">')


def counts(page: httpx.Response) -> dict[str, tuple[str, int]]:
    return {name: (label, int(n)) for name, label, n in _QUEUE_LINK.findall(page.text)}


def rows(page: httpx.Response) -> list[int]:
    return [int(i) for i in _ROW.findall(page.text)]


async def ticket_of(client: httpx.AsyncClient, ticket_id: int) -> dict[str, Any]:
    response = await client.get(f"/tickets/{ticket_id}")
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def events_of(client: httpx.AsyncClient, after: int = 0) -> list[dict[str, Any]]:
    items = (await client.get("/events", params={"limit": "1000"})).json()["data"]
    return [item["attributes"] for item in items if int(item["id"]) > after]


async def newest_event(client: httpx.AsyncClient) -> int:
    items = (await client.get("/events", params={"limit": "1000"})).json()["data"]
    return max((int(item["id"]) for item in items), default=0)


async def new_ticket(
    client: httpx.AsyncClient, owner: dict[str, Any], subject: str = "Broken", **changes: Any
) -> int:
    """A ticket of `owner`, then brought to `changes` (status, assignee) through the API."""
    ticket = await factories.ticket(client, owner["id"], subject=subject)
    if changes:
        response = await client.patch(f"/tickets/{ticket['id']}", json=changes)
        assert response.status_code == 200, response.text
    return int(ticket["id"])


def me(people: People) -> int:
    return int(people.staff["id"])


async def test_the_queues_list_their_tickets_with_counts(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    cora, sam, cole = people.customer, me(people), int(people.colleague["id"])
    t_open = await new_ticket(client, cora, "Open, nobody's")
    t_reply = await new_ticket(client, cora, "Customer replied", status="customer-reply",
                               assigned_to=sam)  # fmt: skip
    t_replied = await new_ticket(client, cora, "We replied", status="replied", assigned_to=sam)
    t_hold = await new_ticket(client, cora, "Held", status="on-hold")
    t_closed = await new_ticket(client, cora, "Done", status="closed", assigned_to=sam)
    t_theirs = await new_ticket(client, cora, "Cole's", assigned_to=cole)

    page = await as_staff.get("/console/")
    assert page.status_code == 200
    assert counts(page) == {
        "attention": ("Needs attention", 3),
        "mine": ("Mine", 2),
        "unassigned": ("Unassigned", 2),
        "hold": ("On hold", 1),
        "closed": ("Closed", 1),
        "all": ("All", 6),
    }
    # Needs attention is the default queue, the longest waiting first
    assert rows(page) == [t_open, t_reply, t_theirs]
    assert f'<a href="/console/tickets/{t_open}" class="subject">Open, nobody&#39;s</a>' in (
        page.text
    )
    expected = {
        "mine": {t_reply, t_replied},
        "unassigned": {t_open, t_hold},
        "hold": {t_hold},
        "closed": {t_closed},
        "all": {t_open, t_reply, t_replied, t_hold, t_closed, t_theirs},
    }
    for queue, wanted in expected.items():
        listed = await as_staff.get("/console/", params={"queue": queue})
        assert listed.status_code == 200, queue
        assert set(rows(listed)) == wanted, queue
        assert 'aria-current="page"' in listed.text
    # the newest change first, in every queue but Needs attention
    assert rows(await as_staff.get("/console/", params={"queue": "all"}))[0] == t_theirs


async def test_search_filters_and_sorts(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    printer = await new_ticket(client, people.customer, "The printer jams")
    await factories.post_message(client, printer, people.customer["id"], "Toner everywhere")
    vpn = await new_ticket(client, people.customer, "VPN drops", priority="urgent")
    invoice = await new_ticket(client, people.customer, "Invoice question", department="billing")

    def listed(**params: str) -> Any:
        return as_staff.get("/console/", params={"queue": "all", **params})

    assert rows(await listed(**{"filter[search]": "printer"})) == [printer]
    assert rows(await listed(**{"filter[search]": "toner"})) == [printer]  # in a message
    assert rows(await listed(**{"filter[search]": "nothing like it"})) == []
    searched = await listed(**{"filter[search]": "printer"})
    assert 'value="printer"' in searched.text  # the search box keeps the words
    assert rows(await listed(**{"filter[priority]": "urgent"})) == [vpn]
    assert rows(await listed(**{"filter[department]": "billing"})) == [invoice]
    by_subject = await listed(sort="subject")
    assert rows(by_subject) == [invoice, printer, vpn]
    assert '<option value="subject" selected>' in by_subject.text
    # empty filters (the form sends every field) are no filters
    assert len(rows(await listed(**{"filter[status]": "", "filter[priority]": ""}))) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"filter[nope]": "1"},
        {"sort": "nonsense"},
        {"queue": "nope"},
        {"page": "first"},
        {"per_page": "0"},
    ],
)
async def test_a_bad_filter_sort_queue_or_page_is_an_html_error_page(
    as_staff: Browser, params: dict[str, str]
) -> None:
    """SPEC 4's answers (400 for an unknown filter, sort or queue; 422 for a bad page), as a
    page of the console rather than the API's JSON."""
    response = await as_staff.get("/console/", params=params)
    assert response.status_code == (422 if "page" in str(params) else 400)
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>That did not work</h1>" in response.text


async def test_the_search_shortcut_from_a_ticket_page_opens_the_queue(
    as_staff: Browser,
) -> None:
    """The script's `/` key on a page without a search box goes to /console/?focus=search."""
    response = await as_staff.get("/console/", params={"focus": "search"})
    assert response.status_code == 200


async def test_paging(client: httpx.AsyncClient, as_staff: Browser, people: People) -> None:
    made = [await new_ticket(client, people.customer, f"Ticket {n}") for n in range(5)]
    first = await as_staff.get("/console/", params={"queue": "all", "per_page": "2"})
    assert rows(first) == [made[4], made[3]]
    assert "Page 1 of 3" in first.text
    link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert link is not None
    second = await as_staff.get(link.group(1).replace("&amp;", "&"))
    assert rows(second) == [made[2], made[1]]
    assert "Page 2 of 3" in second.text and 'rel="prev"' in second.text
    third = await as_staff.get("/console/", params={"queue": "all", "per_page": "2", "page": "3"})
    assert rows(third) == [made[0]]
    assert 'rel="next"' not in third.text


@pytest.mark.parametrize(
    ("action", "changed"),
    [
        ("assign_me", {"assigned_to": "me"}),
        ("assign:{colleague}", {"assigned_to": "colleague"}),
        ("status:on-hold", {"status": "on-hold"}),
        ("priority:high", {"priority": "high"}),
        ("close", {"status": "closed"}),
    ],
)
async def test_a_bulk_action_changes_every_selected_ticket_with_one_event_each(
    client: httpx.AsyncClient,
    as_staff: Browser,
    people: People,
    action: str,
    changed: dict[str, Any],
) -> None:
    chosen = [await new_ticket(client, people.customer, f"Bulk {n}") for n in range(3)]
    left = await new_ticket(client, people.customer, "Not selected")
    after = await newest_event(client)
    back = "/console/?queue=all&per_page=10"
    colleague = int(people.colleague["id"])
    response = await as_staff.post(
        "/console/tickets/bulk",
        {"ids": [str(i) for i in chosen], "action": action.format(colleague=colleague),
         "back": back},
    )  # fmt: skip
    assert response.status_code == 303, response.text
    assert response.headers["location"] == back
    names = {"me": me(people), "colleague": colleague}
    wanted = {k: names.get(v, v) for k, v in changed.items()}
    for ticket_id in chosen:
        ticket = await ticket_of(client, ticket_id)
        assert {k: ticket[k] for k in wanted} == wanted
    untouched = await ticket_of(client, left)
    assert untouched["status"] == "open" and untouched["assigned_to"] is None
    events = await events_of(client, after)
    assert sorted(e["ticket_id"] for e in events) == chosen
    for event in events:
        assert event["event"] == "ticket.updated"
        assert event["actor"] == {"type": "user", "id": me(people)}
        assert set(event["changes"]) >= set(wanted)


async def test_a_bulk_action_without_tickets_or_with_a_bad_value_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer)
    before = await snapshot(app)
    for form in (
        {"action": "close"},
        {"ids": [str(ticket)], "action": "status:nonsense"},
        {"ids": [str(ticket)], "action": "explode"},
        {"ids": [str(ticket), "999999"], "action": "close"},
    ):
        response = await as_staff.post("/console/tickets/bulk", form)
        assert response.status_code in (404, 422), (form, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
    assert await snapshot(app) == before
    # `back` leads only into the console or the portal
    off_site = await as_staff.post(
        "/console/tickets/bulk",
        {"ids": [str(ticket)], "action": "close", "back": "https://evil.example/"},
    )
    assert off_site.headers["location"] == "/console/"


async def test_the_ticket_pages_fields_change_the_ticket(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer)
    page = await as_staff.get(f"/console/tickets/{ticket}")
    assert page.status_code == 200
    assert f'<option value="{me(people)}">Sam Staff (me)</option>' in page.text
    after = await newest_event(client)
    colleague = int(people.colleague["id"])
    response = await as_staff.post(
        f"/console/tickets/{ticket}",
        {"status": "on-hold", "priority": "urgent", "department": "billing",
         "assigned_to": str(colleague)},
    )  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/tickets/{ticket}"
    found = await ticket_of(client, ticket)
    assert (found["status"], found["priority"], found["department"], found["assigned_to"]) == (
        "on-hold", "urgent", "billing", colleague,
    )  # fmt: skip
    (event,) = await events_of(client, after)
    assert event["actor"] == {"type": "user", "id": me(people)}
    assert set(event["changes"]) == {"status", "priority", "department", "assigned_to"}

    # "(none)" and "(nobody)" clear the department and the assignee
    await as_staff.post(f"/console/tickets/{ticket}", {"department": "", "assigned_to": ""})
    found = await ticket_of(client, ticket)
    assert found["department"] is None and found["assigned_to"] is None
    # the page's "Assign to me" and "Close ticket" buttons
    await as_staff.post(f"/console/tickets/{ticket}", {"assigned_to": str(me(people))})
    await as_staff.post(f"/console/tickets/{ticket}", {"status": "closed"})
    found = await ticket_of(client, ticket)
    assert found["assigned_to"] == me(people) and found["status"] == "closed"
    page = await as_staff.get(f"/console/tickets/{ticket}")
    assert "<option selected>closed</option>" in page.text
    assert "History (" in page.text and "status: on-hold → closed" in page.text

    bad = await as_staff.post(f"/console/tickets/{ticket}", {"status": "nonsense"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
    assert (await ticket_of(client, ticket))["status"] == "closed"


async def test_a_reply_moves_the_status_by_the_workflow_and_a_note_does_not(
    client: httpx.AsyncClient, as_staff: Browser, as_customer: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer)
    page = await as_staff.get(f"/console/tickets/{ticket}")
    assert '<label for="reply">Reply</label>' in page.text
    assert '<button type="submit" class="primary">Send</button>' in page.text

    note = await as_staff.post(
        f"/console/tickets/{ticket}/messages", {"kind": "note", "message": "Check the logs"}
    )
    assert note.status_code == 303
    found = await ticket_of(client, ticket)
    assert found["status"] == "open" and found["first_response_at"] is None

    reply = await as_staff.post(
        f"/console/tickets/{ticket}/messages",
        {"kind": "reply", "message": "Fixed it", "status": ""},
        [("attachments", ("fix.txt", b"the fix", "text/plain"))],
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == f"/console/tickets/{ticket}#latest"
    found = await ticket_of(client, ticket)
    assert found["status"] == "replied" and found["first_response_at"] is not None
    messages = (await client.get("/ticket-messages", params={
        "filter[ticket_id]": str(ticket), "sort": "id"})).json()["data"]  # fmt: skip
    assert [(m["attributes"]["message"], m["attributes"]["internal"]) for m in messages] == [
        ("Check the logs", True),
        ("Fixed it", False),
    ]
    portal = await as_customer.get(f"/portal/tickets/{ticket}")
    assert "Fixed it" in portal.text and "fix.txt" in portal.text
    assert "Check the logs" not in portal.text


async def test_send_and_set_status(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer)
    after = await newest_event(client)
    response = await as_staff.post(
        f"/console/tickets/{ticket}/messages",
        {"kind": "reply", "message": "Waiting for the part", "status": "on-hold"},
    )
    assert response.status_code == 303
    assert (await ticket_of(client, ticket))["status"] == "on-hold"
    names = [e["event"] for e in await events_of(client, after)]
    assert names[0] == "ticket_message.created" and "ticket.updated" in names
    assert all(e["actor"] == {"type": "user", "id": me(people)} for e in await events_of(
        client, after))  # fmt: skip


async def test_send_and_set_status_with_a_refused_status_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    """Else the reply would go out and the page say it failed: sent again, it goes twice."""
    ticket = await new_ticket(client, people.customer)
    before = await snapshot(app)
    response = await as_staff.post(
        f"/console/tickets/{ticket}/messages",
        {"kind": "reply", "message": "Waiting for the part", "status": "sleeping"},
    )
    assert response.status_code == 422
    assert ">Waiting for the part</textarea>" in response.text
    assert await snapshot(app) == before


async def test_a_refused_reply_shows_the_page_again_with_the_draft(
    app: FastAPI, client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer)
    before = await snapshot(app)
    too_long = "Dear customer, " + "x" * app.state.settings.max_message_length
    response = await as_staff.post(
        f"/console/tickets/{ticket}/messages", {"kind": "reply", "message": too_long}
    )
    assert response.status_code == 422
    assert too_long in response.text  # in the textarea, to fix and send again
    assert 'role="alert"' in response.text
    blank = await as_staff.post(f"/console/tickets/{ticket}/messages", {"message": "  "})
    assert blank.status_code == 422
    assert await snapshot(app) == before


async def test_a_canned_reply_fills_the_reply_box(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer, "Printer", department="technical")
    made = await client.post("/canned-replies", json={
        "name": "Greeting",
        "body": "Hi {{ customer.first_name }}, about #{{ ticket.id }} ({{ ticket.subject }}). "
                "{{ agent.first_name }}",
    })  # fmt: skip
    assert made.status_code == 201, made.text
    billing = await client.post(
        "/canned-replies", json={"name": "Refunds", "body": "Refund", "department": "billing"}
    )
    assert billing.status_code == 201
    greeting = made.json()["data"]["id"]

    page = await as_staff.get(f"/console/tickets/{ticket}")
    assert f'<option value="{greeting}">Greeting</option>' in page.text
    assert "Refunds" not in page.text  # another department's
    filled = await as_staff.get(f"/console/tickets/{ticket}", params={"canned": greeting})
    assert filled.status_code == 200
    textarea = filled.text.split('name="message"', 1)[1].split("</textarea>", 1)[0]
    assert textarea.endswith(f">Hi Cora, about #{ticket} (Printer). Sam")
    # one deleted meanwhile, or another department's: the page, with why nothing was inserted
    assert (await client.delete(f"/canned-replies/{greeting}")).status_code == 204
    billing_id = billing.json()["data"]["id"]
    for gone, why in ((greeting, "No canned_replies resource"), (billing_id, "billing department")):
        page = await as_staff.get(f"/console/tickets/{ticket}", params={"canned": gone})
        assert page.status_code == 200
        assert "The canned reply could not be inserted:" in page.text and why in page.text


async def test_merge(client: httpx.AsyncClient, as_staff: Browser, people: People) -> None:
    target = await new_ticket(client, people.customer, "Target")
    sources = [await new_ticket(client, people.customer, f"Source {n}") for n in range(2)]
    for source in sources:
        await factories.post_message(client, source, people.customer["id"], f"From {source}")
    response = await as_staff.post(
        f"/console/tickets/{target}/merge", {"source_ids": f"#{sources[0]}, {sources[1]}"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/tickets/{target}"
    page = await as_staff.get(f"/console/tickets/{target}")
    for source in sources:
        assert f"From {source}" in page.text
        merged = await ticket_of(client, source)
        assert merged["status"] == "closed" and merged["merged_into"] == target
        source_page = await as_staff.get(f"/console/tickets/{source}")
        assert f'Merged into <a href="/console/tickets/{target}">' in source_page.text
        assert 'id="reply-form"' not in source_page.text
    bad = await as_staff.post(f"/console/tickets/{target}/merge", {"source_ids": "one, two"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")


async def test_presence_tells_who_else_is_on_the_ticket(
    client: httpx.AsyncClient, browsers: Browsers, as_staff: Browser, people: People
) -> None:
    ticket = await new_ticket(client, people.customer)
    cole = browsers()
    await cole.sign_in(People.email(people.colleague))
    url = f"/console/tickets/{ticket}/presence"

    alone = await as_staff.post(url, {"state": "viewing"})
    assert alone.status_code == 200
    assert alone.text.strip() == ""
    answer = await cole.post(url, {"state": "replying"})
    assert '<li class="presence-viewing">Sam Staff is viewing</li>' in answer.text
    assert "Cole" not in answer.text  # never oneself
    page = await as_staff.get(f"/console/tickets/{ticket}")
    assert "Cole League is replying" in page.text
    elsewhere = await as_staff.get(f"/console/tickets/{await new_ticket(client, people.customer)}")
    assert "Cole League is" not in elsewhere.text

    left = await cole.post(url, {"state": "left"})
    assert left.status_code == 200
    assert "Cole League is" not in (await as_staff.post(url, {"state": "viewing"})).text
    assert (await cole.post(url, {"state": "dancing"})).status_code == 422

    # sending a reply is leaving the box
    await cole.post(url, {"state": "replying"})
    await cole.post(f"/console/tickets/{ticket}/messages", {"message": "Done"})
    assert "Cole League is" not in (await as_staff.post(url, {"state": "viewing"})).text


async def test_presence_on_a_ticket_that_is_gone_is_404(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    """A console page left open on a ticket deleted since keeps saying it is there: that is a
    404 page, not a server error (nor a presence row)."""
    ticket = await new_ticket(client, people.customer)
    assert (await client.delete(f"/tickets/{ticket}")).status_code == 204
    for url in (f"/console/tickets/{ticket}/presence", "/console/tickets/999999/presence"):
        response = await as_staff.post(url, {"state": "viewing"})
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert (await as_staff.post(url, {"state": "left"})).status_code in (200, 404)


async def test_the_search_key_s_focus_parameter_is_the_page_s_own(
    client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    """`/` on a ticket page opens the queue with `?focus=search`: no query parameter, so it is
    neither refused nor carried into the queue's links."""
    for n in range(30):
        await new_ticket(client, people.customer, f"Ticket {n}")
    page = await as_staff.get("/console/", params={"queue": "all", "focus": "search"})
    assert page.status_code == 200
    assert "focus" not in page.text.split("<main", 1)[1]
