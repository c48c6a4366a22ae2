"""approvals by e-mail: mailed requests, their signed links, the mail outbox.

Revision ID: 0012_approval_mail
Revises: 0011_console_sessions
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_approval_mail"
down_revision = "0011_console_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "approval_mail",
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("mailed_at", ts, nullable=False),
        sa.Column("reminded_at", ts, nullable=True),
        sa.Column("escalated_at", ts, nullable=True),
        sa.Column("closed_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("approval_id", name=op.f("pk_approval_mail")),
    )
    op.create_index("ix_approval_mail_stage", "approval_mail", ["stage"], unique=False)
    op.create_table(
        "approval_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("person", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("used_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_links")),
    )
    op.create_index("ix_approval_links_approval_id", "approval_links", ["approval_id"], unique=False)
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("approval_id", sa.String(length=64), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", ts, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("sent_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index("ix_mail_outbox_status_next", "mail_outbox", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_status_next", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index("ix_approval_links_approval_id", table_name="approval_links")
    op.drop_table("approval_links")
    op.drop_index("ix_approval_mail_stage", table_name="approval_mail")
    op.drop_table("approval_mail")
