"""The customer portal through its forms (SPEC 14): open a ticket with a message and files in
one transaction, read it, reply, close; a refused form comes back with what was typed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests import factories
from tests.web.browser import Browser, snapshot
from tests.web.conftest import MAX_ATTACHMENT, People


async def ticket_of(client: httpx.AsyncClient, ticket_id: int) -> dict[str, Any]:
    response = await client.get(f"/tickets/{ticket_id}", params={"include": "messages"})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def stored_files(app: FastAPI) -> list[Path]:
    root = Path(app.state.settings.storage_dir)
    return sorted(p for folder in ("files", "pending") for p in (root / folder).rglob("*")
                  if p.is_file())  # fmt: skip


async def test_a_customer_opens_a_ticket_with_a_message_and_a_file(
    app: FastAPI, client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    form = await as_customer.get("/portal/tickets/new")
    assert form.status_code == 200
    assert '<select id="department" name="department">' in form.text
    response = await as_customer.post(
        "/portal/tickets/new",
        {"subject": "Printer on fire", "department": "technical", "message": "  Smoke!  "},
        [("attachments", ("smoke.png", b"\x89PNG....", "image/png"))],
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/portal/tickets/(\d+)", response.headers["location"])
    assert found is not None
    ticket_id = int(found.group(1))

    document = await ticket_of(client, ticket_id)
    ticket = document["data"]["attributes"]
    # the message a ticket opens with leaves it open; later ones move it (SPEC 6)
    assert (ticket["subject"], ticket["department"], ticket["user_id"], ticket["status"]) == (
        "Printer on fire", "technical", int(people.customer["id"]), "open",
    )  # fmt: skip
    (message,) = document["included"]
    assert message["attributes"]["message"] == "Smoke!"
    assert len(stored_files(app)) == 1

    page = await as_customer.get(f"/portal/tickets/{ticket_id}")
    assert "Smoke!" in page.text and "smoke.png" in page.text
    listing = await as_customer.get("/portal/")
    assert f'<a href="/portal/tickets/{ticket_id}" class="subject">Printer on fire</a>' in (
        listing.text
    )
    events = (await client.get("/events", params={"filter[ticket_id]": str(ticket_id)})).json()
    actors = {(e["attributes"]["event"], str(e["attributes"]["actor"])) for e in events["data"]}
    customer = {"type": "user", "id": int(people.customer["id"])}
    assert ("ticket.created", str(customer)) in actors
    assert ("ticket_message.created", str(customer)) in actors


async def test_a_file_too_large_leaves_no_ticket_behind(app: FastAPI, as_customer: Browser) -> None:
    before = await snapshot(app)
    response = await as_customer.post(
        "/portal/tickets/new",
        {"subject": "Big file", "message": "See the file"},
        [
            ("attachments", ("small.txt", b"fine", "text/plain")),
            ("attachments", ("big.bin", b"x" * (MAX_ATTACHMENT + 1), "application/pdf")),
        ],
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "big.bin" in response.text
    assert await snapshot(app) == before
    assert stored_files(app) == []


async def test_a_refused_new_ticket_keeps_what_was_typed(
    app: FastAPI, as_customer: Browser
) -> None:
    before = await snapshot(app)
    no_subject = await as_customer.post(
        "/portal/tickets/new",
        {"subject": " ", "department": "billing", "message": "My long story"},
    )
    assert no_subject.status_code == 422
    assert 'aria-invalid="true" aria-describedby="subject-error"' in no_subject.text
    assert ">My long story</textarea>" in no_subject.text
    assert "<option selected>billing</option>" in no_subject.text
    no_message = await as_customer.post("/portal/tickets/new", {"subject": "Help", "message": ""})
    assert no_message.status_code == 422
    assert 'value="Help"' in no_message.text
    assert "Write what you need help with." in no_message.text
    bad_department = await as_customer.post(
        "/portal/tickets/new", {"subject": "Help", "department": "nope", "message": "x"}
    )
    assert bad_department.status_code == 422
    assert await snapshot(app) == before


async def test_a_customer_replies_and_closes(
    client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    ticket = await factories.ticket(client, people.customer["id"], subject="VPN")
    ticket_id = int(ticket["id"])
    await factories.post_message(client, ticket_id, people.staff["id"], "Try again")
    page = await as_customer.get(f"/portal/tickets/{ticket_id}")
    assert '<label for="reply">Reply</label>' in page.text
    assert '<button type="submit" class="primary">Send</button>' in page.text
    assert "Try again" in page.text

    reply = await as_customer.post(
        f"/portal/tickets/{ticket_id}/messages",
        {"message": "Still broken", "internal": "1"},
        [("attachments", ("log.txt", b"error 42", "text/plain"))],
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == f"/portal/tickets/{ticket_id}#latest"
    document = await ticket_of(client, ticket_id)
    assert document["data"]["attributes"]["status"] == "customer-reply"
    last = document["included"][-1]["attributes"]
    assert (last["message"], last["internal"]) == ("Still broken", False)  # never a note

    closed = await as_customer.post(f"/portal/tickets/{ticket_id}/close")
    assert closed.status_code == 303
    assert (await ticket_of(client, ticket_id))["data"]["attributes"]["status"] == "closed"
    page = await as_customer.get(f"/portal/tickets/{ticket_id}")
    assert 'id="close-form"' not in page.text
    # a reply reopens it, by the workflow
    await as_customer.post(f"/portal/tickets/{ticket_id}/messages", {"message": "Again"})
    assert (await ticket_of(client, ticket_id))["data"]["attributes"]["status"] == (
        "customer-reply"
    )


async def test_a_refused_reply_keeps_the_draft(
    app: FastAPI, client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    ticket = await factories.ticket(client, people.customer["id"])
    before = await snapshot(app)
    draft = "Here is everything: " + "y" * app.state.settings.max_message_length
    url = f"/portal/tickets/{ticket['id']}/messages"
    response = await as_customer.post(url, {"message": draft})
    assert response.status_code == 422
    assert f">{draft}</textarea>" in response.text
    assert 'role="alert"' in response.text
    assert await snapshot(app) == before


async def test_my_tickets_pages(
    client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    for n in range(27):
        await factories.ticket(client, people.customer["id"], subject=f"Mine {n}")
    await factories.ticket(client, people.stranger["id"], subject="Not mine")
    first = await as_customer.get("/portal/")
    assert first.text.count('class="subject"') == 25
    assert "Page 1 of 2" in first.text and "Not mine" not in first.text
    assert "Mine 26" in first.text  # the newest first
    second = await as_customer.get("/portal/", params={"page": "2"})
    assert second.text.count('class="subject"') == 2
    assert "Mine 0<" in second.text
    assert (await as_customer.get("/portal/", params={"page": "junk"})).status_code == 200
