"""The request types of the benchmark: what the load generator sends, shared with the baseline
app so that both servers answer exactly the same requests."""

from __future__ import annotations

from dataclasses import dataclass

SEARCH_WORD = "wombat"  # one of supportdesk.seed.RARE_WORDS: about 0.3% of tickets


@dataclass(frozen=True)
class Shape:
    name: str
    method: str
    # path under /api/v1/admin; `{ticket}` is replaced by a random ticket id per request
    path: str
    query: str = ""
    # JSON body; `{ticket}`, `{user}` and `{priority}` are filled in per request
    body: str | None = None
    # extra request headers (name, value)
    headers: tuple[tuple[str, str], ...] = ()


LISTS = {
    "list page 1": "",
    "list page 1000": "page=1000",
    "list status+priority": "filter[status]=open,customer-reply&filter[priority]=high,urgent",
    "list include=user,messages": "include=user,messages",
    "search": f"filter[search]={SEARCH_WORD}",
}

SHAPES = [
    *(Shape(name, "GET", "/tickets", query) for name, query in LISTS.items()),
    Shape("retrieve include=messages", "GET", "/tickets/{ticket}", "include=messages"),
    Shape(
        "create ticket",
        "POST",
        "/tickets",
        body='{"subject": "Benchmark ticket", "user_id": {user}, "priority": "high"}',
    ),
    Shape(
        "create message",
        "POST",
        "/ticket-messages",
        body='{"ticket_id": {ticket}, "user_id": {user}, "message": "A benchmark reply."}',
    ),
    Shape("update ticket", "PATCH", "/tickets/{ticket}", body='{"priority": "{priority}"}'),
]
