"""short pending lists for the GIN indexes of search (PostgreSQL)

A GIN index gathers new entries in a pending list (up to `gin_pending_list_limit`, 4 MB by
default) and every search reads that list from end to end. At 10M tickets the subject index's
list held 329 pages, 2.5 ms of every search that found nothing in subjects (bench/README.md,
change 14). 256 kB keeps the batching of inserts and bounds that read to 32 pages.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GIN_INDEXES = (
    "ix_tickets_subject_search",
    "ix_ticket_messages_message_search",
    "ix_tickets_subject_trgm",
)
PENDING_LIST_KB = 256


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in GIN_INDEXES:
        op.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in GIN_INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
