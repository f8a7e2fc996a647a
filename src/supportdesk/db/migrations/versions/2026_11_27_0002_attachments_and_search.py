"""attachments and full-text search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of supportdesk.tables.base's types and supportdesk.tables.search's names.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.String(length=27), "sqlite")
SQLITE_FTS = {
    "tickets_fts": ("tickets", "subject"),
    "ticket_messages_fts": ("ticket_messages", "message"),
}
POSTGRES_GIN = {
    "ix_tickets_subject_search": ("tickets", "subject"),
    "ix_ticket_messages_message_search": ("ticket_messages", "message"),
}


def _sqlite_fts(fts: str, table: str, column: str) -> list[str]:
    """An external-content FTS5 table over table.column, filled, and the triggers that keep it
    in step (they fire for cascaded deletes too)."""
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column}); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column}); "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END",
    ]


def upgrade() -> None:
    op.create_table(
        "ticket_attachments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column("filesize", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ticket_messages.id"],
            name=op.f("fk_ticket_attachments_message_id_ticket_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_attachments")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_ticket_attachments_stored_name")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_ticket_attachments_message_id", "ticket_attachments", ["message_id"], unique=False
    )
    if op.get_bind().dialect.name == "sqlite":
        for fts, (table, column) in SQLITE_FTS.items():
            for statement in _sqlite_fts(fts, table, column):
                op.execute(statement)
    else:
        for index, (table, column) in POSTGRES_GIN.items():
            op.execute(
                f"CREATE INDEX {index} ON {table} USING gin (to_tsvector('simple', {column}))"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts in SQLITE_FTS:
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER {fts}_{suffix}")
            op.execute(f"DROP TABLE {fts}")
    else:
        for index in POSTGRES_GIN:
            op.execute(f"DROP INDEX {index}")
    op.drop_index("ix_ticket_attachments_message_id", table_name="ticket_attachments")
    op.drop_table("ticket_attachments")
