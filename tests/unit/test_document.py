"""Document rendering from plain rows."""

from __future__ import annotations

import orjson
from starlette.requests import Request

from supportdesk.jsonapi.document import Related, page_url, render_one, render_page
from supportdesk.queries import ListQuery, ResourceQuery
from supportdesk.ticket_messages.resource import TICKET_MESSAGES
from supportdesk.tickets.resource import TICKETS
from supportdesk.users.resource import USERS

TS = "2024-01-15T10:30:00.000000Z"
TICKET = {
    "id": 1,
    "subject": "Unable to access hosting panel",
    "status": "open",
    "priority": "high",
    "department": "technical",
    "user_id": 1,
    "assigned_to": 5,
    "service_id": None,
    "created_at": TS,
    "updated_at": TS,
    "first_response_at": TS,
    "last_customer_message_at": TS,
    "last_staff_message_at": TS,
    "resolved_at": None,
    "message_count": 1,
    "merged_into": None,
}
USER = {
    "id": 1,
    "first_name": "John",
    "last_name": "Doe",
    "email": "j@example.com",
    "email_verified_at": None,
    "role_id": None,
    "email_notifications": True,
    "created_at": TS,
    "updated_at": TS,
}
MESSAGE = {
    "id": 7,
    "ticket_id": 1,
    "user_id": 1,
    "message": "hi",
    "internal": False,
    "created_at": TS,
    "updated_at": TS,
}


def request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "server": ("h", 443),
            "path": "/api/v1/admin/tickets",
            "query_string": query.encode(),
            "headers": [(b"host", b"h")],
        }
    )


def test_single_resource_matches_the_seed_shape() -> None:
    related = Related(
        many={"messages": {1: [7]}},
        included=[(USERS, USER), (TICKET_MESSAGES, MESSAGE), (USERS, USER)],
    )
    body = orjson.loads(
        render_one(TICKETS, TICKET, related, ResourceQuery(include=("user", "messages"))).body
    )
    assert body["data"] == {
        "type": "tickets",
        "id": "1",
        "attributes": {k: v for k, v in TICKET.items() if k != "id"},
        "relationships": {
            "user": {"data": {"type": "users", "id": "1"}},
            "assigned_to": {"data": {"type": "users", "id": "5"}},
            "messages": {"data": [{"type": "ticket_messages", "id": "7"}]},
        },
    }
    assert [(i["type"], i["id"]) for i in body["included"]] == [
        ("users", "1"),
        ("ticket_messages", "7"),
    ]
    assert "relationships" not in body["included"][0]


def test_to_many_relationship_not_loaded_is_left_out() -> None:
    body = orjson.loads(render_one(TICKETS, TICKET, Related(), ResourceQuery()).body)
    assert set(body["data"]["relationships"]) == {"user", "assigned_to"}
    assert "included" not in body


def test_sparse_fields_cover_attributes_and_relationships() -> None:
    query = ResourceQuery(fields={"tickets": frozenset({"status", "messages"})})
    body = orjson.loads(
        render_one(TICKETS, TICKET, Related(many={"messages": {1: []}}), query).body
    )
    assert body["data"]["attributes"] == {"status": "open"}
    assert body["data"]["relationships"] == {"messages": {"data": []}}


def test_page_meta_and_links() -> None:
    req = request("filter[status]=open&per_page=2&page=2")
    query = ListQuery(page=2, per_page=2)
    body = orjson.loads(
        render_page(TICKETS, [TICKET], 5, Related(many={"messages": {}}), query, req).body
    )
    assert body["meta"] == {
        "current_page": 2,
        "from": 3,
        "to": 3,
        "per_page": 2,
        "path": "https://h/api/v1/admin/tickets",
        "total": 5,
        "last_page": 3,
    }
    assert (
        body["links"]["first"]
        == "https://h/api/v1/admin/tickets?filter%5Bstatus%5D=open&per_page=2&page=1"
    )
    assert body["links"]["prev"].endswith("page=1")
    assert body["links"]["next"].endswith("page=3")
    assert body["links"]["last"].endswith("page=3")


def test_page_url_is_a_valid_uri() -> None:
    assert page_url(request("filter[subject]=a%26b c&include=user,messages"), 4) == (
        "https://h/api/v1/admin/tickets?filter%5Bsubject%5D=a%26b+c&include=user,messages&page=4"
    )


def test_empty_collection() -> None:
    body = orjson.loads(render_page(TICKETS, [], 0, Related(), ListQuery(), request("")).body)
    assert body["data"] == []
    assert (
        body["meta"]["from"] is None
        and body["meta"]["to"] is None
        and body["meta"]["last_page"] == 1
    )
    assert body["links"]["next"] is None and body["links"]["prev"] is None
