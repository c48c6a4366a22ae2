"""intake tables (filled in by the area that owns core/db/tables_intake.py).

Revision ID: 0005_intake
Revises: 0004_documents
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_intake"
down_revision = "0004_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
