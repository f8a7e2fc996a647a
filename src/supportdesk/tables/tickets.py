from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table

from supportdesk.tables.base import Id, id_column, metadata, timestamp_columns

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
    *timestamp_columns(),
    Index("ix_tickets_user_id", "user_id"),
    Index("ix_tickets_assigned_to", "assigned_to"),
    Index("ix_tickets_status", "status"),
    Index("ix_tickets_priority", "priority"),
    Index("ix_tickets_department", "department"),
    Index("ix_tickets_service_id", "service_id"),
    Index("ix_tickets_subject", "subject"),
    Index("ix_tickets_created_at", "created_at"),
    Index("ix_tickets_updated_at", "updated_at"),
    sqlite_autoincrement=True,
)
