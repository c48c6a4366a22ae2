"""Exception runs over HTTP: start one from a goal, list them, read one, read its audit trace.

Starting answers at once (202 + run id): an ``exception_run.start`` job does the work on a worker
(:func:`services.runs.queue_run`). A run parked for approval is carried on by an
``exception_run.continue`` job, queued when an approval of that run is decided
(:mod:`services.approvals`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role
from api.deps import Approver, Ctx, Viewer, require
from api.inputs import Text
from api.problems import PROBLEM_RESPONSES, problem_responses
from api.routes.alerts import AlertResult, alerts_of_run
from api.routes.approvals import ApprovalSummary
from core.errors import NotFound
from core.outbox import START_RUN, Job, Outbox
from graphs.runs import RUN_STATUSES, RunStore
from guardrails.audit import AuditRecord
from services.approvals import IncidentCard, IncidentDecision, decide_incident, incident_card
from services.runs import StartRun, queue_run, start_job

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=PROBLEM_RESPONSES)

RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Tracer = Annotated[Principal, require(Role.OPERATOR, Role.APPROVER, Role.ADMIN)]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: Text = Field(
        min_length=1, max_length=2000, pattern=r"\S", description="What to do, e.g. 'DC-RENO is congested'."
    )


class RunAccepted(BaseModel):
    run_id: str
    status: str = Field(description="`queued`: a worker will start it.")
    job_id: str


class JobView(BaseModel):
    id: str
    kind: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            attempts=job.attempts,
            last_error=job.last_error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


class RunView(BaseModel):
    id: str
    kind: str = Field(description="`alert` or `goal`.")
    status: str = Field(description=f"`queued` (no worker has started it yet) or one of {list(RUN_STATUSES)}.")
    goal: str | None
    alert: dict[str, Any] | None
    planner: str | None
    created_at: datetime
    updated_at: datetime


class RunList(BaseModel):
    runs: list[RunView]


class RunDetail(RunView):
    report: dict[str, Any] | None = Field(description="The final report, once the run has finished.")
    approvals: list[ApprovalSummary] = Field(description="The run's approval requests still pending.")
    alerts: list[AlertResult] = Field(description="Alerts that started, duplicated or joined this run.")
    jobs: list[JobView] = Field(description="The worker jobs of this run (start, continue), oldest first.")


class RunTrace(BaseModel):
    run_id: str
    records: list[AuditRecord] = Field(description="The run's audit events in chain order (personal data redacted).")


@router.post(
    "", status_code=202, response_model=RunAccepted, summary="Start a run from a goal", responses=problem_responses()
)
def create_run(ctx: Ctx, user: Operator, body: RunCreate) -> RunAccepted:
    """The run is queued for a worker; poll `GET /v1/runs/{run_id}`. It acts on the caller's behalf,
    so the caller may not approve its calls."""
    cmd = StartRun(goal=body.goal, requested_by=user.id)
    job = queue_run(ctx.db, cmd)
    return RunAccepted(run_id=cmd.run_id, status="queued", job_id=job.id)


@router.get("", response_model=RunList, summary="Runs, newest first")
def list_runs(
    ctx: Ctx,
    _user: Viewer,
    status: Annotated[Text | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> RunList:
    """Runs a worker has started (queued ones appear once started; read one by id meanwhile)."""
    found = RunStore(ctx.db, ctx.clock).list(status=status, limit=limit)
    return RunList(runs=[RunView.model_validate(r.model_dump(exclude={"report", "thread_id"})) for r in found])


@router.get("/{run_id}", response_model=RunDetail, summary="One run", responses=problem_responses(404))
def get_run(ctx: Ctx, _user: Viewer, run_id: RunId) -> RunDetail:
    """Status, final report (once finished), pending approvals, the alerts and the jobs behind it."""
    queue = Outbox(ctx.db)
    jobs = queue.list(serial_key=run_id)
    extra: dict[str, Any] = {
        "approvals": [ApprovalSummary.of(r) for r in ctx.guard.approvals.list_pending(run_id=run_id)],
        "alerts": alerts_of_run(ctx.db, run_id),
        "jobs": [JobView.of(j) for j in jobs],
    }
    try:
        summary = RunStore(ctx.db, ctx.clock).get(run_id=run_id)
    except NotFound:
        start = next((j for j in jobs if j.kind == START_RUN), None)
        if start is None:
            raise
        cmd = StartRun.of_job(start)
        return RunDetail(
            id=run_id,
            kind=cmd.kind,
            status="failed" if start.status in ("dead", "failed") else "queued",
            goal=cmd.goal,
            alert=cmd.alert.model_dump(mode="json") if cmd.alert is not None else None,
            planner=None,
            created_at=start.created_at,
            updated_at=start.updated_at,
            report=None,
            **extra,
        )
    return RunDetail(**summary.model_dump(exclude={"thread_id"}), **extra)


@router.get(
    "/{run_id}/trace", response_model=RunTrace, summary="The run's audit trail", responses=problem_responses(404)
)
def get_trace(
    ctx: Ctx,
    _user: Tracer,
    run_id: RunId,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RunTrace:
    """Every audited step of the run (reads, proposals, approvals, executions), in chain order."""
    try:
        RunStore(ctx.db, ctx.clock).get(run_id=run_id)
    except NotFound:
        if start_job(ctx.db, run_id) is None:
            raise
    return RunTrace(run_id=run_id, records=ctx.guard.audit.list(run_id=run_id, limit=limit))


# --- one approval per incident --------------------------------------------------------------------


class IncidentDecisionIn(BaseModel):
    """One decision on every step of a run that waits for a person."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Text | None = Field(default=None, max_length=1000)
    only: dict[Annotated[Text, Field(max_length=64)], list[Annotated[Text, Field(max_length=100)]]] | None = Field(
        default=None, description="Approval id of a step -> the only orders of it to approve."
    )
    leave_out: list[Annotated[Text, Field(max_length=64)]] = Field(
        default_factory=list, max_length=1000, description="Approval ids of steps to reject while approving the rest."
    )


@router.get(
    "/{run_id}/approval",
    response_model=IncidentCard,
    summary="The run's approval card: every pending step, the totals and the policy's reasons",
    responses=problem_responses(404, 409),
)
def get_incident_card(ctx: Ctx, _user: Viewer, run_id: RunId) -> IncidentCard:
    RunStore(ctx.db, ctx.clock).get(run_id=run_id)
    return incident_card(ctx.gateway, run_id)


@router.post(
    "/{run_id}/approval",
    response_model=IncidentDecision,
    summary="Decide every pending step of a run at once; a worker then carries the run on",
    responses=problem_responses(404, 409),
)
def decide_run(ctx: Ctx, user: Approver, run_id: RunId, body: IncidentDecisionIn) -> IncidentDecision:
    RunStore(ctx.db, ctx.clock).get(run_id=run_id)
    return decide_incident(
        ctx.gateway,
        ctx.db,
        run_id,
        approver=user.actor(),
        decision=body.decision,
        reason=body.reason,
        only=body.only,
        leave_out=body.leave_out,
    )
