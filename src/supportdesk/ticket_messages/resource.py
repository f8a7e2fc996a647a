"""The `ticket_messages` resource declaration."""

from supportdesk.jsonapi.spec import ResourceSpec, id_schema, string_schema, timestamp_schema

TICKET_MESSAGES = ResourceSpec(
    type="ticket_messages",
    attributes={
        "ticket_id": id_schema(),
        "user_id": id_schema(),
        "message": string_schema(),
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
    },
)
