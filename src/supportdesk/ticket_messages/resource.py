"""The `ticket_messages` resource declaration."""

from supportdesk.jsonapi.spec import (
    Filter,
    FilterKind,
    Relationship,
    ResourceSpec,
    boolean_schema,
    id_schema,
    string_schema,
    timestamp_schema,
)

TICKET_MESSAGES = ResourceSpec(
    type="ticket_messages",
    attributes={
        "ticket_id": id_schema(),
        "user_id": id_schema(),
        "message": string_schema(),
        "internal": boolean_schema(),
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
    },
    relationships=(
        Relationship("ticket", "tickets", many=False, key="ticket_id", permission="tickets.view"),
        Relationship("user", "users", many=False, key="user_id", permission="users.view"),
        Relationship(
            "attachments",
            "ticket_attachments",
            many=True,
            key=None,
            permission="ticket_messages.view",
        ),
    ),
    filters=(
        Filter("id", FilterKind.INTS, "message ids"),
        Filter("ticket_id", FilterKind.INTS, "ticket ids"),
        Filter("user_id", FilterKind.INTS, "author ids"),
        Filter("internal", FilterKind.BOOLEAN, "internal notes (`true`) or public messages"),
        Filter("created_after", FilterKind.TIMESTAMP, "created at or after this moment"),
        Filter("created_before", FilterKind.TIMESTAMP, "created before this moment"),
    ),
    sorts=("id", "created_at", "updated_at"),
    includes=("user", "ticket", "attachments"),
)
