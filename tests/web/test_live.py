"""The live pages' event streams (SPEC 14): `text/event-stream` of `event: change` frames (an
event's id, name and ticket, no content) for the tickets the visitor may see: a customer's
stream never carries another customer's tickets."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from tests import factories
from tests.web.browser import Browser, LiveStream
from tests.web.conftest import People


def about(ticket_id: int) -> Callable[[dict[str, str]], bool]:
    """A frame test: a change of this ticket."""

    def test(frame: dict[str, str]) -> bool:
        return frame.get("event") == "change" and json.loads(frame["data"])["ticket_id"] == (
            ticket_id
        )

    return test


def tickets_in(frames: list[dict[str, str]]) -> set[int]:
    return {json.loads(f["data"])["ticket_id"] for f in frames if f.get("event") == "change"}


async def opened(stream: LiveStream) -> None:
    """The stream's first frame (its `retry`): from here on, it sees every new event."""
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["content-security-policy"].startswith("default-src 'self'")
    assert stream.headers["x-content-type-options"] == "nosniff"
    first = await stream.frames(lambda frame: "retry" in frame, within=5)
    assert tickets_in(first) == set()


async def test_a_customers_stream_carries_their_ticket_and_nothing_of_others(
    app: FastAPI, client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    mine = int((await factories.ticket(client, people.customer["id"]))["id"])
    other_mine = int((await factories.ticket(client, people.customer["id"]))["id"])
    theirs = int((await factories.ticket(client, people.stranger["id"]))["id"])

    async with LiveStream(app, as_customer, f"/portal/live?ticket={mine}") as one:
        await opened(one)
        async with LiveStream(app, as_customer, "/portal/live") as every:
            await opened(every)
            await factories.post_message(client, theirs, people.stranger["id"], "Secret")
            await factories.post_message(client, other_mine, people.customer["id"], "Other")
            await factories.post_message(client, mine, people.staff["id"], "Hi")
            frames = await one.frames(about(mine))
            assert tickets_in(frames) == {mine}
            (change,) = [f for f in frames if f.get("event") == "change"][:1]
            data = json.loads(change["data"])
            assert data["event"] == "ticket_message.created"
            assert change["id"] == str(data["id"])
            assert set(data) == {"id", "event", "ticket_id"}  # no content, only the change
            seen = await every.frames(about(mine))
            assert tickets_in(seen) == {other_mine, mine}


async def test_a_customer_resuming_from_the_start_hears_only_of_their_tickets(
    app: FastAPI, client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    """`Last-Event-ID` (an EventSource reconnecting) replays the log from there: through the
    same selection, so an early id is no way to read the whole history."""
    theirs = int((await factories.ticket(client, people.stranger["id"]))["id"])
    await factories.post_message(client, theirs, people.stranger["id"], "Secret")
    mine = int((await factories.ticket(client, people.customer["id"]))["id"])
    await factories.post_message(client, mine, people.customer["id"], "Mine")
    async with LiveStream(app, as_customer, "/portal/live", {"Last-Event-ID": "0"}) as stream:
        assert stream.status == 200
        frames = await stream.frames(
            lambda frame: (
                frame.get("event") == "change"
                and json.loads(frame["data"])["event"] == "ticket_message.created"
            )
        )
        assert tickets_in(frames) == {mine}


async def test_a_customer_without_tickets_hears_of_nobody_elses(
    app: FastAPI, client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    theirs = int((await factories.ticket(client, people.stranger["id"]))["id"])
    async with LiveStream(app, as_customer, "/portal/live") as stream:
        await opened(stream)
        await factories.post_message(client, theirs, people.stranger["id"], "Secret")
        mine = int((await factories.ticket(client, people.customer["id"]))["id"])
        # nothing of the stranger's message; the ticket they opened meanwhile is followed
        body = await stream.body(within=1.0)
        assert f'"ticket_id":{theirs}'.encode() not in body, body
        assert f'"ticket_id":{mine}'.encode() in body, body


async def test_the_consoles_stream_follows_one_ticket_or_all(
    app: FastAPI, client: httpx.AsyncClient, as_staff: Browser, people: People
) -> None:
    first = int((await factories.ticket(client, people.customer["id"]))["id"])
    second = int((await factories.ticket(client, people.stranger["id"]))["id"])
    async with (
        LiveStream(app, as_staff, f"/console/live?ticket={second}") as one,
        LiveStream(app, as_staff, "/console/live") as every,
    ):
        await opened(one)
        await opened(every)
        await factories.post_message(client, first, people.customer["id"], "One")
        response = await client.patch(f"/tickets/{second}", json={"priority": "high"})
        assert response.status_code == 200
        frames = await one.frames(about(second))
        assert tickets_in(frames) == {second}
        assert json.loads(frames[-1]["data"])["event"] == "ticket.updated"
        assert tickets_in(await every.frames(about(second))) == {first, second}


async def test_the_streams_are_for_signed_in_visitors_of_their_side(
    app: FastAPI, client: httpx.AsyncClient, as_staff: Browser, as_customer: Browser,
    people: People,
) -> None:  # fmt: skip
    ticket = int((await factories.ticket(client, people.stranger["id"]))["id"])
    for browser, url, status in (
        (as_customer, "/console/live", 403),
        (as_staff, "/portal/live", 403),
        (as_customer, f"/portal/live?ticket={ticket}", 404),
    ):
        async with LiveStream(app, browser, url) as stream:
            assert stream.status == status, url
            assert stream.headers["content-type"].startswith("text/html"), url
            await stream.body()
            assert stream.ended


async def test_a_customers_stream_says_nothing_of_internal_notes(
    app: FastAPI, client: httpx.AsyncClient, as_customer: Browser, people: People
) -> None:
    """Not even that a note was written, nor when: a note is staff's alone (SPEC 12)."""
    mine = int((await factories.ticket(client, people.customer["id"]))["id"])
    async with LiveStream(app, as_customer, f"/portal/live?ticket={mine}") as stream:
        await opened(stream)
        note = await client.post(
            "/ticket-messages",
            json={"ticket_id": mine, "user_id": people.staff["id"], "message": "Hush",
                  "internal": True},
        )  # fmt: skip
        assert note.status_code == 201, note.text
        await factories.post_message(client, mine, people.staff["id"], "Public")
        body = await stream.body(within=1.0)
        # the public reply's message and its status move; nothing of the note
        assert body.count(b'"event":"ticket_message.created"') == 1, body
        assert body.count(b'"event":"ticket.updated"') == 1, body
