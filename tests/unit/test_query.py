"""Query parsing is pure: names against whitelists, values into Python values."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from supportdesk.canned_replies.resource import CANNED_REPLIES
from supportdesk.canned_replies.router import SPECS as REPLY_SPECS
from supportdesk.errors import BadQuery, ResourceNotFound, ValidationFailed
from supportdesk.jsonapi.query import parse_id, parse_list_query, parse_resource_query
from supportdesk.queries import ListQuery, SortKey
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.router import SPECS


def parse(**params: str):  # type: ignore[no-untyped-def]
    return parse_list_query(params.items(), TICKETS, SPECS)


def test_defaults() -> None:
    query = parse()
    assert (query.page, query.per_page, query.offset) == (1, 15, 0)
    assert query.filters == {} and query.sort == () and query.include == () and query.fields == {}


def test_filters_parse_values() -> None:
    query = parse(
        **{
            "filter[status]": "open, customer-reply,,open",
            "filter[id]": "3,1,3",
            "filter[assigned_to]": "null",
            "filter[subject]": "  Login, page ",
            "filter[created_after]": "2024-01-15",
            "filter[updated_before]": "2024-01-15T12:00:00+02:00",
        }
    )
    assert query.filters == {
        "status": ("open", "customer-reply"),
        "id": (3, 1),
        "assigned_to": (None,),
        "subject": "Login, page",
        "created_after": "2024-01-15T00:00:00.000000Z",
        "updated_before": "2024-01-15T10:00:00.000000Z",
    }


def test_nullable_string_filters() -> None:
    def department(value: str):  # type: ignore[no-untyped-def]
        query = parse_list_query({"filter[department]": value}.items(), CANNED_REPLIES, REPLY_SPECS)
        return query.filters.get("department")

    assert department("billing, sales,billing") == ("billing", "sales")
    assert department("null") == department("NULL") == department("") == (None,)
    assert department("technical,null, null") == ("technical", None)
    assert department(" , ") is None
    with pytest.raises(BadQuery, match="at most 100"):
        department(",".join(["a"] * 101))


def test_empty_filter_values_are_dropped() -> None:
    assert parse(**{"filter[status]": "", "filter[id]": " , "}).filters == {}
    assert parse(**{"filter[assigned_to]": ""}).filters == {"assigned_to": (None,)}


def test_unknown_names_list_the_allowed_ones() -> None:
    with pytest.raises(
        BadQuery, match=r"`a, b` are not allowed\. Allowed filter\(s\) are `id, user_id"
    ):
        parse(**{"filter[a]": "1", "filter[b]": "2"})


@pytest.mark.parametrize("value", ["0", "-3", "1e3", "٣", "9" * 25, "1;select"])
def test_integer_filters_refuse_non_ids(value: str) -> None:
    with pytest.raises(BadQuery):
        parse(**{"filter[user_id]": value})


def test_sort_keys_and_duplicates() -> None:
    # a key named twice counts once, at its first place, with its last direction
    assert parse(sort="-priority, status,priority").sort == (
        SortKey("priority", False),
        SortKey("status", False),
    )
    assert parse(sort="-priority,status").sort == (
        SortKey("priority", True),
        SortKey("status", False),
    )
    with pytest.raises(BadQuery):
        parse(sort="-")


def test_per_page_is_clamped_and_validated() -> None:
    assert parse(per_page="500").per_page == 100
    assert parse(page="3", per_page="10").offset == 20
    with pytest.raises(ValidationFailed) as caught:
        parse(page="0", per_page="x")
    assert set(caught.value.errors) == {"page", "per_page"}


def test_include_and_fields() -> None:
    query = parse_resource_query(
        [("include", "user,messages,user"), ("fields[users]", "email"), ("fields[tickets]", "")],
        TICKETS,
        SPECS,
    )
    assert query.include == ("user", "messages")
    assert query.fields == {"users": frozenset({"email"}), "tickets": frozenset()}
    with pytest.raises(BadQuery):
        parse_resource_query([("include", "user, ")], TICKETS, SPECS)


def test_other_parameters_are_ignored_but_families_are_checked() -> None:
    assert parse(utm_source="x", force="1").filters == {}
    with pytest.raises(BadQuery):
        parse(**{"fields": "subject"})


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("9223372036854775807", 2**63 - 1)])
def test_parse_id(text: str, expected: int) -> None:
    assert parse_id(text, "tickets") == expected


@pytest.mark.parametrize("text", ["0", "abc", "1abc", "9223372036854775808", "١", " 1", ""])
def test_parse_id_refuses(text: str) -> None:
    with pytest.raises(ResourceNotFound):
        parse_id(text, "tickets")


def _request(query: bytes) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": query}
    )


def test_parsed_queries_are_kept_per_parser_and_spec() -> None:
    """`jsonapi.requests` keeps parsed queries by raw query string: the same string parsed for
    another resource type or by the other parser is parsed again, and a query that fails to
    parse fails every time."""
    from supportdesk.jsonapi import requests
    from supportdesk.jsonapi.requests import _parsed
    from supportdesk.users.resource import USERS
    from supportdesk.users.router import SPECS as USER_SPECS

    requests._PARSED.clear()
    first = _parsed(_request(b"include=messages"), parse_resource_query, TICKETS, SPECS)
    assert first.include == ("messages",)
    assert _parsed(_request(b"include=messages"), parse_resource_query, TICKETS, SPECS) is first
    listed = _parsed(_request(b"include=messages"), parse_list_query, TICKETS, SPECS)
    assert isinstance(listed, ListQuery) and listed is not first
    for _ in range(2):
        with pytest.raises(BadQuery, match="not allowed"):
            _parsed(_request(b"include=messages"), parse_resource_query, USERS, USER_SPECS)
    assert len(requests._PARSED) == 2
    # full: cleared, then kept again
    for i in range(requests.PARSED_KEPT):
        _parsed(_request(f"page={i + 1}".encode()), parse_list_query, TICKETS, SPECS)
    assert len(requests._PARSED) <= requests.PARSED_KEPT
