"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Ways in: alerts, jobs for workers, Slack and inbox bookkeeping (issue: ways in).

* ``jobs`` is the outbox of work for the workers (:mod:`core.outbox`): the ways in write a row in
  their own transaction, and a DBOS worker relays it into a workflow whose status the row then
  follows. DBOS claims and retries the work, so the row keeps no lease or retry bookkeeping (the
  retired polling queue's ``locked_by``/``locked_until``/``max_attempts`` went in migration 0018).
* ``alerts`` keeps every alert received (after mapping to our ``Alert`` shape), which run it
  started or was attached to, and why (dedup, storm coalescing).
* ``webhook_deliveries`` remembers signed deliveries by their ``webhook-id`` so a replayed delivery
  gets the first answer again instead of doing anything twice.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["AlertRow", "Base", "JobRow", "WebhookDeliveryRow"]


class JobRow(Base):
    """One unit of work for a worker: queued (handed to DBOS or not yet) -> done | failed."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_after"),
        Index("ix_jobs_serial", "serial_key", "status"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(JSON)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """Enqueueing the same key again returns the first job instead of adding one."""
    serial_key: Mapped[str | None] = mapped_column(String(200))
    """The run a job belongs to (DBOS's queue partition: one job of a run at a time)."""
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AlertRow(Base):
    """One received alert and the run it started or joined."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_fingerprint", "fingerprint", "received_at"),
        # The ingest's lookup: the storm's last alert that started a run (one seek, see 0018).
        Index("ix_alerts_storm_outcome", "storm_key", "outcome", "received_at"),
        Index("ix_alerts_run", "run_id"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    """The sender's alert id (``Alert.id``)."""
    source: Mapped[str] = mapped_column(String(32))
    """``generic``, ``alertmanager`` or ``datadog``."""
    fingerprint: Mapped[str] = mapped_column(String(500))
    storm_key: Mapped[str] = mapped_column(String(500))
    """What a storm is about (the node, else the carrier, else the fingerprint)."""
    outcome: Mapped[str] = mapped_column(String(16))
    """``started`` (it opened a run), ``duplicate`` (same fingerprint within the window) or
    ``coalesced`` (attached to the open run of its storm)."""
    run_id: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str | None] = mapped_column(String(200))
    alert: Mapped[Any] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryRow(Base):
    """A signed delivery already handled, with the answer it got (replays get it again)."""

    __tablename__ = "webhook_deliveries"
    webhook_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    response: Mapped[Any] = mapped_column(JSON)
