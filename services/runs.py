"""Start an exception run and carry one on: one home for what every way in does.

A run starts from an operator's goal (``POST /v1/runs``, Slack, ``orderops run``) or a monitoring
alert (``POST /v1/alerts``). The ways in that answer at once queue a start job whose payload is a
:class:`StartRun`; a worker reads it back with :meth:`StartRun.of_job` and starts the run (or, on a
retried job, carries on the one an earlier attempt got going). A run parked for approval is carried
on by :func:`carry_on`, from the worker's continue job or a terminal. Before this module the start
payload was assembled by hand in three places and read back by string key in three more.

What comes back is a :class:`graphs.exception.RunResult`; a finished run's report is read through
``result.typed_report`` (:class:`graphs.report.RunReport`), not by string key.

What this module must never do: decide an approval (that is :mod:`services.approvals`), or start a
run twice (one start job per run id, ever; a retried job carries the run on instead).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from agents.plan import Alert
from core.clock import Clock
from core.db import Database
from core.errors import NotFound, ValidationFailed
from core.outbox import START_RUN, Job, Outbox, start_dedup_key
from graphs.exception import ExceptionRuns, RunResult

DEFAULT_REQUESTER = "api"
"""Who a queued run acts for when its start job names nobody (jobs queued by older versions)."""


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:16]}"


class StartRun(BaseModel):
    """What starts a run: exactly one of a goal or an alert, and the person it acts for (who then
    may not approve its calls)."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(default_factory=new_run_id)
    goal: str | None = None
    alert: Alert | None = None
    requested_by: str

    @property
    def kind(self) -> str:
        return "alert" if self.alert is not None else "goal"

    def payload(self) -> dict[str, Any]:
        """The start job's payload (the goal or the alert, never a null for the other)."""
        out: dict[str, Any] = {"run_id": self.run_id}
        if self.alert is not None:
            out["alert"] = self.alert.model_dump(mode="json")
        else:
            out["goal"] = self.goal
        out["requested_by"] = self.requested_by
        return out

    @classmethod
    def of_job(cls, job: Job) -> StartRun:
        """The command a start job carries; :class:`ValidationFailed` when it names no run."""
        return cls.of_payload(job.payload)

    @classmethod
    def of_payload(cls, p: dict[str, Any]) -> StartRun:
        """The command a start payload carries (a job's, or a DBOS workflow's argument)."""
        run_id = p.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ValidationFailed("job payload needs 'run_id'")
        goal = p.get("goal")
        return cls(
            run_id=run_id,
            goal=str(goal) if goal is not None else None,
            alert=Alert.model_validate(p["alert"]) if p.get("alert") is not None else None,
            requested_by=str(p.get("requested_by") or DEFAULT_REQUESTER),
        )


def queue_run(db: Database, cmd: StartRun, *, clock: Clock | None = None, session: Session | None = None) -> Job:
    """Queue the run's start job (idempotent per run id; serialized with the run's other jobs).

    Pass ``session`` to queue inside the caller's transaction: the alert inbox records the alert and
    its run's start job together or not at all."""
    return Outbox(db, clock).enqueue(
        START_RUN,
        cmd.payload(),
        dedup_key=start_dedup_key(cmd.run_id),
        serial_key=cmd.run_id,
        session=session,
    )


def start_job(db: Database, run_id: str) -> Job | None:
    """The job that started (or will start) ``run_id``; None for a run started in-process."""
    return Outbox(db).get_by_dedup_key(start_dedup_key(run_id))


def queued_requester(db: Database, run_id: str) -> str | None:
    """Who a run started through the queue acts for (None when no start job names anyone)."""
    job = start_job(db, run_id)
    found = job.payload.get("requested_by") if job is not None else None
    return str(found) if found else None


def start_now(runs: ExceptionRuns, cmd: StartRun) -> RunResult:
    """Start the run in this process (``orderops run``); it parks at the first approval gate."""
    return runs.start(alert=cmd.alert, goal=cmd.goal, run_id=cmd.run_id)


def start_or_carry_on(runs: ExceptionRuns, cmd: StartRun) -> RunResult:
    """A start job's work: start the run, or carry on the one an earlier attempt got going (a worker
    may die after starting it and before recording the job as done)."""
    try:
        current = runs.result(cmd.run_id)
    except NotFound:
        return start_now(runs, cmd)
    return _carry_on(runs, current, busy_raises=True)


def carry_on(runs: ExceptionRuns, run_id: str, *, busy_raises: bool = False) -> RunResult:
    """Carry a run on from where it stands: finish one whose process stopped mid-node, else execute
    what was decided elsewhere (API, Slack, console) and park again on what is still pending.

    ``busy_raises`` (workers): a run another process holds raises ``RunBusy`` so the job is tried
    again later instead of ending with the decisions unexecuted."""
    return _carry_on(runs, runs.result(run_id), busy_raises=busy_raises)


def _carry_on(runs: ExceptionRuns, current: RunResult, *, busy_raises: bool) -> RunResult:
    if current.status == "running":
        return runs.proceed(current.run_id, busy_raises=busy_raises)
    return runs.continue_run(current.run_id, busy_raises=busy_raises)
