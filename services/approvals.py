"""One approval per incident: the plan-level card of a run and one person's decision on all of it.

A run's plan may park several steps (mark the DC closed, then a reroute per target): asking for one
decision per step made one incident six cards. Here the steps stay separate requests underneath,
each still bound to its own arguments and preview hash and executed once by the run, but a person
sees one card with every step, the totals and the policy's reasons, and decides it once, optionally
leaving out steps or narrowing a step to some of its orders. The CLI, the API, the console and Slack
all decide through :func:`decide_incident`, and one step at a time through :func:`decide_step`.

Deciding and carrying the run on belong together: a decision that ends a request (approved or
rejected, not waiting for more approvers) queues the job that carries its run on
(:func:`continue_later`), the same job from every way in. The CLI continues in this process instead
(``enqueue=False``); the console hands the continuation to a hook whose default is
:func:`continue_later`. A call proposed outside any run (an MCP client's write, run id ``mcp:...``)
has no run to carry it on, so the decision that approves it carries it out, once, through the
gateway (:func:`carry_on`).

What this module must never do: execute a call (the run does, after re-simulating), or decide a
step the approver may not decide (every check runs before the first decision is written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.db import Database
from core.errors import Conflict, PolicyDenied, ValidationFailed
from core.outbox import Job, enqueue_continue
from guardrails.approvals import ApprovalRequest, ApprovalStatus
from guardrails.audit import EventType
from guardrails.calls import Actor
from tools.gateway import Outcome, RunLedger, ToolGateway

DIRECT_RUN_PREFIX = "mcp:"
"""Run ids of calls proposed outside any exception run (an MCP client's writes are charged to
``mcp:<person>:<session>``): no run will carry them on, so the decision that approves one does."""


class StepCard(BaseModel):
    approval_id: str
    tool: str
    summary: str
    affected: int
    cost_delta: str | None
    late_before: int | None
    late_after: int | None
    reasons: list[str] = Field(default_factory=list, description="Why policy wants a person for this step.")
    items: list[str] = Field(default_factory=list, description="The orders this step would change.")


class IncidentCard(BaseModel):
    """Everything a person decides for one run, on one card."""

    run_id: str
    steps: list[StepCard]
    orders: int = Field(description="Distinct orders the pending steps would change.")
    cost_delta: str = Field(description="Sum of the steps' predicted cost changes (USD).")
    late_before: int
    late_after: int
    required_roles: list[str]
    reasons: list[str]


def _num(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _step(req: ApprovalRequest, reasons: Sequence[str]) -> StepCard:
    preview: dict[str, Any] = req.preview if isinstance(req.preview, dict) else {}
    rows = [i for i in preview.get("items") or [] if isinstance(i, dict)]
    cost = preview.get("cost_delta")
    return StepCard(
        approval_id=req.id,
        tool=req.tool,
        summary=str(preview.get("summary", "")),
        affected=sum(1 for i in rows if i.get("ok")) if rows else len(req.items),
        cost_delta=str(cost) if cost is not None else None,
        late_before=_num(preview.get("late_before")),
        late_after=_num(preview.get("late_after")),
        reasons=list(reasons),
        items=list(req.items),
    )


def incident_card(gateway: ToolGateway, run_id: str) -> IncidentCard:
    """The run's pending steps as one card; :class:`Conflict` when nothing of it waits for a person."""
    pending = gateway.guard.approvals.list_pending(run_id=run_id)
    if not pending:
        raise Conflict(f"run {run_id} has no step waiting for approval", run_id=run_id)
    reasons_by_call = _policy_reasons(gateway, pending)
    steps = [_step(r, reasons_by_call.get(r.call_id or "", [])) for r in pending]
    total = Decimal(0)
    for s in steps:
        try:
            total += Decimal(s.cost_delta or "0")
        except InvalidOperation:
            continue
    roles = sorted({role for r in pending for role in r.required_roles})
    return IncidentCard(
        run_id=run_id,
        steps=steps,
        orders=len({i for s in steps for i in s.items}),
        cost_delta=str(total),
        late_before=sum(s.late_before or 0 for s in steps),
        late_after=sum(s.late_after or 0 for s in steps),
        required_roles=roles,
        reasons=sorted({why for s in steps for why in s.reasons}),
    )


def _policy_reasons(gateway: ToolGateway, pending: Sequence[ApprovalRequest]) -> dict[str, list[str]]:
    """The policy's reasons, from each step's ``awaiting_approval`` audit row."""
    out: dict[str, list[str]] = {}
    for req in pending:
        if req.call_id is None:
            continue
        rows = gateway.guard.audit.list(call_id=req.call_id, event_type="awaiting_approval")
        if rows:
            out[req.call_id] = list(rows[-1].reasons)
    return out


class IncidentDecision(BaseModel):
    run_id: str
    decision: Literal["approve", "reject"]
    decided: list[dict[str, Any]] = Field(description="approval id, tool, the step's new status, orders approved")
    continued: bool = Field(description="Whether a job was queued to carry the run on.")


def decide_incident(
    gateway: ToolGateway,
    db: Database,
    run_id: str,
    *,
    approver: Actor,
    decision: Literal["approve", "reject"],
    reason: str | None = None,
    only: Mapping[str, Sequence[str]] | None = None,
    leave_out: Sequence[str] = (),
    enqueue: bool = True,
) -> IncidentDecision:
    """Decide every pending step of ``run_id`` at once.

    ``only`` narrows a step (approval id) to some of its orders; ``leave_out`` names steps the
    approver rejects while approving the rest (the reason says so). Everything is checked first
    (roles, self-approval, unknown step ids, orders outside a step), so a refused decision writes
    nothing. With ``enqueue`` a continuation job carries the run on (a worker executes what was
    approved); the CLI passes False and continues in-process.
    """
    pending = gateway.guard.approvals.list_pending(run_id=run_id)
    if not pending:
        raise Conflict(f"run {run_id} has no step waiting for approval", run_id=run_id)
    _check_decision(
        pending, run_id, approver=approver, decision=decision, reason=reason, only=only, leave_out=leave_out
    )
    decided: list[dict[str, Any]] = []
    last: ApprovalRequest | None = None
    for req in pending:
        last = _decide_one(
            gateway, req, approver=approver, decision=decision, reason=reason, only=only, leave_out=leave_out
        )
        decided.append(
            {
                "approval_id": last.id,
                "tool": last.tool,
                "status": last.status.value,
                "orders": len(last.approved_items) if last.approved_items else len(last.items),
            }
        )
    continued = enqueue and last is not None and _carry_run_on(gateway, db, last, decided)
    return IncidentDecision(run_id=run_id, decision=decision, decided=decided, continued=continued)


def _check_decision(
    pending: Sequence[ApprovalRequest],
    run_id: str,
    *,
    approver: Actor,
    decision: Literal["approve", "reject"],
    reason: str | None,
    only: Mapping[str, Sequence[str]] | None,
    leave_out: Sequence[str],
) -> None:
    """Refuse the whole decision before any of it is written: unknown step ids, a rejection without
    a reason, or any step this approver may not decide (so an incident is never half-decided)."""
    by_id = {r.id: r for r in pending}
    unknown = sorted((set(only or {}) | set(leave_out)) - set(by_id))
    if unknown:
        raise ValidationFailed(f"not a pending step of run {run_id}: {', '.join(unknown)}", run_id=run_id)
    if decision == "reject" and not (reason and reason.strip()):
        raise ValidationFailed("a rejection needs a reason")
    for req in pending:
        _check_step(req, run_id, approver=approver, only=only)


def _check_step(
    req: ApprovalRequest, run_id: str, *, approver: Actor, only: Mapping[str, Sequence[str]] | None
) -> None:
    """One step's checks: the approver holds its roles, is not approving their own request (unless
    policy allows it), and narrows it only to orders the step covers."""
    missing = sorted(set(req.required_roles) - set(approver.roles))
    if missing:
        raise PolicyDenied(f"{approver.id} lacks the role(s) {', '.join(missing)} to decide run {run_id}")
    if req.requester_id == approver.id and not req.requester_may_approve:
        raise PolicyDenied(f"{approver.id} asked for run {run_id}'s changes and may not approve them")
    outside = sorted(set((only or {}).get(req.id, [])) - set(req.items))
    if outside:
        raise ValidationFailed(f"step {req.id} does not cover {', '.join(outside[:5])}", approval_id=req.id)


def _decide_one(
    gateway: ToolGateway,
    req: ApprovalRequest,
    *,
    approver: Actor,
    decision: Literal["approve", "reject"],
    reason: str | None,
    only: Mapping[str, Sequence[str]] | None,
    leave_out: Sequence[str],
) -> ApprovalRequest:
    """Write one step's decision: a rejection (the incident's, or this step left out of an approval,
    with a default reason so the audit says why) or an approval, narrowed to ``only``'s orders."""
    if decision == "reject" or req.id in leave_out:
        why = reason if decision == "reject" else (reason or "left out by the approver")
        return gateway.decide(req.id, approver=approver, decision="reject", reason=why)
    subset = list((only or {}).get(req.id, [])) or None
    return gateway.decide(req.id, approver=approver, decision="approve", subset=subset)


def _carry_run_on(gateway: ToolGateway, db: Database, last: ApprovalRequest, decided: Sequence[dict[str, Any]]) -> bool:
    """Carry the run on after its decision: a call outside any run is carried out here, step by step
    (no run will); a run's continuation is queued for a worker. True when something carried on."""
    if is_direct(last):
        for step in decided:
            carry_on(gateway, db, gateway.guard.approvals.get(step["approval_id"]))
        return True
    return continue_later(db, last) is not None


# --- one step -------------------------------------------------------------------------------------


class StepDecision(BaseModel):
    request: ApprovalRequest = Field(description="The request as it now stands.")
    continue_job: str | None = Field(description="The job queued to carry the run on (None: nothing queued).")
    executed: str | None = Field(
        default=None, description="A call made outside any run (MCP): what carrying it out came to (executed, ...)."
    )


def decide_step(
    gateway: ToolGateway,
    db: Database,
    approval_id: str,
    *,
    approver: Actor,
    decision: Literal["approve", "reject"],
    reason: str | None = None,
    subset: Sequence[str] | None = None,
    expected_args_hash: str | None = None,
    enqueue: bool = True,
) -> StepDecision:
    """One person's decision on one request, through the gateway's checks (roles, self-approval,
    the arguments the approver saw); with ``enqueue``, a decision that ends the request queues the
    job that carries its run on. Approving never executes: the run does, after re-simulating."""
    decided = gateway.decide(
        approval_id,
        approver=approver,
        decision=decision,
        reason=reason,
        subset=list(subset) if subset is not None else None,
        expected_args_hash=expected_args_hash,
    )
    if not enqueue:
        return StepDecision(request=decided, continue_job=None)
    if is_direct(decided):
        outcome = carry_out_direct(gateway, decided)
        return StepDecision(request=decided, continue_job=None, executed=outcome.status if outcome else None)
    job = continue_later(db, decided)
    return StepDecision(request=decided, continue_job=job.id if job is not None else None)


def is_direct(req: ApprovalRequest) -> bool:
    """Whether ``req`` was proposed outside any exception run (an MCP client's write)."""
    return (req.run_id or "").startswith(DIRECT_RUN_PREFIX)


def carry_on(gateway: ToolGateway, db: Database, req: ApprovalRequest) -> str:
    """Carry on after a decision that may have ended ``req``, from any way in (console, API, Slack):
    a run's request queues its run's continuation; a direct (MCP) call is carried out now. Returns a
    line for the person who decided."""
    if is_direct(req):
        outcome = carry_out_direct(gateway, req)
        if outcome is None:
            return "nothing to carry out" if req.status != ApprovalStatus.PENDING else "it waits for more approvers"
        done = len((outcome.result or {}).get("done") or [])
        return f"{outcome.tool} {outcome.status}: {done} changed"
    job = continue_later(db, req)
    if job is None:  # still waiting for approvers, or not a run's request: nothing to carry on
        return "the run continues once the request is decided"
    return f"the run continues when its worker picks up job {job.id}"


def carry_out_direct(gateway: ToolGateway, req: ApprovalRequest) -> Outcome | None:
    """Execute an approved direct call exactly as approved, as the agent that proposed it (the audit
    keeps naming the MCP client) on behalf of its requester. Keyed by the approval, so a second
    decision path, a repeated click or the client's own ``execute_approved`` replays, never repeats.
    None when ``req`` is not approved (still pending, rejected, expired): nothing runs."""
    if req.status != ApprovalStatus.APPROVED:
        return None
    return gateway.execute_approved(req.id, actor=_proposer(gateway, req), run=RunLedger(run_id=req.run_id or ""))


def _proposer(gateway: ToolGateway, req: ApprovalRequest) -> Actor:
    """Who proposed ``req``, from its ``proposed`` audit row (``agent:<id>``)."""
    rows = gateway.guard.audit.list(call_id=req.call_id, event_type=EventType.PROPOSED) if req.call_id else []
    kind, _, ident = ((rows[0].actor if rows else None) or "").partition(":")
    if kind == "agent" and ident:
        return Actor(kind="agent", id=ident, on_behalf_of=req.requester_id)
    return Actor(kind="agent", id=f"{DIRECT_RUN_PREFIX}unknown", on_behalf_of=req.requester_id)


def continue_later(db: Database, req: ApprovalRequest) -> Job | None:
    """Queue the job that carries ``req``'s run on, when the decision just recorded ended ``req``
    (approved or rejected; a request still waiting for approvers, or made outside a run, queues
    nothing). Keyed by the decision, so a repeated request or click adds no second job."""
    if req.run_id is None or req.status == ApprovalStatus.PENDING:
        return None
    return enqueue_continue(db, run_id=req.run_id, approval_id=req.id, decision_no=len(req.decisions))
