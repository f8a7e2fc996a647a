"""The `webhooks` and `webhook_deliveries` resource declarations."""

from dataclasses import replace

from supportdesk.jsonapi.spec import ResourceSpec, id_schema, string_schema, timestamp_schema

WEBHOOKS = ResourceSpec(
    type="webhooks",
    attributes={
        "url": {"type": "string", "format": "uri", "maxLength": 2048},
        "events": {
            "type": "array",
            "items": {"type": "string"},
            "description": "`*`, families such as `ticket.*`, or event names",
        },
        "description": string_schema(nullable=True, max_length=255),
        "enabled": {"type": "boolean"},
        "disabled_reason": string_schema(nullable=True),
        "failing_since": timestamp_schema(nullable=True),
        "previous_secret_expires_at": {
            **timestamp_schema(nullable=True),
            "description": "Until then the secret replaced by the last rotation signs too",
        },
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
    },
)

# The answer to a create or a rotation: the only documents that carry the signing secret.
WEBHOOKS_WITH_SECRET = replace(
    WEBHOOKS,
    attributes={
        **WEBHOOKS.attributes,
        "secret": {
            "type": "string",
            "description": "`whsec_` + base64 of 32 random bytes; shown only this once",
        },
    },
)

# One attempt of one event to one endpoint; `pending` ones have not been made yet.
WEBHOOK_DELIVERIES = ResourceSpec(
    type="webhook_deliveries",
    attributes={
        "webhook_id": id_schema(),
        "event_id": id_schema(),
        "event": {"type": "string", "example": "ticket.created"},
        "attempt": {"type": "integer", "minimum": 1},
        "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "status_code": {"type": ["integer", "null"]},
        "duration_ms": {"type": ["integer", "null"]},
        "error": string_schema(nullable=True),
        "next_attempt_at": {
            **timestamp_schema(nullable=True),
            "description": "Pending: when it is due. Failed: when the retry is, null if none",
        },
        "attempted_at": timestamp_schema(nullable=True),
        "created_at": timestamp_schema(),
    },
    sorts=("id",),
)
