from sqlalchemy import Boolean, Column, ForeignKey, Index, Table, Text, false

from supportdesk.tables.base import Id, id_column, metadata, timestamp_columns

ticket_messages = Table(
    "ticket_messages",
    metadata,
    id_column(),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("message", Text, nullable=False),
    # an internal note (SPEC section 12): staff only, never moves the status
    Column("internal", Boolean, nullable=False, server_default=false()),
    *timestamp_columns(),
    # A ticket's messages, oldest first, come straight off the first index; the others serve
    # the filters and sorts in `ORDER BY key, id` order.
    *(
        Index(f"ix_ticket_messages_{column}_id", column, "id")
        for column in ("ticket_id", "user_id", "created_at", "updated_at", "internal")
    ),
    sqlite_autoincrement=True,
)
