from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from supportdesk.tables.base import Timestamp, id_column, metadata

# The event log (SPEC section 9): appended by every write in its own transaction, read by the
# feed, the streams, history and the webhook dispatcher after a cursor (the id).
events = Table(
    "events",
    metadata,
    id_column(),
    Column("event", String(64), nullable=False),
    Column("occurred_at", Timestamp, nullable=False),
    Column("actor_type", String(16), nullable=False),
    Column("actor_id", BigInteger, nullable=True),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", BigInteger, nullable=True),
    # no foreign key: a deleted ticket's events stay in the feed
    Column("ticket_id", BigInteger, nullable=True),
    Column("data", Text, nullable=False),  # JSON
    Column("changes", Text, nullable=True),  # JSON
    Index("ix_events_ticket_id_id", "ticket_id", "id"),
    Index("ix_events_occurred_at", "occurred_at"),
    sqlite_autoincrement=True,
)

# One row per background job (SPEC section 11): who holds it until when, and how it last went.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=True),
    Column("expires_at", Timestamp, nullable=True),
    Column("last_success_at", Timestamp, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", Timestamp, nullable=True),
)
