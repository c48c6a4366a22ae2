"""inbox tables (filled in by the area that owns core/db/tables_inbox.py).

Revision ID: 0010_inbox
Revises: 0009_slack
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0010_inbox"
down_revision = "0009_slack"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
