"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: approvals by e-mail and the mail outbox.

* ``approval_mail``: one row per approval request that was mailed, with how far its chase went
  (mailed, reminded, escalated, expired, closed) and when; the scheduled tick reads it to decide
  what is due, so a reminder or an escalation is sent once however often the tick runs.
* ``approval_links``: one row per link mailed (its random id is inside the signed token): who it
  was sent to, what it does, until when, and when it was used — a link decides at most once.
* ``mail_outbox``: e-mails to deliver over SMTP, with attempts, the last error and the next try;
  a message that failed ``mail_max_attempts`` times is ``dead`` (the dead-letter view).

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["ApprovalLinkRow", "ApprovalMailRow", "Base", "MailOutboxRow"]


class ApprovalMailRow(Base):
    __tablename__ = "approval_mail"
    __table_args__ = (Index("ix_approval_mail_stage", "stage"),)

    approval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))
    """mailed, reminded, escalated, expired (the tick expired it), closed (decided elsewhere)."""
    mailed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApprovalLinkRow(Base):
    __tablename__ = "approval_links"
    __table_args__ = (Index("ix_approval_links_approval_id", "approval_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    approval_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    person: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MailOutboxRow(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    approval_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    """queued, sent, dead."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
