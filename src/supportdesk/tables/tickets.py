from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    text,
)

from supportdesk.tables.base import Id, Timestamp, id_column, metadata, timestamp_columns

# The ticket metrics (SPEC section 12), kept by tickets.service on every write path.
METRIC_TIMESTAMPS = (
    "first_response_at",
    "last_customer_message_at",
    "last_staff_message_at",
    "resolved_at",
)

tickets = Table(
    "tickets",
    metadata,
    id_column(),
    Column("subject", String(255), nullable=False),
    Column("status", String(64), nullable=False),
    Column("priority", String(64), nullable=False),
    Column("department", String(64), nullable=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("assigned_to", Id, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("service_id", BigInteger, nullable=True),
    # Positions of status and priority in their configured orders: what `sort=status` and
    # `sort=priority` order by, through an index (kept in step by tickets.service).
    Column("status_rank", SmallInteger, nullable=False, server_default=text("0")),
    Column("priority_rank", SmallInteger, nullable=False, server_default=text("0")),
    *timestamp_columns(),
    *(Column(name, Timestamp, nullable=True) for name in METRIC_TIMESTAMPS),
    Column("message_count", Integer, nullable=False, server_default=text("0")),
    # The ticket this one was merged into. No foreign key: SQLite adds one to an existing table
    # only by rebuilding it (which would drop the search triggers); deleting a ticket clears
    # the references to it (tickets.service).
    Column("merged_into", BigInteger, nullable=True),
    # Every filter and sort key is indexed with the id tie-breaker after it, so a page in
    # `ORDER BY key, id` order comes straight off an index on PostgreSQL too (SQLite indexes
    # carry the rowid already).
    *(
        Index(f"ix_tickets_{column}_id", column, "id")
        for column in (
            "user_id",
            "assigned_to",
            "service_id",
            "priority",
            "department",
            "subject",
            "created_at",
            "updated_at",
            "status_rank",
            "priority_rank",
            *METRIC_TIMESTAMPS,
            "message_count",
            "merged_into",
        )
    ),
    # the common "status and priority" filter; status alone uses its prefix
    Index("ix_tickets_status_priority_id", "status", "priority", "id"),
    # the console's Unassigned and Mine queues: an assignee's (or nobody's) open tickets
    Index("ix_tickets_assigned_to_status_id", "assigned_to", "status", "id"),
    sqlite_autoincrement=True,
)
