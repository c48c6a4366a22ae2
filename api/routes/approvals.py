"""Approval requests over HTTP: the queue, one request, and a person's decision on it.

Every decision goes through :func:`services.approvals.decide_step` (the gateway's ``decide``, then
the job that carries the run on) or the gateway's ``edit``, so the API applies exactly the checks
the CLI and Slack apply: the approver must hold every required role, nobody approves their own
request, a stale ``expected_args_hash`` is refused, and each decision lands in the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Approver, Ctx, Viewer
from api.inputs import NoNulObject, Text
from api.problems import PROBLEM_RESPONSES, problem_responses
from core.errors import Conflict
from guardrails.approvals import ApprovalDecision, ApprovalRequest, ApprovalStatus
from services.approvals import decide_step
from tools.gateway import RunLedger

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], responses=PROBLEM_RESPONSES)

ApprovalId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ApprovalSummary(BaseModel):
    """What an approver needs to pick a request from the queue."""

    id: str
    tool: str
    status: ApprovalStatus
    run_id: str | None
    requester_id: str
    summary: str = Field(description="The preview's one-line summary of the effect.")
    cost_delta: str | None = Field(description="Predicted cost change (decimal string, USD).")
    affected: int = Field(description="Items (orders) the call would change.")
    skipped: int = Field(description="Items the call covers but would leave unchanged.")
    late_before: int | None
    late_after: int | None
    required_roles: list[str]
    approvers_required: int
    approvals: int = Field(description="Approvals recorded so far.")
    args_hash: str = Field(description="Send back as `expected_args_hash` to decide what you reviewed.")
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, req: ApprovalRequest) -> ApprovalSummary:
        preview: dict[str, Any] = req.preview if isinstance(req.preview, dict) else {}
        items = preview.get("items")
        rows = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        ok = sum(1 for i in rows if i.get("ok"))
        cost = preview.get("cost_delta")
        return cls(
            id=req.id,
            tool=req.tool,
            status=req.status,
            run_id=req.run_id,
            requester_id=req.requester_id,
            summary=str(preview.get("summary", "")),
            cost_delta=str(cost) if cost is not None else None,
            affected=ok if rows else len(req.items),
            skipped=len(rows) - ok,
            late_before=_int_or_none(preview.get("late_before")),
            late_after=_int_or_none(preview.get("late_after")),
            required_roles=req.required_roles,
            approvers_required=req.approvers_required,
            approvals=len(req.approvals),
            args_hash=req.args_hash,
            created_at=req.created_at,
            expires_at=req.expires_at,
        )


class ApprovalDetail(ApprovalSummary):
    """One request in full: the exact arguments and preview it binds, and its decisions."""

    arguments: Any
    preview: Any
    items: list[str]
    approved_items: list[str] | None
    decisions: list[ApprovalDecision]
    supersedes_id: str | None
    superseded_by_id: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, req: ApprovalRequest) -> ApprovalDetail:
        return cls(
            **ApprovalSummary.of(req).model_dump(),
            arguments=req.arguments,
            preview=req.preview,
            items=req.items,
            approved_items=req.approved_items,
            decisions=req.decisions,
            supersedes_id=req.supersedes_id,
            superseded_by_id=req.superseded_by_id,
            decided_at=req.decided_at,
        )


class ApprovalList(BaseModel):
    approvals: list[ApprovalSummary]


class _DecisionBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_args_hash: Text | None = Field(
        default=None, max_length=128, description="The `args_hash` you reviewed; refused (409) if it changed."
    )


class Approve(_DecisionBase):
    """Approve the request, or only ``subset`` of the items it covers."""

    decision: Literal["approve"]
    reason: Text | None = Field(default=None, max_length=1000)
    subset: list[Annotated[Text, Field(max_length=100)]] | None = Field(default=None, min_length=1, max_length=100_000)


class Reject(_DecisionBase):
    """Reject the request; the reason goes to the audit trail and the requester."""

    decision: Literal["reject"]
    reason: Text = Field(min_length=1, max_length=1000, pattern=r"\S")


class Edit(_DecisionBase):
    """Replace the call's arguments: re-validated, re-simulated and re-judged by policy; opens a new
    pending request (which the editor may not approve) instead of approving anything."""

    decision: Literal["edit"]
    arguments: NoNulObject = Field(description="The edited tool arguments, complete.")
    reason: Text | None = Field(default=None, max_length=1000)


DecisionIn = Annotated[Approve | Reject | Edit, Field(discriminator="decision")]


class DecisionOut(BaseModel):
    decision: Literal["approve", "reject", "edit"]
    outcome: str = Field(
        description="`approved`/`pending` (more approvers needed)/`rejected` for a decision; "
        "`awaiting_approval` or `denied` for an edit."
    )
    executed: bool = Field(default=False, description="Always false: the requesting run executes an approval.")
    approval: ApprovalDetail = Field(description="The request as it now stands (for an edit: the new one).")
    reasons: list[str] = Field(default_factory=list)


@router.get("", response_model=ApprovalList, summary="Pending approval requests")
def list_pending(
    ctx: Ctx,
    _user: Viewer,
    run_id: Annotated[Text | None, Query(max_length=200)] = None,
) -> ApprovalList:
    """Requests still waiting for a decision and not expired, oldest first."""
    return ApprovalList(approvals=[ApprovalSummary.of(r) for r in ctx.guard.approvals.list_pending(run_id=run_id)])


@router.get(
    "/{approval_id}", response_model=ApprovalDetail, summary="One approval request", responses=problem_responses(404)
)
def get_approval(ctx: Ctx, _user: Viewer, approval_id: ApprovalId) -> ApprovalDetail:
    return ApprovalDetail.of(ctx.guard.approvals.get(approval_id))


@router.post(
    "/{approval_id}",
    response_model=DecisionOut,
    summary="Approve, reject or edit a request",
    responses=problem_responses(404, 409),
)
def decide(ctx: Ctx, user: Approver, approval_id: ApprovalId, body: DecisionIn) -> DecisionOut:
    """Record the caller's decision through the tool gateway.

    Approving does **not** execute the call: execution belongs to the run that requested it, which
    resumes and calls ``ToolGateway.execute_approved`` (re-simulating first, so a network that moved
    since the approval is asked about again instead of changed). A decided request of a run
    enqueues an ``exception_run.continue`` job: a worker carries the run on.
    """
    gateway = ctx.gateway
    actor = user.actor()
    if isinstance(body, Edit):
        current = ctx.guard.approvals.get(approval_id)
        if body.expected_args_hash is not None and body.expected_args_hash != current.args_hash:
            raise Conflict(
                f"approval request {approval_id} binds other arguments than the ones you reviewed; reload it",
                id=approval_id,
            )
        run = RunLedger(run_id=current.run_id or f"api:{user.id}")
        out = gateway.edit(approval_id, body.arguments, editor=actor, run=run)
        shown = ctx.guard.approvals.get(out.approval_id or approval_id)
        return DecisionOut(decision="edit", outcome=out.status, approval=ApprovalDetail.of(shown), reasons=out.reasons)
    decided = decide_step(
        gateway,
        ctx.db,
        approval_id,
        approver=actor,
        decision=body.decision,
        reason=body.reason,
        subset=body.subset if isinstance(body, Approve) else None,
        expected_args_hash=body.expected_args_hash,
    ).request
    return DecisionOut(
        decision=body.decision,
        outcome=decided.status.value,
        approval=ApprovalDetail.of(decided),
        reasons=[body.reason] if body.reason else [],
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
