"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: the worker's schedule.

* ``schedule_runs`` holds one row per scheduled task (the watch, the approval-mail tick): when it
  last ran. A worker runs a task only after moving that time forward in one conditional UPDATE, so
  several workers on one database run each due task once (see :mod:`services.schedule`).

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["Base", "ScheduleRunRow"]


class ScheduleRunRow(Base):
    """One scheduled task's last run (naive UTC, as the other timestamps the twin compares)."""

    __tablename__ = "schedule_runs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    last_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The worker that ran it last (for a person reading the table)."""
