from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table

from supportdesk.tables.base import Id, Timestamp, id_column, metadata

ticket_attachments = Table(
    "ticket_attachments",
    metadata,
    id_column(),
    Column("message_id", Id, ForeignKey("ticket_messages.id", ondelete="CASCADE"), nullable=False),
    # The client's file name: metadata only, never part of a path.
    Column("filename", String(255), nullable=False),
    # The generated name of the file under the storage folder.
    Column("stored_name", String(64), nullable=False, unique=True),
    Column("mime_type", String(255), nullable=False),
    Column("filesize", BigInteger, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_ticket_attachments_message_id", "message_id"),
    sqlite_autoincrement=True,
)
