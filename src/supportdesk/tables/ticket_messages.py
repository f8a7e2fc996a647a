from sqlalchemy import Column, ForeignKey, Index, Table, Text

from supportdesk.tables.base import Id, id_column, metadata, timestamp_columns

ticket_messages = Table(
    "ticket_messages",
    metadata,
    id_column(),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("message", Text, nullable=False),
    *timestamp_columns(),
    # A ticket's messages, oldest first, come straight off this index.
    Index("ix_ticket_messages_ticket_id_id", "ticket_id", "id"),
    Index("ix_ticket_messages_user_id", "user_id"),
    Index("ix_ticket_messages_created_at", "created_at"),
    Index("ix_ticket_messages_updated_at", "updated_at"),
    sqlite_autoincrement=True,
)
