"""evals tables (filled in by the area that owns core/db/tables_evals.py).

Revision ID: 0007_evals
Revises: 0006_jobs
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0007_evals"
down_revision = "0006_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
