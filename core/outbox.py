"""The job outbox: the rows the ways in (API, alerts, Slack, console, inbox) write for work a worker
must do, in the same transaction as their other writes.

DBOS (:mod:`services.queue`) runs the work; its system tables are written on connections of its
own, which no caller's transaction can join. The alert inbox must record an alert and its run's
start together or not at all, so the ways in write a row here and the DBOS worker relays it
(:func:`services.queue.relay`): a row becomes the workflow whose id is its ``dedup_key``, and then
follows that workflow — ``queued`` while it waits or runs (a storm of alerts still coalesces into a
run that has not started), ``done`` when it succeeded, ``failed`` when it ended in error.

There are no claims or leases here: handing a row to DBOS is idempotent (a workflow id is queued
once), and a row only ever moves out of ``queued``, so relays in any number of processes may look
at the same row at once without doing anything twice.

What this module must never do: lose a row (every row ends ``done`` or ``failed`` after its
workflow ends), or move a finished row back to ``queued``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables_jobs import JobRow
from core.errors import NotFound, ValidationFailed

JobStatus = Literal["queued", "done", "failed"]
OPEN = ("queued", "running")
"""Rows still to follow their workflow. ``running`` is what the retired polling queue left on a row
it held when it was stopped for the upgrade: such a row is relayed like a queued one, not lost."""

START_RUN = "exception_run.start"
CONTINUE_RUN = "exception_run.continue"
INTAKE_PROCESS = "intake.process"


class Job(BaseModel):
    """A job row as read back. ``attempts`` is 1 once the row was handed to DBOS (DBOS counts the
    real tries)."""

    id: str
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None
    serial_key: str | None
    status: str
    attempts: int
    run_after: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def start_dedup_key(run_id: str) -> str:
    """The dedup key of the job that starts run ``run_id`` (one start job per run, ever)."""
    return f"{START_RUN}:{run_id}"


def enqueue_continue(db: Database, *, run_id: str, approval_id: str, decision_no: int) -> Job:
    """The job that carries run ``run_id`` on after decision number ``decision_no`` on one of its
    approvals. Keyed by the decision, so a retried request adds no second job."""
    return Outbox(db).enqueue(
        CONTINUE_RUN,
        {"run_id": run_id, "approval_id": approval_id},
        dedup_key=f"{CONTINUE_RUN}:{approval_id}:{decision_no}",
        serial_key=run_id,
    )


class Outbox:
    """Repository over ``jobs``: what the ways in write and the relay reads and settles.

    Times come from ``clock`` (the wall clock by default, never the twin's business date).
    """

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    # --- producing --------------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedup_key: str | None = None,
        serial_key: str | None = None,
        session: Session | None = None,
    ) -> Job:
        """Add a job, or return the existing one with the same ``dedup_key`` (idempotent).

        Pass ``session`` to enqueue inside a caller's transaction (the job then exists exactly when
        the caller's other writes do).
        """
        if not kind or len(kind) > 64:
            raise ValidationFailed("a job kind is 1 to 64 characters")
        if session is not None:
            return self._enqueue(session, kind, payload, dedup_key, serial_key)
        try:
            with self.db.begin() as s:
                return self._enqueue(s, kind, payload, dedup_key, serial_key)
        except IntegrityError:
            # Another producer inserted the same dedup key between our read and our insert.
            if dedup_key is None:
                raise
            found = self.get_by_dedup_key(dedup_key)
            if found is None:  # pragma: no cover - the conflicting row cannot vanish
                raise
            return found

    def _enqueue(
        self, s: Session, kind: str, payload: dict[str, Any], dedup_key: str | None, serial_key: str | None
    ) -> Job:
        if dedup_key is not None:
            row = s.scalars(select(JobRow).where(JobRow.dedup_key == dedup_key)).first()
            if row is not None:
                return _job(row)
        now = self._now()
        row = JobRow(
            id=f"job_{uuid.uuid4().hex[:20]}",
            kind=kind,
            payload=payload,
            dedup_key=dedup_key,
            serial_key=serial_key,
            status="queued",
            attempts=0,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        return _job(row)

    # --- relaying ---------------------------------------------------------------------------------

    def due(self, kinds: Iterable[str] | None = None, *, limit: int = 200, now_only: bool = True) -> list[Job]:
        """Queued rows to hand to DBOS or to bring up to date, oldest first; with ``now_only``
        False, also those whose next look is not due yet (a worker driven one job at a time)."""
        stmt = select(JobRow).where(JobRow.status.in_(OPEN))
        if now_only:
            stmt = stmt.where(JobRow.run_after <= self._now())
        if kinds is not None:
            stmt = stmt.where(JobRow.kind.in_(sorted(set(kinds))))
        stmt = stmt.order_by(JobRow.created_at, JobRow.id).limit(limit)
        with self.db.sessions() as s:
            return [_job(r) for r in s.scalars(stmt)]

    def look_again(self, job_id: str, delay_s: float) -> bool:
        """The row's workflow waits or runs: mark the row handed and look again in ``delay_s``."""
        now = self._now()
        return self._settle(
            job_id, status="queued", attempts=1, run_after=now + timedelta(seconds=delay_s), updated_at=now
        )

    def finish(self, job_id: str, status: Literal["done", "failed"], error: str | None = None) -> bool:
        """The row's workflow ended: ``done`` or ``failed`` (with why). False if already finished."""
        now = self._now()
        values: dict[str, Any] = {"status": status, "attempts": 1, "finished_at": now, "updated_at": now}
        if error is not None:
            values["last_error"] = error[:4000]
        return self._settle(job_id, **values)

    def _settle(self, job_id: str, **values: Any) -> bool:
        """Update a row that is still open (a finished row never moves back)."""
        with self.db.begin() as s:
            res = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(OPEN)).values(**values))
            return bool(getattr(res, "rowcount", 0))

    # --- reading ----------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self.db.sessions() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound("job", job_id)
            return _job(row)

    def get_by_dedup_key(self, dedup_key: str) -> Job | None:
        with self.db.sessions() as s:
            row = s.scalars(select(JobRow).where(JobRow.dedup_key == dedup_key)).first()
            return _job(row) if row is not None else None

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        serial_key: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Oldest first."""
        with self.db.sessions() as s:
            stmt = select(JobRow)
            if status is not None:
                stmt = stmt.where(JobRow.status == status)
            if kind is not None:
                stmt = stmt.where(JobRow.kind == kind)
            if serial_key is not None:
                stmt = stmt.where(JobRow.serial_key == serial_key)
            stmt = stmt.order_by(JobRow.created_at, JobRow.id).limit(limit)
            return [_job(r) for r in s.scalars(stmt)]

    def counts(self) -> dict[str, int]:
        """Jobs by status (for tests and reports)."""
        with self.db.sessions() as s:
            return {str(k): int(v) for k, v in s.execute(select(JobRow.status, func.count()).group_by(JobRow.status))}

    def _now(self) -> datetime:
        return _db_time(self.db, self.clock.now())


def _db_time(db: Database, value: datetime) -> datetime:
    """UTC; naive on SQLite (it stores no zone, and comparisons must see like with like)."""
    value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value.replace(tzinfo=None) if db.is_sqlite else value


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        payload=dict(row.payload or {}),
        dedup_key=row.dedup_key,
        serial_key=row.serial_key,
        status=row.status,
        attempts=row.attempts,
        run_after=_utc(row.run_after) or datetime.now(UTC),
        last_error=row.last_error,
        created_at=_utc(row.created_at) or datetime.now(UTC),
        updated_at=_utc(row.updated_at) or datetime.now(UTC),
        finished_at=_utc(row.finished_at),
    )
