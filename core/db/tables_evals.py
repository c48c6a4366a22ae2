"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Offline eval suite: runs and case results (issue: eval suite).

An eval run records what produced its numbers (code version, planner, model, prompt and policy
versions, settings) next to the numbers, so two runs can be compared knowing what changed. Case
results are never updated after the run that wrote them finishes.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["Base", "EvalCaseResultRow", "EvalRunRow"]


class EvalRunRow(Base):
    """One ``orderops eval run``: its configuration and its headline metrics."""

    __tablename__ = "eval_runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suites: Mapped[list[str]] = mapped_column(JSON)
    planner: Mapped[str] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(100))
    trials: Mapped[int] = mapped_column(Integer)
    code_version: Mapped[str] = mapped_column(String(100))
    prompt_versions: Mapped[Any] = mapped_column(JSON)
    policy_version: Mapped[str | None] = mapped_column(String(64))
    settings: Mapped[Any] = mapped_column(JSON)
    metrics: Mapped[Any] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    """``running`` -> ``finished`` | ``failed``."""


class EvalCaseResultRow(Base):
    """One trial of one case in one run."""

    __tablename__ = "eval_case_results"
    __table_args__ = (Index("ix_eval_case_results_suite", "run_id", "suite"),)
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    suite: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    passed: Mapped[bool] = mapped_column(Boolean)
    duration_s: Mapped[float] = mapped_column(Float)
    metrics: Mapped[Any] = mapped_column(JSON)
    failures: Mapped[list[str]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
