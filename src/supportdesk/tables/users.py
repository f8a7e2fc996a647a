from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, func, true

from supportdesk.tables.base import Id, Timestamp, id_column, metadata, timestamp_columns

users = Table(
    "users",
    metadata,
    id_column(),
    Column("first_name", String(255), nullable=True),
    Column("last_name", String(255), nullable=True),
    Column("email", String(255), nullable=False),
    Column("email_verified_at", Timestamp, nullable=True),
    Column("password", String(255), nullable=True),
    Column("role_id", Id, ForeignKey("roles.id", ondelete="SET NULL"), nullable=True, index=True),
    # SPEC 13: mailed about their tickets (customers) or the desk's (staff)
    Column("email_notifications", Boolean, nullable=False, server_default=true()),
    *timestamp_columns(),
    Index("ix_users_first_name", "first_name"),
    Index("ix_users_last_name", "last_name"),
    Index("ix_users_created_at", "created_at"),
    sqlite_autoincrement=True,
)

# Emails are unique case-insensitively; lookups and `filter[email]` go through this index.
Index("uq_users_email_lower", func.lower(users.c.email), unique=True)
