"""The browser's tables (SPEC 14): sessions, e-mailed sign-in links, presence on tickets."""

from sqlalchemy import Column, ForeignKey, Index, PrimaryKeyConstraint, String, Table

from supportdesk.tables.base import Id, Timestamp, id_column, metadata

# A signed-in browser: the cookie holds a random token, the row its SHA-256 (a stolen copy of
# the table signs nobody in); logging out deletes the row.
web_sessions = Table(
    "web_sessions",
    metadata,
    id_column(),
    Column("token_hash", String(64), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),  # the token every form of this session carries
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Index("uq_web_sessions_token_hash", "token_hash", unique=True),
    Index("ix_web_sessions_user_id", "user_id"),
    Index("ix_web_sessions_expires_at", "expires_at"),
    sqlite_autoincrement=True,
)

# One-time sign-in links mailed to a user (sign-in without a password, and password reset).
sign_in_links = Table(
    "sign_in_links",
    metadata,
    id_column(),
    Column("token_hash", String(64), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
    Index("uq_sign_in_links_token_hash", "token_hash", unique=True),
    Index("ix_sign_in_links_user_id", "user_id"),
    Index("ix_sign_in_links_expires_at", "expires_at"),
    sqlite_autoincrement=True,
)

# Staff on a ticket's page, renewed by the page every few seconds: `viewing` or `replying`.
presence = Table(
    "presence",
    metadata,
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("seen_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("ticket_id", "user_id"),
    Index("ix_presence_seen_at", "seen_at"),
)
