"""per-key rate limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("rate_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN rate_limit")
