"""A durable job queue on the project database, for workers in any number of processes.

Jobs are rows in ``jobs``. A worker *claims* one (status ``running``, a lease until
``locked_until``), works on it while renewing the lease (:meth:`JobQueue.heartbeat`), then
:meth:`~JobQueue.complete`\\ s or :meth:`~JobQueue.fail`\\ s it; a failure is retried later with
backoff until ``max_attempts``, then the job is ``dead``. A worker that dies holds its job only until
the lease runs out: any other worker then claims it again — so handlers must be safe to run twice
(exception runs are: their checkpoints and the gateway's idempotency keys replay what happened).

Claiming is race-free on both backends: PostgreSQL locks the candidate rows with
``FOR UPDATE SKIP LOCKED`` (workers never wait on each other), SQLite takes the database write lock
up front (``BEGIN IMMEDIATE``) so check-then-update is one atomic step. Jobs sharing a
``serial_key`` (a run id) are never running at the same time, so two workers never drive one run.

What this module must never do: hand one job to two live leases, or lose a job (every claimed job
ends done, dead, or back in the queue).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables_jobs import JobRow
from core.errors import NotFound, ValidationFailed

JobStatus = Literal["queued", "running", "done", "failed", "dead"]
"""``failed`` is kept for the records of a handler that gave up without retry; a failure that will
be retried goes back to ``queued`` with a later ``run_after``."""

START_RUN = "exception_run.start"
CONTINUE_RUN = "exception_run.continue"
INTAKE_PROCESS = "intake.process"

DEFAULT_LEASE_S = 60.0
DEFAULT_MAX_ATTEMPTS = 5
MAX_BACKOFF_S = 300.0


class Job(BaseModel):
    """A job as read back."""

    id: str
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None
    serial_key: str | None
    status: str
    attempts: int
    max_attempts: int
    run_after: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def start_dedup_key(run_id: str) -> str:
    """The dedup key of the job that starts run ``run_id`` (one start job per run, ever)."""
    return f"{START_RUN}:{run_id}"


def enqueue_continue(db: Database, *, run_id: str, approval_id: str, decision_no: int) -> Job:
    """The job that carries run ``run_id`` on after decision number ``decision_no`` on one of its
    approvals. Keyed by the decision, so a retried request adds no second job; serialized by run."""
    return JobQueue(db).enqueue(
        CONTINUE_RUN,
        {"run_id": run_id, "approval_id": approval_id},
        dedup_key=f"{CONTINUE_RUN}:{approval_id}:{decision_no}",
        serial_key=run_id,
    )


def backoff_s(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1, 2, 4, ... capped at five minutes)."""
    return float(min(MAX_BACKOFF_S, 2 ** max(0, attempts - 1)))


class JobQueue:
    """Keyword-light repository over ``jobs``: enqueue, claim, heartbeat, complete, fail, release.

    Times come from ``clock`` (the wall clock by default, never the twin's business date: leases
    and retries are about real seconds).
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
        run_after: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        session: Session | None = None,
    ) -> Job:
        """Add a job, or return the existing one with the same ``dedup_key`` (idempotent).

        Pass ``session`` to enqueue inside a caller's transaction (the job then exists exactly when
        the caller's other writes do).
        """
        if not kind or len(kind) > 64:
            raise ValidationFailed("a job kind is 1 to 64 characters")
        if max_attempts < 1:
            raise ValidationFailed("max_attempts must be at least 1")
        if session is not None:
            return self._enqueue(session, kind, payload, dedup_key, serial_key, run_after, max_attempts)
        try:
            with self.db.begin() as s:
                return self._enqueue(s, kind, payload, dedup_key, serial_key, run_after, max_attempts)
        except IntegrityError:
            # Another producer inserted the same dedup key between our read and our insert.
            if dedup_key is None:
                raise
            found = self.get_by_dedup_key(dedup_key)
            if found is None:  # pragma: no cover - the conflicting row cannot vanish
                raise
            return found

    def _enqueue(
        self,
        s: Session,
        kind: str,
        payload: dict[str, Any],
        dedup_key: str | None,
        serial_key: str | None,
        run_after: datetime | None,
        max_attempts: int,
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
            max_attempts=max_attempts,
            run_after=self._db_time(run_after) if run_after is not None else now,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        return _job(row)

    # --- consuming --------------------------------------------------------------------------------

    def claim(self, worker_id: str, kinds: Iterable[str] | None = None, lease_s: float = DEFAULT_LEASE_S) -> Job | None:
        """Take the next due job of ``kinds`` (all kinds if None) for ``lease_s`` seconds, or None.

        Due: queued with ``run_after`` passed, or running under an expired lease (its worker died).
        A job whose attempts are used up by expired leases is marked dead instead of handed out.
        """
        kind_list = sorted(set(kinds)) if kinds is not None else None
        while True:
            with self._claim_tx() as s:
                outcome = self._claim_in(s, worker_id, kind_list, lease_s)
            if outcome != "retry":
                return outcome

    def _claim_in(
        self, s: Session, worker_id: str, kinds: Sequence[str] | None, lease_s: float
    ) -> Job | Literal["retry"] | None:
        now = self._now()
        other = aliased(JobRow)
        busy = exists().where(
            and_(
                other.serial_key == JobRow.serial_key,
                other.id != JobRow.id,
                other.status == "running",
                other.locked_until > now,
            )
        )
        due = or_(
            and_(JobRow.status == "queued", JobRow.run_after <= now),
            and_(JobRow.status == "running", JobRow.locked_until <= now),
        )
        stmt = select(JobRow).where(due, or_(JobRow.serial_key.is_(None), ~busy))
        if kinds is not None:
            stmt = stmt.where(JobRow.kind.in_(kinds))
        stmt = stmt.order_by(JobRow.run_after, JobRow.created_at).limit(8)
        if self.db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True, of=JobRow)
        for row in s.scalars(stmt).all():
            if row.serial_key is not None and self.db.is_postgres and not self._serial_free(s, row, now):
                continue
            if row.attempts >= row.max_attempts:
                # Every attempt was spent by workers that died holding it: stop handing it out.
                row.status, row.locked_by, row.locked_until = "dead", None, None
                row.last_error = (row.last_error or "") + " [lease expired on the last attempt]"
                row.finished_at = row.updated_at = now
                return "retry"
            row.status = "running"
            row.attempts += 1
            row.locked_by = worker_id
            row.locked_until = now + timedelta(seconds=lease_s)
            row.updated_at = now
            s.flush()
            return _job(row)
        return None

    def _serial_free(self, s: Session, row: JobRow, now: datetime) -> bool:
        """PostgreSQL only: no other live job of the same serial key, checked under a lock on the key.

        SKIP LOCKED lets two workers pick two *different* jobs of one run at once; the advisory lock
        makes one of them wait its turn, and the re-check (a new statement: a fresh snapshot) sees
        a claim that committed meanwhile.
        """
        got = s.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": f"job:{row.serial_key}"})
        if not got.scalar():
            return False
        running = s.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(
                JobRow.serial_key == row.serial_key,
                JobRow.id != row.id,
                JobRow.status == "running",
                JobRow.locked_until > now,
            )
        )
        return not running

    def heartbeat(self, job_id: str, worker_id: str, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """Extend the lease; False when the job is no longer this worker's (lease lost)."""
        now = self._now()
        with self.db.begin() as s:
            res = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.locked_by == worker_id, JobRow.status == "running")
                .values(locked_until=now + timedelta(seconds=lease_s), updated_at=now)
            )
            return bool(getattr(res, "rowcount", 0))

    def complete(self, job_id: str, worker_id: str) -> bool:
        """Mark done; False (and nothing changed) if this worker no longer holds the job."""
        now = self._now()
        with self.db.begin() as s:
            res = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.locked_by == worker_id, JobRow.status == "running")
                .values(status="done", locked_by=None, locked_until=None, finished_at=now, updated_at=now)
            )
            return bool(getattr(res, "rowcount", 0))

    def fail(self, job_id: str, worker_id: str, error: str, *, retry: bool = True) -> str | None:
        """Record a failure: back to the queue after a backoff, or ``dead`` once attempts are used
        up (or ``failed`` when ``retry`` is False). Returns the new status, None if not held."""
        now = self._now()
        with self.db.begin() as s:
            row = s.get(JobRow, job_id, with_for_update=self.db.is_postgres)
            if row is None or row.locked_by != worker_id or row.status != "running":
                return None
            row.last_error = error[:4000]
            row.locked_by, row.locked_until, row.updated_at = None, None, now
            if not retry:
                row.status, row.finished_at = "failed", now
            elif row.attempts >= row.max_attempts:
                row.status, row.finished_at = "dead", now
            else:
                row.status = "queued"
                row.run_after = now + timedelta(seconds=backoff_s(row.attempts))
            return row.status

    def release(self, job_id: str, worker_id: str, *, delay_s: float = 0.0) -> bool:
        """Give a claimed job back untouched (shutdown before it started): the attempt is not counted."""
        now = self._now()
        with self.db.begin() as s:
            res = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.locked_by == worker_id, JobRow.status == "running")
                .values(
                    status="queued",
                    attempts=JobRow.attempts - 1,
                    locked_by=None,
                    locked_until=None,
                    run_after=now + timedelta(seconds=delay_s),
                    updated_at=now,
                )
            )
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
        """Jobs by status (for metrics and tests)."""
        with self.db.sessions() as s:
            return {str(k): int(v) for k, v in s.execute(select(JobRow.status, func.count()).group_by(JobRow.status))}

    # --- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _claim_tx(self) -> Iterator[Session]:
        """A write transaction; on SQLite one that holds the write lock from its first statement."""
        if not self.db.is_sqlite:
            with self.db.begin() as s:
                yield s
            return
        with self.db.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            with Session(bind=conn, expire_on_commit=False) as s:
                try:
                    yield s
                    s.flush()
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise

    def _now(self) -> datetime:
        return self._db_time(self.clock.now())

    def _db_time(self, value: datetime) -> datetime:
        """UTC; naive on SQLite (it stores no zone, and comparisons must see like with like)."""
        value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if self.db.is_sqlite else value


def write_tx(db: Database) -> AbstractContextManager[Session]:
    """A transaction that serializes with every other writer on SQLite (``BEGIN IMMEDIATE``); a plain
    transaction on PostgreSQL (callers add row or advisory locks there). For check-then-insert
    sequences outside this module (alert dedup)."""
    return JobQueue(db)._claim_tx()


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
        max_attempts=row.max_attempts,
        run_after=_utc(row.run_after) or datetime.now(UTC),
        locked_by=row.locked_by,
        locked_until=_utc(row.locked_until),
        last_error=row.last_error,
        created_at=_utc(row.created_at) or datetime.now(UTC),
        updated_at=_utc(row.updated_at) or datetime.now(UTC),
        finished_at=_utc(row.finished_at),
    )
