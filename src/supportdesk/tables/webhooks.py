from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from supportdesk.tables.base import Id, Timestamp, id_column, metadata, timestamp_columns

# Webhook endpoints (SPEC section 10).
webhooks = Table(
    "webhooks",
    metadata,
    id_column(),
    Column("url", String(2048), nullable=False),
    Column("events", Text, nullable=False),  # JSON array of patterns: `ticket.*`, `user.created`
    Column("description", String(255), nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    # `whsec_` + base64 of 32 random bytes; after a rotation the previous one signs too until
    # it expires
    Column("secret", String(64), nullable=False),
    Column("previous_secret", String(64), nullable=True),
    Column("previous_secret_expires_at", Timestamp, nullable=True),
    Column("disabled_reason", String(255), nullable=True),
    # the first failed attempt since the last success: five days of failures disable it
    Column("failing_since", Timestamp, nullable=True),
    # The fan-out's cursor: the newest event offered to this endpoint. Set to the newest event
    # when the endpoint is created or enabled, so it receives only later ones.
    Column("event_cursor", BigInteger, nullable=False),
    # When its oldest pending delivery is due; NULL when nothing is, or while disabled. The
    # dispatcher claims endpoints through this index, never scanning deliveries.
    Column("next_attempt_at", Timestamp, nullable=True),
    *timestamp_columns(),
    Index("ix_webhooks_next_attempt_at", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# The delivery log: one row per attempt of one event to one endpoint. The fan-out adds attempt 1
# as `pending`; an attempt ends `delivered` or `failed`, and a failure with a retry left adds the
# next attempt as `pending` (its due time also stays on the failed row as `next_attempt_at`).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    id_column(),
    Column("webhook_id", Id, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    # pruning an event takes its deliveries along
    Column("event_id", Id, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("attempted_at", Timestamp, nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("webhook_id", "event_id", "attempt"),
    # an endpoint's queue in event order: its head is the first `pending` entry
    Index("ix_webhook_deliveries_webhook_id_state_event_id", "webhook_id", "state", "event_id"),
    # the delivery log, newest first
    Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    Index("ix_webhook_deliveries_event_id", "event_id"),
    sqlite_autoincrement=True,
)
