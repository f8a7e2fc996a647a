"""events and job leases: the event log (SPEC 9) and the background jobs' leases (SPEC 11)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")

# PostgreSQL: one NOTIFY per transaction that appended events, delivered at its commit (the
# server folds identical notifications of a transaction into one); the bus listens for it.
NOTIFY_FUNCTION = (
    "CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM pg_notify('supportdesk_events', ''); RETURN NULL; END $$"
)
NOTIFY_TRIGGER = (
    "CREATE TRIGGER events_notify_ai AFTER INSERT ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION events_notify()"
)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=True),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_ticket_id_id", "events", ["ticket_id", "id"])
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("last_success_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_notify_ai ON events")
        op.execute("DROP FUNCTION events_notify()")
    op.drop_table("job_leases")
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_index("ix_events_ticket_id_id", table_name="events")
    op.drop_table("events")
