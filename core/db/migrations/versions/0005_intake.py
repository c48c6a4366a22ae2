"""intake tables: learned mappings, received POs, review queue, results, acknowledgment drafts.

Revision ID: 0005_intake
Revises: 0004_documents
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_intake"
down_revision = "0004_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_mappings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_value", sa.String(length=128), nullable=False),
        sa.Column("target_value", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_mappings")),
    )
    with op.batch_alter_table("intake_mappings", schema=None) as batch_op:
        batch_op.create_index("ix_intake_mappings_key", ["customer_id", "kind", "source_value"], unique=True)

    op.create_table(
        "intake_received_pos",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("po_number", sa.String(length=128), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("po_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_received_pos")),
    )
    with op.batch_alter_table("intake_received_pos", schema=None) as batch_op:
        batch_op.create_index("ix_intake_received_pos_doc", ["document_id", "po_index"], unique=True)
        batch_op.create_index("ix_intake_received_pos_fp", ["fingerprint", "received_at"], unique=False)

    op.create_table(
        "intake_review_items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("po_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=True),
        sa.Column("po_number", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("extracted", sa.JSON(), nullable=False),
        sa.Column("validated", sa.JSON(), nullable=False),
        sa.Column("corrections", sa.JSON(), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("approval_id", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_review_items")),
    )
    with op.batch_alter_table("intake_review_items", schema=None) as batch_op:
        batch_op.create_index("ix_intake_review_items_doc", ["document_id", "po_index"], unique=True)
        batch_op.create_index("ix_intake_review_items_status", ["status", "created_at"], unique=False)

    op.create_table(
        "intake_results",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_intake_results")),
    )

    op.create_table(
        "intake_acks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("po_index", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_acks")),
    )
    with op.batch_alter_table("intake_acks", schema=None) as batch_op:
        batch_op.create_index("ix_intake_acks_doc", ["document_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("intake_acks", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_acks_doc")
    op.drop_table("intake_acks")
    op.drop_table("intake_results")
    with op.batch_alter_table("intake_review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_review_items_status")
        batch_op.drop_index("ix_intake_review_items_doc")
    op.drop_table("intake_review_items")
    with op.batch_alter_table("intake_received_pos", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_received_pos_fp")
        batch_op.drop_index("ix_intake_received_pos_doc")
    op.drop_table("intake_received_pos")
    with op.batch_alter_table("intake_mappings", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_mappings_key")
    op.drop_table("intake_mappings")
