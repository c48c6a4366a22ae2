"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: sourcing profiles, live experiments and the decision log (issue 14).

* ``sourcing_profiles`` holds every version of every named profile (the scorer's weights and the
  constraints a decision honours). A version is never edited: a change is a new version, so a
  logged decision names exactly the weights it was made with.
* ``sourcing_profile_activations`` is the history of which profile version the decision API uses:
  the newest row is the active one; each row points at the row that was active before it, so a
  rollback walks back one step and repeated rollbacks keep walking.
* ``sourcing_experiments`` holds live A/B experiments: two profile versions and the share of
  orders (by a hash of the order id) that get arm B.
* ``sourcing_decisions`` logs every decision the decision API answers: its id, a hash of its
  inputs, the profile name and version, the experiment and arm, and what was decided.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = [
    "Base",
    "SourcingDecisionRow",
    "SourcingExperimentRow",
    "SourcingProfileActivationRow",
    "SourcingProfileRow",
]


class SourcingProfileRow(Base):
    """One immutable version of a named sourcing profile."""

    __tablename__ = "sourcing_profiles"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    weights: Mapped[Any] = mapped_column(JSON)
    constraints: Mapped[Any] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class SourcingProfileActivationRow(Base):
    """One activation (or rollback): from this row on, decisions use ``name`` v``version``."""

    __tablename__ = "sourcing_profile_activations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The activation that was in force before this one (what a rollback returns to)."""
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime)
    by: Mapped[str] = mapped_column(String(200))


class SourcingExperimentRow(Base):
    """A live A/B experiment between two profile versions."""

    __tablename__ = "sourcing_experiments"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    a_name: Mapped[str] = mapped_column(String(64))
    a_version: Mapped[int] = mapped_column(Integer)
    b_name: Mapped[str] = mapped_column(String(64))
    b_version: Mapped[int] = mapped_column(Integer)
    share_b: Mapped[float] = mapped_column(Float)
    mde_usd: Mapped[float] = mapped_column(Float)
    """Smallest difference in cost to serve per order worth detecting (sets the horizon)."""
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_by: Mapped[str] = mapped_column(String(200))


class SourcingDecisionRow(Base):
    """One answered decision (naive UTC times, as the other tables keep them)."""

    __tablename__ = "sourcing_decisions"
    __table_args__ = (
        Index("ix_sourcing_decisions_order", "order_id"),
        Index("ix_sourcing_decisions_experiment", "experiment_id", "arm"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    order_id: Mapped[str] = mapped_column(String(64))
    inputs_hash: Mapped[str] = mapped_column(String(64))
    """sha256 of the order as read, its stock, the snapshot's network state and the profile."""
    profile_name: Mapped[str] = mapped_column(String(64))
    profile_version: Mapped[int] = mapped_column(Integer)
    experiment_id: Mapped[str | None] = mapped_column(ForeignKey("sourcing_experiments.id"), nullable=True)
    arm: Mapped[str | None] = mapped_column(String(1), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    carrier_service_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    split: Mapped[bool] = mapped_column(default=False)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta: Mapped[date | None] = mapped_column(Date, nullable=True)
    co2e_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    meets_promise: Mapped[bool] = mapped_column(default=False)
    snapshot_age_ms: Mapped[float] = mapped_column(Float, default=0.0)
    """How long before the decision the snapshot was last checked against the database."""
