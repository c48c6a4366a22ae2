"""schedule runs: when each scheduled task (watch, approval-mail tick) last ran, shared by workers.

Revision ID: 0015_schedule_runs
Revises: 0014_api_keys
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_schedule_runs"
down_revision = "0014_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule_runs")),
    )


def downgrade() -> None:
    op.drop_table("schedule_runs")
