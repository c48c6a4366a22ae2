"""The customer-notification outbox: messages the ``notify_customer`` tool queued.

Queued, not sent: delivery is a connector's job (email, EDI, portal), which reads the outbox and
marks rows sent. Keeping the outbox in the database makes a notification part of the same
audited, idempotent write as everything else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base


class NotificationRow(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_customer", "customer_id"), Index("ix_notifications_status", "status"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    order_ids: Mapped[Any] = mapped_column(JSON)
    channel: Mapped[str] = mapped_column(String(16), default="email")
    to_address: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
