"""The runs index: one row per exception run, so ``runs list`` never opens a checkpoint.

The LangGraph checkpoint of a run is the source of truth for where the graph stands; this table is
a small, queryable summary the graph keeps up to date as it goes (started, waiting for approval,
finished with its report). It must never be used to decide what to execute: that is the
checkpoint's and the gateway's job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, or_, select, update

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables import RunRow
from core.errors import NotFound, ValidationFailed
from graphs.report import RunReport

RUN_STATUSES = (
    "running",
    "awaiting_approval",
    "completed",
    "partially_completed",
    "failed",
    "rejected",
    "nothing_to_do",
)
FINAL_STATUSES = frozenset({"completed", "partially_completed", "failed", "rejected", "nothing_to_do"})


class RunSummary(BaseModel):
    id: str
    thread_id: str
    kind: str
    status: str
    goal: str | None
    alert: dict[str, Any] | None
    planner: str | None
    created_at: datetime
    updated_at: datetime
    report: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def typed_report(self) -> RunReport | None:
        """The finished run's report, typed (None until it finishes)."""
        return None if self.report is None else RunReport.of(self.report)


class RunStore:
    """Keyword-only repository over the ``runs`` table."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def create(
        self, *, run_id: str, thread_id: str, kind: str, goal: str | None = None, alert: dict[str, Any] | None = None
    ) -> RunSummary:
        """Register a run (idempotent: registering the same id again returns the stored row)."""
        if kind not in ("alert", "goal"):
            raise ValidationFailed(f"run kind must be 'alert' or 'goal', not {kind!r}")
        now = self._now()
        with self.db.begin() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                row = RunRow(
                    id=run_id,
                    thread_id=thread_id,
                    kind=kind,
                    status="running",
                    goal=goal,
                    alert=alert,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
            return _summary(row)

    def update(
        self,
        *,
        run_id: str,
        status: str | None = None,
        planner: str | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        if status is not None and status not in RUN_STATUSES:
            raise ValidationFailed(f"unknown run status {status!r}")
        with self.db.begin() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise NotFound("run", run_id)
            if status is not None:
                row.status = status
            if planner is not None:
                row.planner = planner
            if report is not None:
                row.report = report
            row.updated_at = self._now()

    def claim(self, *, run_id: str, lease_s: float = 300.0) -> bool:
        """Take a parked run for one process: ``awaiting_approval`` -> ``running`` in one
        conditional update, so of two processes racing for it exactly one gets ``True``.

        A run already ``running`` whose row has not changed for ``lease_s`` seconds counts as
        abandoned (its process died holding it) and may be taken over. Raises :class:`NotFound`
        for an unknown run.
        """
        now = self._now()
        stale = now - timedelta(seconds=lease_s)
        stmt = (
            update(RunRow)
            .where(
                RunRow.id == run_id,
                or_(
                    RunRow.status == "awaiting_approval",
                    and_(RunRow.status == "running", RunRow.updated_at <= stale),
                ),
            )
            .values(status="running", updated_at=now)
            .returning(RunRow.id)
        )
        with self.db.begin() as session:
            # RETURNING, not rowcount: it reads the same on every driver.
            won = session.execute(stmt).first() is not None
            if not won and session.get(RunRow, run_id) is None:
                raise NotFound("run", run_id)
            return won

    def touch(self, *, run_id: str) -> None:
        """Keep this process's claim on a run it is driving fresh (a heartbeat), so that only a
        claim whose holder died lapses after ``lease_s``."""
        with self.db.begin() as session:
            session.execute(
                update(RunRow).where(RunRow.id == run_id, RunRow.status == "running").values(updated_at=self._now())
            )

    def release_claim(self, *, run_id: str) -> None:
        """Give up a claim without finishing (the driver raised): the run may be taken over at once
        instead of after the lease. A process that dies cannot call this; its claim lapses."""
        with self.db.begin() as session:
            session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == "running")
                .values(updated_at=self._stored(_LAPSED))
            )

    def get(self, *, run_id: str) -> RunSummary:
        with self.db.sessions() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise NotFound("run", run_id)
            return _summary(row)

    def list(self, *, status: str | None = None, limit: int = 50) -> list[RunSummary]:
        """Newest first."""
        with self.db.sessions() as session:
            stmt = select(RunRow)
            if status is not None:
                stmt = stmt.where(RunRow.status == status)
            stmt = stmt.order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
            return [_summary(r) for r in session.scalars(stmt)]

    def _now(self) -> datetime:
        return self._stored(self.clock.now())

    def _stored(self, when: datetime) -> datetime:
        when = when.astimezone(UTC)
        return when.replace(tzinfo=None) if self.db.is_sqlite else when


_LAPSED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated_at`` of a run whose claim was given up: older than any lease."""


def _summary(row: RunRow) -> RunSummary:
    def utc(value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    return RunSummary(
        id=row.id,
        thread_id=row.thread_id,
        kind=row.kind,
        status=row.status,
        goal=row.goal,
        alert=row.alert,
        planner=row.planner,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        report=row.report,
    )
