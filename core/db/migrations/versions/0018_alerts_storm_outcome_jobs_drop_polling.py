"""alerts: index the storm lookup by (storm_key, outcome, received_at); jobs: drop the polling columns.

Every alert ingest asks for the run its storm's last ``started`` alert opened
(``storm_key = ? AND outcome = 'started' ORDER BY received_at DESC LIMIT 1``). The index on
(storm_key, received_at) found the storm and then walked its alerts newest first, reading every
``coalesced`` and ``duplicate`` row until the opening one: the longer a storm, the slower each of its
alerts. With ``outcome`` between the two columns the lookup is one index seek. It replaces
``ix_alerts_storm`` (no other query filters on ``storm_key``), so an insert still maintains one
storm index, not two.

``jobs.locked_by``, ``locked_until`` and ``max_attempts`` were the retired polling queue's claim and
retry bookkeeping; DBOS claims and retries jobs now and nothing reads or writes them. The downgrade
adds them back (``max_attempts`` at 1, what the outbox wrote since DBOS; the others empty).

SQLite cannot drop a column that way everywhere, so both tables go through ``batch_alter_table``
(Alembic copies the table on SQLite and alters it in place on PostgreSQL).

Revision ID: 0018_alerts_storm_jobs_polling
Revises: 0017_intake_ack_dedup
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_alerts_storm_jobs_polling"
down_revision = "0017_intake_ack_dedup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_storm")
        batch_op.create_index("ix_alerts_storm_outcome", ["storm_key", "outcome", "received_at"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("locked_by")
        batch_op.drop_column("max_attempts")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), nullable=False, server_default=sa.text("1")))
        batch_op.add_column(sa.Column("locked_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_storm_outcome")
        batch_op.create_index("ix_alerts_storm", ["storm_key", "received_at"], unique=False)
