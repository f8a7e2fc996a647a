"""Property tests: whatever the query string, the parser returns a query or raises one of
the API's own 400/422 errors, never anything else."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.canned_replies.resource import CANNED_REPLIES
from supportdesk.canned_replies.router import SPECS as REPLY_SPECS
from supportdesk.errors import BadQuery, ResourceNotFound, ValidationFailed
from supportdesk.jsonapi.query import MAX_PER_PAGE, parse_id, parse_list_query, parse_resource_query
from supportdesk.ticket_messages.resource import TICKET_MESSAGES
from supportdesk.ticket_messages.router import SPECS as MESSAGE_SPECS
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.router import SPECS as TICKET_SPECS
from supportdesk.users.resource import USERS
from supportdesk.users.router import SPECS as USER_SPECS

RESOURCES = [
    (TICKETS, TICKET_SPECS),
    (USERS, USER_SPECS),
    (TICKET_MESSAGES, MESSAGE_SPECS),
    (CANNED_REPLIES, REPLY_SPECS),
]

texts = st.text(max_size=40)
known = st.sampled_from(
    [
        "filter[id]",
        "filter[status]",
        "filter[user_id]",
        "filter[assigned_to]",
        "filter[subject]",
        "filter[search]",
        "filter[created_after]",
        "filter[email]",
        "filter[role_id]",
        "filter[ticket_id]",
        "filter[department]",
        "filter[name]",
        "sort",
        "include",
        "page",
        "per_page",
        "fields[tickets]",
        "fields[users]",
        "fields[ticket_messages]",
        "fields[canned_replies]",
    ]
)
names = st.one_of(
    known, texts, texts.map(lambda t: f"filter[{t}]"), texts.map(lambda t: f"fields[{t}]")
)
values = st.one_of(
    texts,
    st.integers().map(str),
    st.lists(
        st.sampled_from(["id", "-id", "status", "priority", "user", "messages", "null", "", " "]),
        max_size=5,
    ).map(",".join),
)
pairs = st.lists(st.tuples(names, values), max_size=8)


@settings(max_examples=400, deadline=None)
@given(pairs, st.sampled_from(RESOURCES))
def test_list_queries_parse_or_fail_cleanly(query: list[tuple[str, str]], resource: tuple) -> None:  # type: ignore[type-arg]
    spec, specs = resource
    try:
        parsed = parse_list_query(query, spec, specs)
    except (BadQuery, ValidationFailed):
        return
    assert parsed.page >= 1 and 1 <= parsed.per_page <= MAX_PER_PAGE
    assert set(parsed.filters) <= {f.name for f in spec.filters}
    assert {key.name for key in parsed.sort} <= set(spec.sorts)
    assert set(parsed.include) <= set(spec.includes)
    assert set(parsed.fields) <= set(specs)


@settings(max_examples=200, deadline=None)
@given(pairs)
def test_resource_queries_parse_or_fail_cleanly(query: list[tuple[str, str]]) -> None:
    with contextlib.suppress(BadQuery, ValidationFailed):
        parse_resource_query(query, TICKETS, TICKET_SPECS)


@given(st.text(max_size=30))
def test_ids_parse_or_are_not_found(text: str) -> None:
    try:
        value = parse_id(text, "tickets")
    except ResourceNotFound:
        return
    assert 1 <= value < 2**63 and str(value) == text
