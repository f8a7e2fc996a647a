"""The `events` resource declaration: history pages and the feed render it."""

from dataclasses import replace

from supportdesk.jsonapi.spec import Filter, FilterKind, ResourceSpec, id_schema, timestamp_schema

_REFERENCE = {
    "type": "object",
    "required": ["type", "id"],
    "properties": {"type": {"type": "string"}, "id": {"type": ["integer", "null"]}},
}

EVENTS = ResourceSpec(
    type="events",
    attributes={
        "event": {"type": "string", "example": "ticket.updated"},
        "occurred_at": timestamp_schema(),
        "actor": {
            **_REFERENCE,
            "description": "api_key, user, system or email, with its id where there is one",
        },
        "resource": _REFERENCE,
        "ticket_id": id_schema(nullable=True),
        "data": {
            "type": "object",
            "description": "The resource's attributes after the change (before it, for a delete)",
        },
        "changes": {
            "type": ["object", "null"],
            "description": "For updates: {attribute: [before, after]} of what changed",
            "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2},
        },
    },
    sorts=("id",),
)

# The feed's filters (`GET /events`, `/events/stream`).
FEED = replace(
    EVENTS,
    filters=(
        Filter(
            "event",
            FilterKind.STRINGS,
            "event names, `family.*` prefixes (ticket.*, ticket_message.*, ...) or `*`",
        ),
        Filter("ticket_id", FilterKind.INTS, "ticket ids"),
    ),
)
