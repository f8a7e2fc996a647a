"""The `ticket_attachments` resource declaration."""

from supportdesk.jsonapi.spec import ResourceSpec, id_schema, string_schema, timestamp_schema

TICKET_ATTACHMENTS = ResourceSpec(
    type="ticket_attachments",
    attributes={
        "filename": string_schema(max_length=255),
        "mime_type": string_schema(),
        "filesize": {"type": "integer", "minimum": 0},
        "message_id": id_schema(),
        "created_at": timestamp_schema(),
    },
)
