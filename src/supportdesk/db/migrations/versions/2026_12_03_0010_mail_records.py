"""indexes for mail records: a ticket's mail received (the threading headers of the mail sent
about it) and the age of sent and received mail (pruned after `SUPPORTDESK_MAIL_RETAIN`)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mail_inbox_ticket_id_id", "mail_inbox", ["ticket_id", "id"])
    op.create_index("ix_mail_inbox_received_at", "mail_inbox", ["received_at"])
    op.create_index("ix_mail_outbox_created_at", "mail_outbox", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_created_at", table_name="mail_outbox")
    op.drop_index("ix_mail_inbox_received_at", table_name="mail_inbox")
    op.drop_index("ix_mail_inbox_ticket_id_id", table_name="mail_inbox")
