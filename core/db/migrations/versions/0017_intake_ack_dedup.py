"""intake_acks.dedup_key: one acknowledgment draft per document, PO, kind and decision.

Two workers taking in one document at once (or a resumed intake graph) drafted every 997 / 855 /
reply again; the unique key lets the second writer's insert do nothing. Rows written before have
no key (NULL, never equal to another), so the upgrade needs no clean-up of old duplicates.

Revision ID: 0017_intake_ack_dedup
Revises: 0016_sourcing
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_intake_ack_dedup"
down_revision = "0016_sourcing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intake_acks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedup_key", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_intake_acks_dedup_key", ["dedup_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("intake_acks", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_acks_dedup_key")
        batch_op.drop_column("dedup_key")
