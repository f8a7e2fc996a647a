from sqlalchemy import Column, Index, String, Table, Text

from supportdesk.tables.base import id_column, metadata, timestamp_columns

# Canned replies (SPEC section 12): reusable answers with placeholders, optionally scoped to
# one department.
canned_replies = Table(
    "canned_replies",
    metadata,
    id_column(),
    Column("name", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("department", String(64), nullable=True),
    *timestamp_columns(),
    Index("ix_canned_replies_name_id", "name", "id"),
    Index("ix_canned_replies_department_id", "department", "id"),
    sqlite_autoincrement=True,
)
