"""The `tickets` resource declaration: attributes, relationships and the query whitelists."""

from supportdesk.jsonapi.spec import (
    Filter,
    FilterKind,
    Relationship,
    ResourceSpec,
    count_schema,
    id_schema,
    string_schema,
    timestamp_schema,
)
from supportdesk.tables.tickets import METRIC_TIMESTAMPS

TICKETS = ResourceSpec(
    type="tickets",
    attributes={
        "subject": string_schema(max_length=255),
        "status": string_schema(),
        "priority": string_schema(),
        "department": string_schema(nullable=True),
        "user_id": id_schema(),
        "assigned_to": id_schema(nullable=True),
        "service_id": id_schema(nullable=True),
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
        # SPEC 12: the metrics, read-only, kept by every write path
        **{name: timestamp_schema(nullable=True) for name in METRIC_TIMESTAMPS},
        "message_count": count_schema(),
        # set when this ticket was merged into another (and closed)
        "merged_into": id_schema(nullable=True),
    },
    relationships=(
        Relationship("user", "users", many=False, key="user_id", permission="users.view"),
        Relationship(
            "assigned_to", "users", many=False, key="assigned_to", permission="users.view"
        ),
        Relationship(
            "messages", "ticket_messages", many=True, key=None, permission="ticket_messages.view"
        ),
    ),
    filters=(
        Filter("id", FilterKind.INTS, "ticket ids"),
        Filter("user_id", FilterKind.INTS, "ids of the customers who opened the tickets"),
        Filter("status", FilterKind.STRINGS, "statuses"),
        Filter("priority", FilterKind.STRINGS, "priorities"),
        Filter("department", FilterKind.STRINGS, "departments"),
        Filter("assigned_to", FilterKind.INTS_OR_NULL, "staff user ids; `null` selects unassigned"),
        Filter("service_id", FilterKind.INTS, "service ids"),
        Filter("subject", FilterKind.TEXT, "case-insensitive substring of the subject"),
        Filter(
            "search",
            FilterKind.TEXT,
            "words that must all appear in the subject or in one message (full-text)",
        ),
        Filter("created_after", FilterKind.TIMESTAMP, "created at or after this moment"),
        Filter("created_before", FilterKind.TIMESTAMP, "created before this moment"),
        Filter("updated_after", FilterKind.TIMESTAMP, "updated at or after this moment"),
        Filter("updated_before", FilterKind.TIMESTAMP, "updated before this moment"),
        Filter(
            "first_response_at",
            FilterKind.PRESENCE,
            "`null`: never answered by staff (no public staff message yet)",
        ),
        Filter(
            "merged_into",
            FilterKind.INTS_OR_NULL,
            "the tickets merged into these; `null`: not merged",
        ),
    ),
    sorts=(
        "id",
        "created_at",
        "updated_at",
        "status",
        "priority",
        "department",
        "subject",
        *METRIC_TIMESTAMPS,
        "message_count",
    ),
    includes=("messages", "user", "assigned_to"),
    derived=frozenset({*METRIC_TIMESTAMPS, "message_count"}),
)
