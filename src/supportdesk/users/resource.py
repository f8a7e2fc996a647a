"""The `users` and `roles` resource declarations."""

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

USERS = ResourceSpec(
    type="users",
    attributes={
        "first_name": string_schema(nullable=True, max_length=255),
        "last_name": string_schema(nullable=True, max_length=255),
        "email": {"type": "string", "format": "email", "maxLength": 255},
        "email_verified_at": timestamp_schema(nullable=True),
        "role_id": id_schema(nullable=True),
        "email_notifications": boolean_schema(),
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
    },
    relationships=(
        Relationship("tickets", "tickets", many=True, key=None, permission="tickets.view"),
        Relationship("role", "roles", many=False, key="role_id", permission="users.view"),
    ),
    filters=(
        Filter("id", FilterKind.INTS, "user ids"),
        Filter("email", FilterKind.STRINGS, "exact email addresses, case-insensitive"),
        Filter("first_name", FilterKind.STRINGS, "exact first names"),
        Filter("last_name", FilterKind.STRINGS, "exact last names"),
        Filter("role_id", FilterKind.INTS_OR_NULL, "role ids; `null` selects customers"),
    ),
    sorts=("id", "email", "first_name", "last_name", "created_at"),
    includes=("tickets", "role"),
)

ROLES = ResourceSpec(
    type="roles",
    attributes={
        "name": string_schema(),
        "created_at": timestamp_schema(),
        "updated_at": timestamp_schema(),
    },
)
