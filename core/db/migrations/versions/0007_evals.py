"""evals tables: eval runs and their case results.

Revision ID: 0007_evals
Revises: 0006_jobs
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_evals"
down_revision = "0006_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suites", sa.JSON(), nullable=False),
        sa.Column("planner", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("code_version", sa.String(length=100), nullable=False),
        sa.Column("prompt_versions", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_runs")),
    )
    op.create_table(
        "eval_case_results",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("trial", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("suite", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["eval_runs.id"], name=op.f("fk_eval_case_results_run_id_eval_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "case_id", "trial", name=op.f("pk_eval_case_results")),
    )
    with op.batch_alter_table("eval_case_results", schema=None) as batch_op:
        batch_op.create_index("ix_eval_case_results_suite", ["run_id", "suite"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_case_results", schema=None) as batch_op:
        batch_op.drop_index("ix_eval_case_results_suite")
    op.drop_table("eval_case_results")
    op.drop_table("eval_runs")
