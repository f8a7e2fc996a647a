"""indexes for scale: sort ranks, composite indexes, row counters, substring search

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TICKET_INDEXES = {
    "ix_tickets_user_id": "user_id",
    "ix_tickets_assigned_to": "assigned_to",
    "ix_tickets_service_id": "service_id",
    "ix_tickets_priority": "priority",
    "ix_tickets_department": "department",
    "ix_tickets_subject": "subject",
    "ix_tickets_created_at": "created_at",
    "ix_tickets_updated_at": "updated_at",
    "ix_tickets_status": "status",
}
NEW_TICKET_COLUMNS = (
    "user_id",
    "assigned_to",
    "service_id",
    "priority",
    "department",
    "subject",
    "created_at",
    "updated_at",
    "status_rank",
    "priority_rank",
)
OLD_MESSAGE_INDEXES = {
    "ix_ticket_messages_user_id": "user_id",
    "ix_ticket_messages_created_at": "created_at",
    "ix_ticket_messages_updated_at": "updated_at",
}
COUNTED = ("users", "tickets", "ticket_messages")


def _sqlite_counters(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_count_ai AFTER INSERT ON {table} BEGIN "
        f"UPDATE row_counts SET count = count + 1 WHERE name = '{table}'; END",
        f"CREATE TRIGGER {table}_count_ad AFTER DELETE ON {table} BEGIN "
        f"UPDATE row_counts SET count = count - 1 WHERE name = '{table}'; END",
    ]


def _postgres_counters(table: str) -> list[str]:
    """Statement-level triggers with transition tables: one counter update per statement,
    however many rows it touched (bulk loads, cascaded deletes); TRUNCATE resets it."""
    return [
        f"CREATE FUNCTION {table}_count_zero() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE row_counts SET count = 0 WHERE name = '{table}'; RETURN NULL; END $$",
        f"CREATE TRIGGER {table}_count_at AFTER TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_count_zero()",
        f"CREATE FUNCTION {table}_count_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE row_counts SET count = count + (SELECT count(*) FROM changed) "
        f"WHERE name = '{table}'; RETURN NULL; END $$",
        f"CREATE FUNCTION {table}_count_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE row_counts SET count = count - (SELECT count(*) FROM changed) "
        f"WHERE name = '{table}'; RETURN NULL; END $$",
        f"CREATE TRIGGER {table}_count_ai AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {table}_count_ins()",
        f"CREATE TRIGGER {table}_count_ad AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {table}_count_del()",
    ]


def _sqlite_trigram() -> list[str]:
    fts = "tickets_subject_fts"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(subject, content='tickets', "
        "content_rowid='id', tokenize='trigram')",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON tickets BEGIN "
        f"INSERT INTO {fts}(rowid, subject) VALUES (new.id, new.subject); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON tickets BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, subject) VALUES ('delete', old.id, old.subject); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF subject ON tickets BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, subject) VALUES ('delete', old.id, old.subject); "
        f"INSERT INTO {fts}(rowid, subject) VALUES (new.id, new.subject); END",
    ]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Plain ALTER TABLE, never batch mode: rebuilding `tickets` on SQLite would drop the
    # full-text triggers that revision 0002 put on it.
    for column in ("status_rank", "priority_rank"):
        op.add_column(
            "tickets",
            sa.Column(column, sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        )
    for name in OLD_TICKET_INDEXES:
        op.drop_index(name, table_name="tickets")
    for column in NEW_TICKET_COLUMNS:
        op.create_index(f"ix_tickets_{column}_id", "tickets", [column, "id"])
    op.create_index("ix_tickets_status_priority_id", "tickets", ["status", "priority", "id"])
    for name, column in OLD_MESSAGE_INDEXES.items():
        op.drop_index(name, table_name="ticket_messages")
        op.create_index(f"ix_ticket_messages_{column}_id", "ticket_messages", [column, "id"])

    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "row_counts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_row_counts")),
    )
    for table in COUNTED:
        op.execute(f"INSERT INTO row_counts (name, count) SELECT '{table}', count(*) FROM {table}")
        for statement in _sqlite_counters(table) if sqlite else _postgres_counters(table):
            op.execute(statement)

    if sqlite:
        for statement in _sqlite_trigram():
            op.execute(statement)
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_tickets_subject_trgm ON tickets USING gin (subject gin_trgm_ops)"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER tickets_subject_fts_{suffix}")
        op.execute("DROP TABLE tickets_subject_fts")
    else:
        op.execute("DROP INDEX ix_tickets_subject_trgm")
    for table in COUNTED:
        op.execute(f"DROP TRIGGER {table}_count_ai" + ("" if sqlite else f" ON {table}"))
        op.execute(f"DROP TRIGGER {table}_count_ad" + ("" if sqlite else f" ON {table}"))
        if not sqlite:
            op.execute(f"DROP TRIGGER {table}_count_at ON {table}")
            for function in ("ins", "del", "zero"):
                op.execute(f"DROP FUNCTION {table}_count_{function}()")
    op.drop_table("row_counts")
    op.drop_table("meta")
    for name, column in OLD_MESSAGE_INDEXES.items():
        op.drop_index(f"ix_ticket_messages_{column}_id", table_name="ticket_messages")
        op.create_index(name, "ticket_messages", [column])
    op.drop_index("ix_tickets_status_priority_id", table_name="tickets")
    for column in NEW_TICKET_COLUMNS:
        op.drop_index(f"ix_tickets_{column}_id", table_name="tickets")
    for name, column in OLD_TICKET_INDEXES.items():
        op.create_index(name, "tickets", [column])
    for column in ("priority_rank", "status_rank"):
        op.execute(f"ALTER TABLE tickets DROP COLUMN {column}")
