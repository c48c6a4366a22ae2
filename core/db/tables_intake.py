"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Intake pipeline: review queue, learned part mappings, acknowledgments (issue: intake agent).

* ``intake_mappings`` — what reviewers taught us per customer (their part number -> our SKU,
  their unit code -> ours), read by validation before any fuzzy guess;
* ``intake_received_pos`` — one row per purchase order taken in, keyed by a fingerprint
  (customer + normalized PO number) so that the same PO arriving by EDI and again by e-mail is
  seen as a duplicate or a revision, never a second order;
* ``intake_review_items`` — the review queue;
* ``intake_results`` — the outcome of processing one document (makes reprocessing idempotent);
* ``intake_acks`` — acknowledgment drafts (997, 855, ORDRSP, reply e-mail); drafts, never sent here.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = [
    "Base",
    "IntakeAckRow",
    "IntakeMappingRow",
    "IntakeReceivedPORow",
    "IntakeResultRow",
    "IntakeReviewItemRow",
]


class IntakeMappingRow(Base):
    """A learned mapping for one customer: ``kind`` ``part`` (their part -> SKU) or ``uom``."""

    __tablename__ = "intake_mappings"
    __table_args__ = (Index("ix_intake_mappings_key", "customer_id", "kind", "source_value", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    source_value: Mapped[str] = mapped_column(String(128))
    """Normalized (upper-cased, trimmed) value as the customer writes it."""
    target_value: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    times_used: Mapped[int] = mapped_column(Integer, default=0)


class IntakeReceivedPORow(Base):
    """One purchase order taken in (one per document and PO index)."""

    __tablename__ = "intake_received_pos"
    __table_args__ = (
        Index("ix_intake_received_pos_doc", "document_id", "po_index", unique=True),
        Index("ix_intake_received_pos_fp", "fingerprint", "received_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(32))
    po_number: Mapped[str] = mapped_column(String(128))
    document_id: Mapped[str] = mapped_column(String(36))
    po_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    """``original``, ``duplicate`` or ``revision``."""
    lines: Mapped[Any] = mapped_column(JSON)
    """Normalized lines ``[{key, sku, quantity, unit_price}]`` for duplicate/revision checks."""
    order_id: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IntakeReviewItemRow(Base):
    """A purchase order waiting for a person (or decided by one)."""

    __tablename__ = "intake_review_items"
    __table_args__ = (
        Index("ix_intake_review_items_doc", "document_id", "po_index", unique=True),
        Index("ix_intake_review_items_status", "status", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(36))
    po_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    """``review`` (a field or finding needs a person), ``revision`` or ``approval`` (policy parked it)."""
    customer_id: Mapped[str | None] = mapped_column(String(32))
    po_number: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(24))
    """``open`` -> ``awaiting_approval`` -> ``approved`` | ``rejected``."""
    reasons: Mapped[Any] = mapped_column(JSON)
    extracted: Mapped[Any] = mapped_column(JSON)
    validated: Mapped[Any] = mapped_column(JSON)
    corrections: Mapped[Any] = mapped_column(JSON)
    reviewer: Mapped[str | None] = mapped_column(String(128))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    approval_id: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntakeResultRow(Base):
    """The outcome of processing one document (every PO in it)."""

    __tablename__ = "intake_results"
    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IntakeAckRow(Base):
    """An acknowledgment draft; sending it is a later, approved action."""

    __tablename__ = "intake_acks"
    __table_args__ = (
        Index("ix_intake_acks_doc", "document_id", "created_at"),
        Index("ix_intake_acks_dedup_key", "dedup_key", unique=True),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(36))
    po_index: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    """``x12-997``, ``x12-855``, ``edifact-ordrsp`` or ``email``."""
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    """What makes a draft the same one when intake runs again (document, PO, kind, the decision it
    answers); unique, so parallel or resumed runs store it once. ``None``: never deduplicated."""
