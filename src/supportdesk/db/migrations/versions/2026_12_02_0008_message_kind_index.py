"""indexes for `filter[internal]` on messages and `filter[merged_into]` on tickets, in the
`(key, id)` shape of every other filter so a page comes off the index in order (SPEC 12)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ticket_messages_internal_id", "ticket_messages", ["internal", "id"])
    op.drop_index("ix_tickets_merged_into", table_name="tickets")
    op.create_index("ix_tickets_merged_into_id", "tickets", ["merged_into", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_merged_into_id", table_name="tickets")
    op.create_index("ix_tickets_merged_into", "tickets", ["merged_into"])
    op.drop_index("ix_ticket_messages_internal_id", table_name="ticket_messages")
