"""The worker's schedule: tasks that run every so often (the watch, the approval-mail tick), each
once per interval however many workers share the database.

A worker calls :func:`run_due` from its idle loop. Each task has a row in ``schedule_runs`` with
when it last ran; a worker runs a task only after moving that time to now in one conditional
``UPDATE ... WHERE last_run_at <= now - every`` (atomic on SQLite and PostgreSQL alike), so of
several workers that find it due at the same moment exactly one runs it, and a task whose worker
died runs again at the next interval. A task that fails is logged and waits for its next interval
(it is not retried at once: the watch and the tick are idempotent, and the next run does the work).

The tasks themselves are given by the caller (``api/`` builds them: the watch hands its findings to
the alert inbox there); this module decides only *when*.

What this module must never do: run a task twice in one interval, or let one task's failure stop
the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.db.tables_schedule import ScheduleRunRow
from core.errors import ValidationFailed

__all__ = ["ScheduledTask", "claim", "run_due"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledTask:
    """``run`` every ``every``; ``name`` keys its row (one name, one schedule, across workers)."""

    name: str
    every: timedelta
    run: Callable[[], object]

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise ValidationFailed(f"a scheduled task needs a name of 1-64 characters, not {self.name!r}")
        if self.every <= timedelta(0):
            raise ValidationFailed(f"scheduled task {self.name!r}: its interval must be positive, not {self.every}")


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def claim(db: Database, name: str, every: timedelta, now: datetime, *, by: str) -> bool:
    """Whether this caller may run ``name`` now: True for exactly one caller per interval."""
    at = _naive(now)
    with db.engine.begin() as conn:
        moved = conn.execute(
            update(ScheduleRunRow)
            .where(ScheduleRunRow.name == name, ScheduleRunRow.last_run_at <= at - every)
            .values(last_run_at=at, runs=ScheduleRunRow.runs + 1, last_by=by[:200])
        ).rowcount
    if moved:
        return True
    try:  # first time this task is seen on this database: whoever inserts its row runs it
        with db.engine.begin() as conn:
            conn.execute(insert(ScheduleRunRow).values(name=name, last_run_at=at, runs=1, last_by=by[:200]))
    except IntegrityError:
        return False  # the row exists (it was not due), or another worker inserted it just now
    return True


def run_due(db: Database, tasks: Sequence[ScheduledTask], now: datetime, *, by: str = "worker") -> list[str]:
    """Run every task of ``tasks`` that is due at ``now`` and that this caller claims; the names run
    (a failed one included: it ran, and waits for its next interval)."""
    ran: list[str] = []
    for task in tasks:
        if not claim(db, task.name, task.every, now, by=by):
            continue
        ran.append(task.name)
        try:
            task.run()
        except Exception:
            log.exception("scheduled task %s failed; it runs again in %s", task.name, task.every)
    return ran
