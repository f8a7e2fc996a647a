from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from supportdesk.tables.base import Id, Timestamp, metadata

# Idempotency keys (SPEC section 12): one row per (API key, Idempotency-Key) for 24 hours.
# `status_code` NULL means the first request is still in flight; once it has answered, the
# row holds the answer to replay.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column(
        "api_key_id",
        Id,
        ForeignKey("api_keys.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(255), primary_key=True),
    # SHA-256 hex of the request (method, path, query, content type, body)
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("headers", Text, nullable=True),  # JSON object of the headers replayed
    Column("body", LargeBinary, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)
