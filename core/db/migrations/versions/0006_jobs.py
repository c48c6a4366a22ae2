"""jobs tables (filled in by the area that owns core/db/tables_jobs.py).

Revision ID: 0006_jobs
Revises: 0005_intake
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_jobs"
down_revision = "0005_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
