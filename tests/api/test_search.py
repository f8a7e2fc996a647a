"""filter[search]: words in subjects and message bodies through the full-text index."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite

from supportdesk.db import listing
from supportdesk.db.fulltext import TicketSearch, search_query
from supportdesk.db.sqlite import SQLiteDatabase
from supportdesk.tables import tickets
from tests import factories


async def found(client: httpx.AsyncClient, words: str, **params: str) -> list[str]:
    response = await client.get("/tickets", params={"filter[search]": words, **params})
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["data"]]


@pytest.fixture
async def corpus(client: httpx.AsyncClient) -> dict[str, str]:
    owner = await factories.user(client)
    agent = await factories.staff(client)
    panel = await factories.ticket(
        client, owner["id"], subject="Unable to access hosting panel", priority="high"
    )
    billing = await factories.ticket(
        client, owner["id"], subject="Billing question", priority="low"
    )
    dns = await factories.ticket(client, agent["id"], subject="DNS records", priority="urgent")
    await factories.post_message(
        client, billing["id"], owner["id"], "My invoice shows the wrong VAT number."
    )
    await factories.post_message(
        client, dns["id"], agent["id"], "The nameserver for the panel changed."
    )
    return {"panel": panel["id"], "billing": billing["id"], "dns": dns["id"], "owner": owner["id"]}


async def test_subject_and_message_words(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert await found(client, "hosting") == [corpus["panel"]]
    assert await found(client, "INVOICE") == [corpus["billing"]]
    assert await found(client, "vat invoice") == [corpus["billing"]]
    assert await found(client, "panel") == [corpus["panel"], corpus["dns"]]
    assert await found(client, "invoice hosting") == []
    assert await found(client, "inv") == []


async def test_combined_with_filters_and_sorts(
    client: httpx.AsyncClient, corpus: dict[str, str]
) -> None:
    assert await found(client, "panel", sort="-priority") == [corpus["dns"], corpus["panel"]]
    assert await found(client, "panel", **{"filter[user_id]": corpus["owner"]}) == [corpus["panel"]]
    assert await found(client, "panel", **{"filter[priority]": "urgent"}) == [corpus["dns"]]
    response = await client.get("/tickets", params={"filter[search]": "panel", "per_page": "1"})
    assert response.json()["meta"]["total"] == 2


async def test_prefetched_matches_answer_as_the_full_statements(
    app: FastAPI,
    client: httpx.AsyncClient,
    corpus: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL a search with few matches is answered from its matches found once
    (`FullText.prefetch`); one with more than PREFETCH_LIMIT by the page and count statements
    alone. Both give the same documents, totals and pages."""
    queries = [
        {"filter[search]": "panel"},
        {"filter[search]": "panel", "per_page": "1", "page": "2", "sort": "-priority"},
        {"filter[search]": "panel", "filter[priority]": "urgent"},
        {"filter[search]": "panel", "page": "3", "per_page": "1"},
        {"filter[search]": "nothing-matches-this"},
        {"filter[search]": "..."},
    ]

    found: list[list[int] | None] = []
    prefetch = listing.FullText.prefetch

    async def recorded(self: listing.FullText, *args: Any) -> list[int] | None:
        found.append(await prefetch(self, *args))
        return found[-1]

    monkeypatch.setattr(listing.FullText, "prefetch", recorded)

    async def answers() -> list[object]:
        found.clear()
        return [(await client.get("/tickets", params=q)).json() for q in queries]

    prefetched = await answers()
    assert [d["meta"]["total"] for d in prefetched] == [2, 2, 1, 2, 0, 0]
    if app.state.db.dialect == "postgresql":
        assert [len(ids) if ids is not None else None for ids in found] == [2, 2, 2, 2, 0, None]
    else:
        assert found == [None] * 6
    monkeypatch.setattr(listing, "PREFETCH_LIMIT", 1)  # "panel" has 2 matches: not prefetched
    assert await answers() == prefetched
    assert [ids for ids in found if ids] == []


@pytest.mark.parametrize("words", ['"', "*", "NEAR(", "a:b", "-x", "' OR 1=1 --", "panel)", "^"])
async def test_query_syntax_cannot_break_out(
    client: httpx.AsyncClient, corpus: dict[str, str], words: str
) -> None:
    response = await client.get("/tickets", params={"filter[search]": words})
    assert response.status_code == 200


async def test_punctuation_only_finds_nothing(
    client: httpx.AsyncClient, corpus: dict[str, str]
) -> None:
    assert await found(client, "!!! ???") == []
    assert len(await found(client, "")) == 3


async def test_index_follows_inserts_updates_and_deletes(
    client: httpx.AsyncClient, corpus: dict[str, str]
) -> None:
    message = await factories.post_message(client, corpus["panel"], corpus["owner"], "kangaroo")
    assert await found(client, "kangaroo") == [corpus["panel"]]
    await client.patch(f"/ticket-messages/{message['id']}", json={"message": "wombat"})
    assert await found(client, "kangaroo") == []
    assert await found(client, "wombat") == [corpus["panel"]]
    await client.delete(f"/ticket-messages/{message['id']}")
    assert await found(client, "wombat") == []
    await client.patch(f"/tickets/{corpus['billing']}", json={"subject": "Refund request"})
    assert await found(client, "billing") == []
    assert await found(client, "refund") == [corpus["billing"]]
    assert await found(client, "vat") == [corpus["billing"]]
    await client.delete(f"/tickets/{corpus['billing']}")
    assert await found(client, "vat") == []
    assert await found(client, "refund") == []


def test_search_query_quotes_every_word() -> None:
    assert search_query('say "hi", to-day') == '"say" "hi" "to" "day"'
    assert search_query("...") is None
    assert search_query("é ü 日本") == '"é" "ü" "日本"'


async def test_query_plan_uses_the_full_text_index(app: FastAPI, corpus: dict[str, str]) -> None:
    statement = select(tickets.c.id).where(TicketSearch(tickets.c.id, "q"))
    db = app.state.db
    async with db.read() as conn:
        if isinstance(db, SQLiteDatabase):
            sql = str(statement.compile(dialect=sqlite.dialect(paramstyle="named")))
            rows = await conn.fetch_all(text(f"EXPLAIN QUERY PLAN {sql}"), {"q": '"panel"'})
            plan = " | ".join(str(row["detail"]) for row in rows)
            assert "tickets_fts VIRTUAL TABLE INDEX" in plan, plan
            assert "ticket_messages_fts VIRTUAL TABLE INDEX" in plan, plan
        else:
            # tiny tables: make the planner show that it can use the indexes at all
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            sql = str(statement.compile(dialect=postgresql.dialect()))
            rows = await conn.fetch_all(
                text(f"EXPLAIN {sql.replace('%(q)s', ':q')}"), {"q": "panel"}
            )
            plan = " | ".join(str(row["QUERY PLAN"]) for row in rows)
            assert "ix_tickets_subject_search" in plan, plan
            assert "ix_ticket_messages_message_search" in plan, plan
