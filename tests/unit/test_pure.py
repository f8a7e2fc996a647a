"""Small pure pieces: keys, body field types, timestamps, URLs, the PostgreSQL timestamp codec."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from supportdesk import timestamps
from supportdesk.auth.keys import ApiKey, hash_token, new_token, normalise_permission, parse_network
from supportdesk.db import DatabaseConfigError, DatabaseUrl
from supportdesk.db.postgres import decode_timestamp
from supportdesk.db.url import mask
from supportdesk.errors import ValidationFailed
from supportdesk.jsonapi.body import validate
from supportdesk.tickets.schemas import TicketCreate


def test_tokens_are_random_and_hashed() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 43 + 4
    assert hash_token(token) == hash_token(token) and len(hash_token(token)) == 64
    assert token not in hash_token(token)


def test_permission_names() -> None:
    assert normalise_permission("admin.tickets.view") == "tickets.view"
    assert normalise_permission("*") == "*"
    for action in ("view", "create", "update", "delete"):
        name = f"canned_replies.{action}"
        assert normalise_permission(name) == normalise_permission(f"admin.{name}") == name
    with pytest.raises(ValueError, match="unknown permission"):
        normalise_permission("tickets.impersonate")


def test_key_permissions_and_networks() -> None:
    key = ApiKey(
        1, "k", frozenset({"tickets.view"}), (parse_network("10.0.0.0/8"), parse_network("::1"))
    )
    assert key.allows("tickets.view") and not key.allows("tickets.create")
    assert ApiKey(2, "all", frozenset({"*"}), ()).allows("users.delete")
    assert ApiKey(2, "all", frozenset({"*"}), ()).allows("canned_replies.delete")
    assert key.admits("10.1.2.3") and key.admits("::ffff:10.1.2.3") and key.admits("::1")
    assert not key.admits("11.0.0.1") and not key.admits(None) and not key.admits("garbage")
    assert ApiKey(3, "open", frozenset(), ()).admits(None)


def test_integer_and_string_fields() -> None:
    context = {"statuses": ("open",), "priorities": ("medium",), "departments": ()}
    data = validate(TicketCreate, {"subject": " a ", "user_id": " 7 ", "service_id": None}, context)
    assert (data.subject, data.user_id, data.service_id) == ("a", 7, None)
    with pytest.raises(ValidationFailed) as caught:
        validate(TicketCreate, {"subject": "a", "user_id": False, "assigned_to": 2.0}, context)
    assert set(caught.value.errors) == {"user_id", "assigned_to"}
    assert caught.value.message == "The user id field must be an integer. (and 1 more error)"


def test_models_ignore_unknown_keys() -> None:
    class Small(BaseModel):
        pass

    assert validate(Small, {"anything": 1}).model_dump() == {}


def test_timestamps() -> None:
    assert timestamps.parse("2024-01-15T10:30:00Z") == "2024-01-15T10:30:00.000000Z"
    assert timestamps.parse("2024-01-15 12:30:00.5+02:00") == "2024-01-15T10:30:00.500000Z"
    assert len(timestamps.now()) == 27
    with pytest.raises(ValueError, match="Invalid isoformat"):
        timestamps.parse("15/01/2024")
    # years before 1000 keep four digits (fixed width, ISO 8601), as the fuzz found
    assert timestamps.parse("0133-04-30") == "0133-04-30T00:00:00.000000Z"
    # a moment before year 1 once in UTC is invalid, not an OverflowError (a 500)
    with pytest.raises(ValueError, match="out of range"):
        timestamps.parse("0001-01-01T00:00:00+05:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15 10:30:00+00", "2024-01-15T10:30:00.000000Z"),
        ("2024-01-15 10:30:00.5+00", "2024-01-15T10:30:00.500000Z"),
        ("2024-01-15 10:30:00.123456+00", "2024-01-15T10:30:00.123456Z"),
    ],
)
def test_postgres_timestamp_codec(text: str, expected: str) -> None:
    assert decode_timestamp(text) == expected


def test_database_urls() -> None:
    assert DatabaseUrl.parse("sqlite:///./x.db").sqlite_path == "./x.db"
    url = DatabaseUrl.parse("postgresql://u:secret@h:5432/db")
    assert (
        not url.is_sqlite
        and "secret" not in url.masked
        and url.postgres_dsn().endswith("@h:5432/db")
    )
    for bad in ("mysql://u@h/db", "nonsense", "sqlite://", "postgresql://u@h"):
        with pytest.raises(DatabaseConfigError) as caught:
            DatabaseUrl.parse(bad)
        assert "secret" not in str(caught.value)
    assert mask("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert mask("::not a url::") == "::not a url::"
