"""slack tables (filled in by the area that owns core/db/tables_slack.py).

Revision ID: 0009_slack
Revises: 0008_notifications
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0009_slack"
down_revision = "0008_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
