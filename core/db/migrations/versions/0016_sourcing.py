"""sourcing profiles, their activations, live experiments and the decision log (issue 14).

Revision ID: 0016_sourcing
Revises: 0015_schedule_runs
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_sourcing"
down_revision = "0015_schedule_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sourcing_profiles",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_sourcing_profiles")),
    )
    op.create_table(
        "sourcing_profile_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_profile_activations")),
    )
    op.create_table(
        "sourcing_experiments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("a_name", sa.String(length=64), nullable=False),
        sa.Column("a_version", sa.Integer(), nullable=False),
        sa.Column("b_name", sa.String(length=64), nullable=False),
        sa.Column("b_version", sa.Integer(), nullable=False),
        sa.Column("share_b", sa.Float(), nullable=False),
        sa.Column("mde_usd", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_experiments")),
    )
    op.create_table(
        "sourcing_decisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("inputs_hash", sa.String(length=64), nullable=False),
        sa.Column("profile_name", sa.String(length=64), nullable=False),
        sa.Column("profile_version", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.String(length=40), nullable=True),
        sa.Column("arm", sa.String(length=1), nullable=True),
        sa.Column("node_id", sa.String(length=100), nullable=True),
        sa.Column("carrier_service_id", sa.String(length=48), nullable=True),
        sa.Column("split", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("eta", sa.Date(), nullable=True),
        sa.Column("co2e_kg", sa.Float(), nullable=True),
        sa.Column("meets_promise", sa.Boolean(), nullable=False),
        sa.Column("snapshot_age_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["sourcing_experiments.id"],
            name=op.f("fk_sourcing_decisions_experiment_id_sourcing_experiments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_decisions")),
    )
    op.create_index("ix_sourcing_decisions_order", "sourcing_decisions", ["order_id"])
    op.create_index("ix_sourcing_decisions_experiment", "sourcing_decisions", ["experiment_id", "arm"])


def downgrade() -> None:
    op.drop_index("ix_sourcing_decisions_experiment", table_name="sourcing_decisions")
    op.drop_index("ix_sourcing_decisions_order", table_name="sourcing_decisions")
    op.drop_table("sourcing_decisions")
    op.drop_table("sourcing_experiments")
    op.drop_table("sourcing_profile_activations")
    op.drop_table("sourcing_profiles")
