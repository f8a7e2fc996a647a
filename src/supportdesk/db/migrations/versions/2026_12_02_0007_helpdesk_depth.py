"""helpdesk depth: internal notes, ticket metrics and merges, canned replies, idempotency keys
(SPEC 12)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")

METRIC_TIMESTAMPS = (
    "first_response_at",
    "last_customer_message_at",
    "last_staff_message_at",
    "resolved_at",
)
INDEXED = (*METRIC_TIMESTAMPS, "message_count")


def _messages(aggregate: str, where: str = "") -> str:
    return f"(SELECT {aggregate} FROM ticket_messages m WHERE m.ticket_id = tickets.id {where})"


# The metrics of the tickets that exist now, as tickets.service keeps them from here on: only
# public messages count as answers, the owner's are the customer's, anyone else's are staff's;
# a ticket closed today counts as resolved when it was last updated.
FILL = (
    "UPDATE tickets SET "
    f"message_count = {_messages('count(*)')}, "
    "first_response_at = "
    f"{_messages('min(m.created_at)', 'AND NOT m.internal AND m.user_id <> tickets.user_id')}, "
    "last_staff_message_at = "
    f"{_messages('max(m.created_at)', 'AND NOT m.internal AND m.user_id <> tickets.user_id')}, "
    "last_customer_message_at = "
    f"{_messages('max(m.created_at)', 'AND NOT m.internal AND m.user_id = tickets.user_id')}, "
    "resolved_at = CASE WHEN status = 'closed' THEN updated_at END"
)


def upgrade() -> None:
    op.add_column(
        "ticket_messages",
        sa.Column("internal", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    for name in METRIC_TIMESTAMPS:
        op.add_column("tickets", sa.Column(name, Timestamp, nullable=True))
    op.add_column(
        "tickets",
        sa.Column("message_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("tickets", sa.Column("merged_into", sa.BigInteger(), nullable=True))
    op.execute(FILL)
    for name in INDEXED:
        op.create_index(f"ix_tickets_{name}_id", "tickets", [name, "id"])
    op.create_index("ix_tickets_merged_into", "tickets", ["merged_into"])
    op.create_table(
        "canned_replies",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_canned_replies_name_id", "canned_replies", ["name", "id"])
    op.create_index("ix_canned_replies_department_id", "canned_replies", ["department", "id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", Id, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_idempotency_keys_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_canned_replies_department_id", table_name="canned_replies")
    op.drop_index("ix_canned_replies_name_id", table_name="canned_replies")
    op.drop_table("canned_replies")
    op.drop_index("ix_tickets_merged_into", table_name="tickets")
    for name in INDEXED:
        op.drop_index(f"ix_tickets_{name}_id", table_name="tickets")
    for name in ("merged_into", "message_count", *METRIC_TIMESTAMPS):
        op.drop_column("tickets", name)
    op.drop_column("ticket_messages", "internal")
