from sqlalchemy import Boolean, Column, Integer, String, Table, Text, true

from supportdesk.tables.base import Timestamp, id_column, metadata, timestamp_columns

api_keys = Table(
    "api_keys",
    metadata,
    id_column(),
    Column("name", String(255), nullable=False),
    # SHA-256 hex of the token; the token itself is never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    # JSON arrays: permission names, and allowed addresses or CIDR ranges (empty = any).
    Column("permissions", Text, nullable=False),
    Column("allowed_ips", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("last_used_at", Timestamp, nullable=True),
    # requests per minute; NULL: the server's default, 0: no limit
    Column("rate_limit", Integer, nullable=True),
    *timestamp_columns(),
    sqlite_autoincrement=True,
)
