"""The `canned_replies` resource declaration, and `canned_reply_renders` (a filled-in reply)."""

from supportdesk.jsonapi.spec import (
    Filter,
    FilterKind,
    ResourceSpec,
    id_schema,
    string_schema,
    timestamp_schema,
)

CANNED_REPLIES = ResourceSpec(
    type="canned_replies",
    attributes={
        "name": string_schema(max_length=255),
        "body": string_schema(),
        "department": string_schema(nullable=True, max_length=64),
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
    },
    filters=(
        Filter("id", FilterKind.INTS, "canned reply ids"),
        Filter(
            "department",
            FilterKind.STRINGS_OR_NULL,
            "departments; `null` selects the replies for every department",
        ),
        Filter("name", FilterKind.TEXT, "case-insensitive substring of the name"),
    ),
    sorts=("id", "name", "department", "created_at", "updated_at"),
)

# The answer of `POST /canned-replies/{id}/render`; its id is the canned reply's.
CANNED_REPLY_RENDERS = ResourceSpec(
    type="canned_reply_renders",
    attributes={
        "canned_reply_id": id_schema(),
        "ticket_id": id_schema(),
        "agent_id": {
            **id_schema(nullable=True),
            "description": "The staff user whose name filled the agent placeholders, if any",
        },
        "body": {**string_schema(), "description": "The reply with its placeholders filled"},
    },
)
