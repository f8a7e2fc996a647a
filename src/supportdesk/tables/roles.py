from sqlalchemy import Column, String, Table

from supportdesk.tables.base import id_column, metadata, timestamp_columns

roles = Table(
    "roles",
    metadata,
    id_column(),
    Column("name", String(255), nullable=False, unique=True),
    *timestamp_columns(),
    sqlite_autoincrement=True,
)
