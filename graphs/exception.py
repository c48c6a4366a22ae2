"""The exception-run graph: triage -> gather facts -> plan -> simulate -> policy -> approval gate ->
execute -> verify -> report, as a LangGraph ``StateGraph`` with durable checkpoints.

Every write goes through :class:`~tools.gateway.ToolGateway`, under an idempotency key derived from
(run id, step index, tool, arguments digest) when proposed and the approval's id when executed
after approval. That is what makes every node safe to re-run: a run that crashed anywhere and is
resumed replays what already happened instead of doing it again, and an approval recorded before
the crash is still there afterwards (it lives in the approval store, not in process memory).

What this module must never do: execute a write outside the gateway, hold tables in the graph
state (ids, plan, decisions, outcomes only), read settings or globals (its dependencies arrive as
the LangGraph runtime context), or end a run without a clear final status.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, TypedDict, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from pydantic import BaseModel, Field, ValidationError, model_validator

from agents.plan import Alert, ExceptionKind, Plan, PlannedCall, Planner, Scope, TokenBudgetedPlanner, Triage
from agents.read_loop import GatewayReads, ReadingPlanner
from agents.triage import triage_alert, triage_goal
from agents.verify import VerificationReport, verify
from core import tracing
from core.errors import Conflict, DomainError, NotFound, PolicyDenied, ValidationFailed
from graphs.report import RunReport
from graphs.runs import RunStore
from guardrails.approvals import ApprovalRequest, ApprovalStatus
from guardrails.approvals import args_hash as approval_args_hash
from guardrails.calls import Actor, digest_arguments
from tools.base import Preview, ToolArgs, ToolEnv, WriteTool
from tools.gateway import Outcome, Proposer, RunLedger, ToolGateway

# --- configuration ----------------------------------------------------------------------------------

EXCEPTION_WRITE_TOOLS: frozenset[str] = frozenset(
    {"reroute_orders", "change_carrier", "expedite_orders", "hold_orders", "release_holds"}
)
READ_TOOLS: frozenset[str] = frozenset(
    {"get_orders", "search_orders", "get_node_load", "get_inventory", "get_carrier_status", "get_rate_quotes"}
)
CANCEL_KINDS: frozenset[ExceptionKind] = frozenset()
"""Exception kinds whose plans may cancel orders. None today: no playbook cancels, so no run may;
add a kind here only together with a playbook that needs it."""
NODE_STATUS_KINDS: frozenset[ExceptionKind] = frozenset({ExceptionKind.NODE_CLOSURE})
"""Exception kinds whose plans may mark a node's status: a closure marks its node closed."""


def allowed_tools(kind: ExceptionKind, base: frozenset[str] = EXCEPTION_WRITE_TOOLS) -> frozenset[str]:
    """The write tools an exception run of ``kind`` may use."""
    extra = {"cancel_orders"} if kind in CANCEL_KINDS else set()
    if kind in NODE_STATUS_KINDS or kind is ExceptionKind.UNDO:  # an undo reopens what a closure closed
        extra.add("set_node_status")
    if kind is ExceptionKind.STOCKOUT_RISK or kind is ExceptionKind.UNDO:  # an undo moves transferred stock back
        extra.add("transfer_inventory")
    return base | extra


@dataclass(frozen=True)
class Budgets:
    """Per-run limits, checked by the graph before it asks the gateway for more."""

    max_steps: int = 20
    max_tool_calls: int = 200
    max_orders_touched: int = 20_000
    max_wall_s: float = 900.0
    """Seconds of work (time spent in nodes), not counting time parked waiting for a person."""
    max_tokens: int | None = None
    """Model tokens the planner may spend on this run (all repair rounds); past it the planner falls
    back to the playbooks. ``None``: no limit beyond the planner's own."""


TriageAlertFn = Callable[[Alert, ToolEnv], Triage]
TriageGoalFn = Callable[[str, ToolEnv], Triage]
VerifyFn = Callable[[Plan, list[Outcome | None], ToolEnv, Scope], VerificationReport]


def verify_plan(plan: Plan, outcomes: list[Outcome | None], env: ToolEnv, scope: Scope) -> VerificationReport:
    """The default verifier: re-read the network and compare it with what the plan intended."""
    return verify(plan, outcomes, env, scope=scope)


@dataclass(frozen=True)
class RunDeps:
    """Everything a node may use, handed in as the LangGraph runtime context (never a global)."""

    gateway: ToolGateway
    planner: Planner
    triage_alert: TriageAlertFn = triage_alert
    triage_goal: TriageGoalFn = triage_goal
    verify: VerifyFn | None = verify_plan
    runs: RunStore | None = None
    budgets: Budgets = field(default_factory=Budgets)
    write_tools: frozenset[str] = EXCEPTION_WRITE_TOOLS
    requested_by: str = "operator"
    """The person the run acts for: they may not approve its calls."""

    @property
    def env(self) -> ToolEnv:
        return self.gateway.env


# --- state ------------------------------------------------------------------------------------------

StepStatus = Literal[
    "planned",
    "denied",
    "awaiting_approval",
    "approved",
    "rejected",
    "expired",
    "superseded",
    "executed",
    "replayed",
    "failed",
    "skipped",
]
RunStatus = Literal["completed", "partially_completed", "failed", "rejected", "nothing_to_do"]
DONE_STEP = frozenset({"executed", "replayed"})


class StepRecord(TypedDict, total=False):
    """One planned call and what became of it (JSON only: it lives in checkpoints)."""

    index: int
    tool: str
    key: str
    args_digest: str
    reason: str
    status: StepStatus
    approval_id: str | None
    call_id: str | None
    preview: dict[str, Any] | None
    reasons: list[str]
    done: list[str]
    skipped: dict[str, str]
    left_out: list[str]
    """Items (orders) the approver left out of a subset approval: left in place by their choice."""


def _add(left: list[Any], right: list[Any]) -> list[Any]:
    return [*left, *right]


class RunState(TypedDict, total=False):
    run_id: str
    source: Literal["alert", "goal"]
    alert: dict[str, Any] | None
    goal: str | None
    triage: dict[str, Any] | None
    facts: dict[str, Any]
    plan: dict[str, Any] | None
    steps: list[StepRecord]
    pending_decisions: list[dict[str, Any]]
    approver: dict[str, Any] | None
    decisions: Annotated[list[dict[str, Any]], _add]
    notes: Annotated[list[str], _add]
    ledger: dict[str, Any]
    active_s: float
    verification: dict[str, Any] | None
    stop: str | None
    """Why the run stopped early (a budget, a refused plan); the report then says ``failed``."""
    status: str
    report: dict[str, Any] | None


# --- resume payload ---------------------------------------------------------------------------------


class ApprovalDecisionIn(BaseModel):
    approval_id: str = Field(min_length=1)
    decision: Literal["approve", "reject"]
    subset: list[str] | None = None
    reason: str | None = None


class ApproverIn(BaseModel):
    id: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(default_factory=list)


class ResumeIn(BaseModel):
    """What resumes a run parked for approval: a person's decisions (the CLI sends these on their
    behalf), or nothing at all — then the run only reads the approval store, where the decisions
    were recorded elsewhere (HTTP API, Slack, console; see :meth:`ExceptionRuns.continue_run`)."""

    decisions: list[ApprovalDecisionIn] = Field(default_factory=list)
    approver: ApproverIn | None = None

    @model_validator(mode="after")
    def _decisions_need_an_approver(self) -> ResumeIn:
        if self.decisions and self.approver is None:
            raise ValueError("decisions need the approver who made them")
        return self


# --- helpers ----------------------------------------------------------------------------------------


def step_key(run_id: str, index: int, tool: str, args: Mapping[str, Any]) -> str:
    """The idempotency key of a planned step: the same run, step and arguments -> the same key."""
    return f"run:{run_id}:step:{index}:{tool}:{digest_arguments(args)[:24]}"


def _deps(runtime: Runtime[RunDeps]) -> RunDeps:
    deps = runtime.context
    if not isinstance(deps, RunDeps):
        raise ValidationFailed("the exception graph needs RunDeps as its runtime context")
    return deps


def _agent(state: RunState, deps: RunDeps) -> Actor:
    return Actor(kind="agent", id=state["run_id"], on_behalf_of=deps.requested_by)


def _ledger(state: RunState) -> RunLedger:
    raw = state.get("ledger") or {}
    return RunLedger(
        run_id=state["run_id"],
        tool_calls=int(raw.get("tool_calls", 0)),
        orders_touched=int(raw.get("orders_touched", 0)),
        spend=Decimal(str(raw.get("spend", "0"))),
    )


def _ledger_out(run: RunLedger) -> dict[str, Any]:
    return {"tool_calls": run.tool_calls, "orders_touched": run.orders_touched, "spend": str(run.spend)}


def _proposer(state: RunState) -> Proposer:
    plan = state.get("plan") or {}
    return Proposer(model=plan.get("model"), prompt_version=plan.get("prompt_version"))


def _preview_card(outcome: Outcome) -> dict[str, Any] | None:
    p = outcome.preview
    if p is None:
        return None
    return {
        "summary": p.summary,
        "cost_delta": str(p.cost_delta),
        "late_before": p.late_before,
        "late_after": p.late_after,
        "affected": len(p.affected),
        "skipped": len(p.skipped),
    }


def _apply_outcome(step: StepRecord, outcome: Outcome) -> StepRecord:
    new: StepRecord = {**step, "call_id": outcome.call_id, "reasons": list(outcome.reasons)}
    card = _preview_card(outcome)
    if card is not None:
        new["preview"] = card
    if outcome.status in ("executed", "replayed"):
        result = outcome.result or {}
        new["status"] = outcome.status
        new["done"] = list(result.get("done", []))
        new["skipped"] = dict(result.get("skipped", {}))
    elif outcome.status == "awaiting_approval":
        new["status"] = "awaiting_approval"
        new["approval_id"] = outcome.approval_id
    elif outcome.status == "denied":
        new["status"] = "denied"
    else:
        new["status"] = "failed"
    return new


class NodeFn(Protocol):
    def __call__(self, state: RunState, *, runtime: Runtime[RunDeps]) -> dict[str, Any]: ...


def _timed(fn: NodeFn) -> NodeFn:
    """Count the time a node works toward the run's wall-time budget."""

    def node(state: RunState, *, runtime: Runtime[RunDeps]) -> dict[str, Any]:
        started = time.monotonic()
        update = fn(state, runtime=runtime)
        return {**update, "active_s": float(state.get("active_s", 0.0)) + (time.monotonic() - started)}

    node.__name__ = getattr(fn, "__name__", "node")
    return node


def _over_wall(state: RunState, deps: RunDeps) -> bool:
    return float(state.get("active_s", 0.0)) > deps.budgets.max_wall_s


def _set_status(deps: RunDeps, run_id: str, status: str, **kw: Any) -> None:
    if deps.runs is not None:
        deps.runs.update(run_id=run_id, status=status, **kw)


# --- nodes ------------------------------------------------------------------------------------------


def triage_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    if state.get("source") == "alert":
        alert = Alert.model_validate(state.get("alert") or {})
        triage = deps.triage_alert(alert, deps.env)
    else:
        triage = deps.triage_goal(state.get("goal") or "", deps.env)
    return {"triage": triage.model_dump(mode="json"), "notes": [f"finding: {f}" for f in triage.findings]}


def gather_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Read what the planner and the report need, through the gateway (reads are audited too)."""
    deps = _deps(runtime)
    triage = Triage.model_validate(state["triage"])
    run = _ledger(state)
    agent = _agent(state, deps)
    gw = deps.gateway
    facts: dict[str, Any] = {}
    scope = triage.scope
    load = gw.read("get_node_load", {"node_ids": scope.node_ids or None}, actor=agent, run=run)
    if load.result is not None:
        facts["nodes"] = [
            {k: n.get(k) for k in ("node_id", "status", "backlog_days", "unreleased_orders")}
            for n in load.result.get("nodes", [])
            if not scope.node_ids or n.get("node_id") in scope.node_ids
        ]
    if scope.carrier_ids:
        carriers = gw.read("get_carrier_status", {"carrier_ids": scope.carrier_ids}, actor=agent, run=run)
        if carriers.result is not None:
            facts["carriers"] = [
                {k: c.get(k) for k in ("id", "status", "outage_states")} for c in carriers.result.get("carriers", [])
            ]
    query: dict[str, Any] = {"limit": 1}
    if scope.node_ids:
        query["node_ids"] = scope.node_ids
    if scope.skus:
        query["skus"] = scope.skus
    if scope.node_ids or scope.skus:
        found = gw.read("search_orders", query, actor=agent, run=run)
        if found.result is not None:
            facts["orders_in_scope"] = found.result.get("total")
            facts["by_status"] = found.result.get("by_status")
    return {"facts": facts, "ledger": _ledger_out(run)}


INCIDENT_TOOLS: dict[ExceptionKind, str] = {
    ExceptionKind.NODE_CLOSURE: "reroute_orders",
    ExceptionKind.CARRIER_OUTAGE: "change_carrier",
}
"""The call whose preview must be priced in the incident's world, per kind of incident."""


def with_incident(call: PlannedCall, triage: Triage) -> PlannedCall:
    """``call`` carrying the incident the run knows (a closed node, a carrier down) unless its
    planner already said it: whatever planned it, the preview's "before" is then the world with the
    node or lane down, even while the systems do not show it. Only the preview depends on it."""
    if INCIDENT_TOOLS.get(triage.kind) != call.tool or "incident" in call.args:
        return call
    scope = triage.scope
    if triage.kind is ExceptionKind.NODE_CLOSURE and scope.node_ids:
        incident: dict[str, Any] = {"closed_node_ids": list(scope.node_ids)}
    elif triage.kind is ExceptionKind.CARRIER_OUTAGE and scope.carrier_ids:
        incident = {"carrier_outages": {c: sorted(scope.states) for c in scope.carrier_ids}}
    else:
        return call
    return call.model_copy(update={"args": {**call.args, "incident": incident}})


def make_plan(
    deps: RunDeps, triage: Triage, *, run: RunLedger | None = None, actor: Actor | None = None
) -> tuple[Plan, list[str]]:
    """The plan a run of ``triage`` carries, and notes on what was refused: the planner's calls
    (within the token budget), only tools on this kind's allow-list, each with the incident the run
    knows. The run and ``orderops run --dry-run`` both plan through here, so they preview the same.
    A planner that reads (the LLM's agent loop) reads through the gateway as ``actor`` on ``run``'s
    ledger: its reads are in the run's audit trail and count against the run's budgets."""
    planner = deps.planner
    if isinstance(planner, ReadingPlanner):
        ledger = run or RunLedger(run_id="dry-run")  # `orderops run --dry-run`: its reads audited as such
        who = actor or Actor(kind="agent", id=ledger.run_id, on_behalf_of=deps.requested_by)
        reads = GatewayReads(deps.gateway, who, ledger)
        plan = planner.plan_reading(triage, deps.env, max_tokens=deps.budgets.max_tokens, reads=reads)
    elif isinstance(planner, TokenBudgetedPlanner):
        plan = planner.plan_within(triage, deps.env, max_tokens=deps.budgets.max_tokens)
    else:
        plan = planner.plan(triage, deps.env)
    allow = allowed_tools(triage.kind, deps.write_tools)
    notes: list[str] = []
    if plan.fallback_reason:
        notes.append(f"planner fell back ({plan.planner}): {plan.fallback_reason}")
    kept = []
    for call in plan.steps:
        if call.tool in allow:
            kept.append(call)
        else:
            notes.append(f"refused planned call {call.tool}: not on this run's allow-list ({', '.join(sorted(allow))})")
    return plan.model_copy(update={"steps": [with_incident(c, triage) for c in kept]}), notes


def simulate_call(deps: RunDeps, call: PlannedCall) -> tuple[WriteTool[Any], ToolArgs, Preview] | str:
    """Validate ``call``'s arguments and simulate it on the twin; why not, when it cannot be."""
    tool = deps.gateway.writes.get(call.tool)
    if tool is None:
        return f"unknown write tool {call.tool!r}"
    try:
        args = tool.args_model.model_validate(call.args)
        return tool, args, tool.simulate(deps.env, args)
    except ValidationError as exc:
        return f"malformed arguments: {exc.errors()[0]['msg']}"
    except DomainError as exc:
        return f"cannot simulate: {exc.message}"


def preview_numbers(preview: Preview) -> dict[str, Any]:
    """What a step's card shows of its preview."""
    return {
        "summary": preview.summary,
        "cost_delta": str(preview.cost_delta),
        "late_before": preview.late_before,
        "late_after": preview.late_after,
        "affected": len(preview.affected),
        "skipped": len(preview.skipped),
    }


def plan_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    run = _ledger(state)
    plan, notes = make_plan(deps, Triage.model_validate(state["triage"]), run=run, actor=_agent(state, deps))
    kept = plan.steps
    steps: list[StepRecord] = [
        {
            "index": i,
            "tool": c.tool,
            "key": step_key(state["run_id"], i, c.tool, c.args),
            "args_digest": digest_arguments(c.args),
            "reason": c.reason,
            "status": "planned",
            "approval_id": None,
            "call_id": None,
            "preview": None,
            "reasons": [],
        }
        for i, c in enumerate(kept)
    ]
    update: dict[str, Any] = {
        "plan": plan.model_dump(mode="json"),
        "steps": steps,
        "notes": notes,
        "ledger": _ledger_out(run),
    }
    if len(kept) > deps.budgets.max_steps:
        update["stop"] = f"the plan has {len(kept)} steps; this run's budget allows {deps.budgets.max_steps}"
    if deps.runs is not None:
        deps.runs.update(run_id=state["run_id"], planner=plan.planner)
    return update


def simulate_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Each step's preview on the twin, before anything is proposed; checks the orders budget."""
    deps = _deps(runtime)
    plan = Plan.model_validate(state["plan"])
    steps = [dict(s) for s in state.get("steps", [])]
    touched = 0
    for step, call in zip(steps, plan.steps, strict=True):
        if step["status"] != "planned":
            continue
        simulated = simulate_call(deps, call)
        if isinstance(simulated, str):
            step.update(status="denied", reasons=[simulated])
            continue
        preview = simulated[2]
        touched += len(preview.affected)
        step["preview"] = preview_numbers(preview)
    update: dict[str, Any] = {"steps": steps}
    if touched > deps.budgets.max_orders_touched:
        limit = deps.budgets.max_orders_touched
        update["stop"] = f"the plan touches {touched} orders; this run's budget allows {limit}"
    return update


def policy_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Propose each step to the gateway: policy denies it, parks it for approval or runs it.

    Safe to re-run after a crash: a step that already executed replays under its key, and a step
    already parked reuses its pending request instead of asking a second time.
    """
    deps = _deps(runtime)
    plan = Plan.model_validate(state["plan"])
    run = _ledger(state)
    agent = _agent(state, deps)
    steps = [cast(StepRecord, dict(s)) for s in state.get("steps", [])]
    notes: list[str] = []
    pending = {(r.tool, r.args_hash): r.id for r in deps.gateway.guard.approvals.list_pending(run_id=state["run_id"])}
    for i, (step, call) in enumerate(zip(steps, plan.steps, strict=True)):
        if step["status"] != "planned":
            continue
        if run.tool_calls >= deps.budgets.max_tool_calls or _over_wall(state, deps):
            steps[i] = {**step, "status": "skipped", "reasons": ["run budget (tool calls or wall time) exhausted"]}
            notes.append(f"step {i} not proposed: run budget exhausted")
            continue
        existing = _pending_for(deps, call.tool, call.args, pending)
        if existing is not None:
            steps[i] = {**step, "status": "awaiting_approval", "approval_id": existing}
            continue
        outcome = deps.gateway.propose(
            call.tool, call.args, actor=agent, run=run, idempotency_key=step["key"], proposer=_proposer(state)
        )
        steps[i] = _apply_outcome(step, outcome)
    return {"steps": steps, "ledger": _ledger_out(run), "notes": notes}


def _pending_for(
    deps: RunDeps, tool_name: str, args: Mapping[str, Any], pending: dict[tuple[str, str], str]
) -> str | None:
    tool = deps.gateway.writes.get(tool_name)
    if tool is None:
        return None
    try:
        normal = tool.args_model.model_validate(dict(args)).model_dump(mode="json")
    except ValidationError:
        return None
    return pending.get((tool_name, approval_args_hash(normal)))


def approval_gate_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Park the run until a person decides. Pure up to ``interrupt``: LangGraph re-runs it on resume."""
    deps = _deps(runtime)
    waiting = [s for s in state.get("steps", []) if s.get("status") == "awaiting_approval"]
    cards = []
    for s in waiting:
        approval_id = s.get("approval_id") or ""
        try:
            req = deps.gateway.guard.approvals.get(approval_id)
            roles, args_hash, items = req.required_roles, req.args_hash, len(req.items)
        except NotFound:
            roles, args_hash, items = [], "", 0
        cards.append(
            {
                "approval_id": approval_id,
                "step": s.get("index"),
                "tool": s.get("tool"),
                "preview": s.get("preview"),
                "reasons": s.get("reasons", []),
                "required_roles": roles,
                "args_hash": args_hash,
                "items": items,
            }
        )
    # The runs index is set to ``awaiting_approval`` by ExceptionRuns once the interrupt is
    # checkpointed, not here: this node re-runs on every resume, and writing the status here would
    # hand the run back to a second continuer while the first is still executing it.
    answer = interrupt({"run_id": state["run_id"], "approvals": cards})
    try:
        resume = ResumeIn.model_validate(answer)
    except ValidationError as exc:
        raise ValidationFailed(f"resume payload is malformed: {exc.errors()[0]['msg']}") from exc
    return {
        "pending_decisions": [d.model_dump(mode="json") for d in resume.decisions],
        "approver": resume.approver.model_dump(mode="json") if resume.approver is not None else None,
    }


def decisions_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Record the decisions through the gateway. Re-runnable: a request already decided is read,
    not decided again."""
    deps = _deps(runtime)
    approvals = deps.gateway.guard.approvals
    raw = state.get("approver") or {}
    approver = Actor(kind="user", id=str(raw.get("id", "unknown")), roles=frozenset(raw.get("roles", [])))
    by_id = {d["approval_id"]: d for d in state.get("pending_decisions", [])}
    steps = [cast(StepRecord, dict(s)) for s in state.get("steps", [])]
    notes: list[str] = []
    log: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        approval_id = step.get("approval_id")
        if step.get("status") != "awaiting_approval" or approval_id is None:
            continue
        d = by_id.get(approval_id)
        if d is not None:
            _decide_here(deps, approval_id, approver, d, notes)
            log.append({**d, "approver": approver.id})
        req = _current_request(approvals.get, approval_id)
        if req.status != ApprovalStatus.PENDING and d is None:
            # Decided elsewhere (HTTP API, Slack, console): read into the report, not decided again.
            log.extend(
                {
                    "approval_id": req.id,
                    "decision": x.decision.value,
                    "approver": x.approver_id,
                    "reason": x.reason,
                    "via": "approval store",
                }
                for x in req.decisions
            )
        steps[i] = _step_after(step, req)
    _set_status(deps, state["run_id"], "running")
    return {"steps": steps, "decisions": log, "notes": notes, "pending_decisions": []}


def _decide_here(deps: RunDeps, approval_id: str, approver: Actor, d: dict[str, Any], notes: list[str]) -> None:
    """Record a decision given with the resume, unless the request is decided already; a refused
    decision (not an approver, a conflict) is a note on the run, not a failure."""
    if deps.gateway.guard.approvals.get(approval_id).status != ApprovalStatus.PENDING:
        return
    try:
        deps.gateway.decide(
            approval_id,
            approver=approver,
            decision=d["decision"],
            reason=d.get("reason") or ("rejected" if d["decision"] == "reject" else None),
            subset=d.get("subset"),
        )
    except (PolicyDenied, Conflict, ValidationFailed) as exc:
        notes.append(f"decision on {approval_id} by {approver.id} refused: {exc.message}")


def _step_after(step: StepRecord, req: ApprovalRequest) -> StepRecord:
    """The step as its (current) approval request leaves it: approved (with what a subset approval
    left out), rejected, expired or superseded; still waiting otherwise."""
    if req.id != step.get("approval_id"):
        step = cast(StepRecord, {**step, "approval_id": req.id})
    if req.status == ApprovalStatus.APPROVED:
        return cast(StepRecord, {**step, "status": "approved", "left_out": _left_out(req)})
    if req.status == ApprovalStatus.REJECTED:
        reasons = [x.reason for x in req.decisions if x.reason]
        return cast(StepRecord, {**step, "status": "rejected", "reasons": reasons or ["rejected"]})
    if req.status == ApprovalStatus.EXPIRED:
        return cast(StepRecord, {**step, "status": "expired", "reasons": ["the approval request expired"]})
    if req.status == ApprovalStatus.SUPERSEDED:
        return cast(StepRecord, {**step, "status": "superseded", "reasons": ["the approval request was superseded"]})
    return step


def _left_out(req: ApprovalRequest) -> list[str]:
    """The items of an approved request its approver did not approve (a subset approval)."""
    if req.approved_items is None:
        return []
    approved = set(req.approved_items)
    return [i for i in req.items if i not in approved]


def _current_request(get: Callable[[str], ApprovalRequest], approval_id: str) -> ApprovalRequest:
    """The request that stands for ``approval_id`` now: an edited request is superseded by its
    successor, which is followed (a bounded chain) to the one a person may still decide or did."""
    req = get(approval_id)
    for _ in range(20):
        if req.status != ApprovalStatus.SUPERSEDED or not req.superseded_by_id:
            break
        req = get(req.superseded_by_id)
    return req


def execute_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Execute every approved step exactly as approved. Re-runnable: each step's idempotency key is
    its approval's id, so a step that ran before a crash replays its first result."""
    deps = _deps(runtime)
    run = _ledger(state)
    agent = _agent(state, deps)
    steps = [cast(StepRecord, dict(s)) for s in state.get("steps", [])]
    for i, step in enumerate(steps):
        approval_id = step.get("approval_id")
        if step.get("status") != "approved" or approval_id is None:
            continue
        try:
            outcome = deps.gateway.execute_approved(approval_id, actor=agent, run=run, proposer=_proposer(state))
        except (Conflict, NotFound) as exc:
            steps[i] = {**step, "status": "failed", "reasons": [exc.message]}
            continue
        steps[i] = _apply_outcome(step, outcome)
    return {"steps": steps, "ledger": _ledger_out(run)}


def verify_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    """Re-read the network and check it against the plan (only reads; skipped if nothing ran)."""
    deps = _deps(runtime)
    steps = state.get("steps", [])
    if deps.verify is None or state.get("plan") is None or not any(s.get("status") in DONE_STEP for s in steps):
        return {"verification": None}
    plan = Plan.model_validate(state["plan"])
    triage = Triage.model_validate(state["triage"])
    report = deps.verify(plan, [_outcome_of(s) for s in steps], deps.env, triage.scope)
    failed = [c for c in report.orders if not c.ok]
    return {
        "verification": {
            "passed": report.passed,
            "reasons": report.reasons[:20],
            "orders_checked": len(report.orders),
            "orders_failed": [c.model_dump(mode="json") for c in failed[:20]],
            "steps_executed": report.steps_executed,
            "steps_not_executed": report.steps_not_executed,
            "orders_proposed": report.orders_proposed,
            "orders_approved": report.orders_approved,
            "left_by_approver": len(report.left_by_approver),
            "nodes": [c.model_dump(mode="json") for c in report.nodes],
            "stays": report.stays,
        }
    }


def _outcome_of(step: StepRecord) -> Outcome | None:
    """A step's final outcome in the gateway's terms (None: it was never proposed)."""
    status = step.get("status", "planned")
    if status == "planned":
        return None
    result = {
        "tool": step.get("tool"),
        "done": step.get("done", []),
        "skipped": step.get("skipped", {}),
        "left_out": step.get("left_out", []),
    }
    mapped: dict[str, Literal["executed", "replayed", "denied", "awaiting_approval", "failed"]] = {
        "executed": "executed",
        "replayed": "replayed",
        "awaiting_approval": "awaiting_approval",
        "approved": "awaiting_approval",
        "failed": "failed",
    }
    reasons = list(step.get("reasons", []))
    if status not in mapped:
        reasons = [f"{status}", *reasons]
    return Outcome(
        status=mapped.get(status, "denied"),
        call_id=step.get("call_id") or "",
        tool=step.get("tool", ""),
        reasons=reasons,
        approval_id=step.get("approval_id"),
        result=result if status in DONE_STEP else None,
    )


def report_node(state: RunState, runtime: Runtime[RunDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    status = final_status(state)
    report = build_report(state, status)
    if deps.runs is not None:
        deps.runs.update(run_id=state["run_id"], status=status, report=report)
    return {"status": status, "report": report}


def final_status(state: RunState) -> RunStatus:
    steps = state.get("steps", [])
    if state.get("stop"):
        return "failed"
    if not steps:
        return "nothing_to_do"
    done = [s for s in steps if s.get("status") in DONE_STEP]
    rejected = [s for s in steps if s.get("status") == "rejected"]
    verification = state.get("verification") or {}
    verified_ok = verification.get("passed", True) is not False
    if done and len(done) == len(steps) and verified_ok:
        return "completed"
    if done:
        return "partially_completed"
    if rejected and len(rejected) == len(steps):
        return "rejected"
    return "failed"


def fallback_notice(plan: Mapping[str, Any] | None) -> str | None:
    """The line every view of a run shows first when the model did not plan it (no model, endpoint
    down, output unusable after repairs, token budget spent): a fallback is never silent."""
    why = (plan or {}).get("fallback_reason")
    if not why:
        return None
    return f"FALLBACK: the model did not plan this run ({why}); the {(plan or {}).get('planner')} planner did."


def build_report(state: RunState, status: str) -> dict[str, Any]:
    """What was planned, approved, executed and verified, with a per-order outcome.

    ``fallback`` comes first: set when the model planner fell back (:func:`fallback_notice`)."""
    steps = state.get("steps", [])
    plan = state.get("plan") or {}
    per_order: dict[str, str] = {}
    for s in steps:
        for oid in s.get("done", []):
            per_order[oid] = f"{s.get('tool')}: done"
        for oid, why in (s.get("skipped") or {}).items():
            per_order.setdefault(oid, f"{s.get('tool')}: skipped ({why})")
        for oid in s.get("left_out", []):
            per_order.setdefault(oid, f"{s.get('tool')}: left in place by the approver")
    for oid, why in (plan.get("not_planned") or {}).items():
        per_order.setdefault(oid, f"not planned ({why})")
    verification = state.get("verification") or {}
    return {
        "fallback": fallback_notice(plan),
        "run_id": state.get("run_id"),
        "status": status,
        "stop": state.get("stop"),
        "source": state.get("source"),
        "triage": state.get("triage"),
        "facts": state.get("facts", {}),
        "plan": {
            "kind": plan.get("kind"),
            "summary": plan.get("summary"),
            "planner": plan.get("planner"),
            "model": plan.get("model"),
            "prompt_version": plan.get("prompt_version"),
            "fallback_reason": plan.get("fallback_reason"),
            "tokens_used": plan.get("tokens_used"),
            "model_calls": plan.get("model_calls") or [],
            "reads": plan.get("reads") or [],
            "optimizer": plan.get("optimizer"),
            "steps": len(steps),
        },
        "tokens_used": plan.get("tokens_used"),
        "steps": [
            {
                "index": s.get("index"),
                "tool": s.get("tool"),
                "reason": s.get("reason"),
                "status": s.get("status"),
                "approval_id": s.get("approval_id"),
                "preview": s.get("preview"),
                "reasons": s.get("reasons", []),
                "done": len(s.get("done", [])),
                "skipped": len(s.get("skipped") or {}),
            }
            for s in steps
        ],
        "decisions": state.get("decisions", []),
        "approval": approval_summary(state),
        "stays": verification.get("stays", {}),
        "verification": state.get("verification"),
        "ledger": state.get("ledger", {}),
        "notes": state.get("notes", []),
        "orders": dict(sorted(per_order.items())),
    }


def approval_summary(state: RunState) -> dict[str, Any] | None:
    """How much of what the plan proposed the approvers let through, in numbers and in a sentence:
    "approved 2 of 111; 109 left in place by the approver". ``None`` when no step asked a person.

    Counts orders of the steps that went to a person: those they approved (in full or a subset),
    and those they left out of a subset or rejected with their step.
    """
    plan = state.get("plan") or {}
    planned = plan.get("steps") or []
    proposed = approved = 0
    asked = False
    for s in state.get("steps", []):
        if not s.get("approval_id"):
            continue
        index = s.get("index", -1)
        args = planned[index].get("args", {}) if 0 <= index < len(planned) else {}
        n = len(args.get("order_ids", []))
        status = s.get("status")
        if status in DONE_STEP or status == "approved":
            asked = True
            proposed += n
            approved += n - len(s.get("left_out", []))
        elif status == "rejected":
            asked = True
            proposed += n
    if not asked:
        return None
    left = proposed - approved
    text = f"approved {approved} of {proposed}"
    if left:
        text += f"; {left} left in place by the approver"
    return {"proposed": proposed, "approved": approved, "left_in_place": left, "summary": text}


# --- routing ----------------------------------------------------------------------------------------


def _after_plan(state: RunState) -> str:
    return "report" if state.get("stop") or not state.get("steps") else "simulate"


def _after_simulate(state: RunState) -> str:
    return "report" if state.get("stop") else "policy"


def _next_after_actions(state: RunState) -> str:
    statuses = {s.get("status") for s in state.get("steps", [])}
    if "approved" in statuses:
        return "execute"
    if "awaiting_approval" in statuses:
        return "approval_gate"
    return "verify"


NodeWrapper = Callable[[str, NodeFn], NodeFn]
"""Wraps each node function (by node name) when the graph is built: instrumentation such as the
orchestration bench's timers. A wrapper must call the node it wraps and return its update as is."""


def _traced(name: str, fn: NodeFn) -> NodeFn:
    """The node in an ``orderops.node`` span (the node's name and the run id only)."""

    def node(state: RunState, *, runtime: Runtime[RunDeps]) -> dict[str, Any]:
        with tracing.span("orderops.node", **{"orderops.node": name, "orderops.run.id": state.get("run_id")}):
            return fn(state, runtime=runtime)

    node.__name__ = getattr(fn, "__name__", "node")
    return node


def build_graph(wrap: NodeWrapper | None = None) -> StateGraph[RunState, RunDeps, RunState, RunState]:
    def node(name: str, fn: NodeFn) -> NodeFn:
        return wrap(name, _traced(name, fn)) if wrap is not None else _traced(name, fn)

    g: StateGraph[RunState, RunDeps, RunState, RunState] = StateGraph(RunState, context_schema=RunDeps)
    g.add_node("triage", node("triage", _timed(triage_node)))
    g.add_node("gather_facts", node("gather_facts", _timed(gather_node)))
    g.add_node("plan", node("plan", _timed(plan_node)))
    g.add_node("simulate", node("simulate", _timed(simulate_node)))
    g.add_node("policy", node("policy", _timed(policy_node)))
    g.add_node("approval_gate", node("approval_gate", approval_gate_node))
    g.add_node("record_decisions", node("record_decisions", _timed(decisions_node)))
    g.add_node("execute", node("execute", _timed(execute_node)))
    g.add_node("verify", node("verify", _timed(verify_node)))
    g.add_node("report", node("report", report_node))
    g.add_edge(START, "triage")
    g.add_edge("triage", "gather_facts")
    g.add_edge("gather_facts", "plan")
    g.add_conditional_edges("plan", _after_plan, ["simulate", "report"])
    g.add_conditional_edges("simulate", _after_simulate, ["policy", "report"])
    g.add_conditional_edges("policy", _next_after_actions, ["execute", "approval_gate", "verify"])
    g.add_edge("approval_gate", "record_decisions")
    g.add_conditional_edges("record_decisions", _next_after_actions, ["execute", "approval_gate", "verify"])
    g.add_conditional_edges("execute", _next_after_actions, ["execute", "approval_gate", "verify"])
    g.add_edge("verify", "report")
    g.add_edge("report", END)
    return g


# --- driving runs -----------------------------------------------------------------------------------


class RunBusy(Conflict):
    """Another process holds the run right now; retry once its claim is released or lapses."""

    code = "run_busy"


class RunResult(BaseModel):
    """Where a run stands after a call: finished with a report, or parked with approval cards."""

    run_id: str
    status: str
    approvals: list[dict[str, Any]] = Field(default_factory=list)
    report: dict[str, Any] | None = None
    """The report as JSON (what the checkpoint and the runs index hold); read it through
    :attr:`typed_report`."""

    @property
    def waiting(self) -> bool:
        return self.status == "awaiting_approval"

    @property
    def typed_report(self) -> RunReport | None:
        """The finished run's report, typed (None while the run is parked or running)."""
        return None if self.report is None else RunReport.of(self.report)


def thread_id(run_id: str) -> str:
    return f"exception:{run_id}"


class ExceptionRuns:
    """Start, resume and inspect exception runs on one checkpointer.

    Any number of these may exist over the same checkpointer and database, in any process: the
    state that matters is in the checkpoint, the approval store and the idempotency keys.

    Who carries a parked run on is serialised through the runs index (when ``deps.runs`` is set):
    :meth:`resume` and :meth:`continue_run` first *claim* the run (its row goes from
    ``awaiting_approval`` to ``running`` in one conditional update), so two processes never drive
    the same checkpoint at once; a claim older than ``lease_s`` seconds is taken to be a dead
    process's and may be taken over. Whoever lets a run park again re-reads the approval store
    afterwards, so a decision recorded while the run was claimed is never left unanswered.
    """

    def __init__(
        self,
        deps: RunDeps,
        checkpointer: BaseCheckpointSaver[str],
        *,
        lease_s: float = 300.0,
        wrap: NodeWrapper | None = None,
    ) -> None:
        self.deps = deps
        self.checkpointer = checkpointer
        self.lease_s = lease_s
        self.graph: CompiledStateGraph[RunState, RunDeps, RunState, RunState] = build_graph(wrap).compile(
            checkpointer=checkpointer
        )

    def _config(self, run_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id(run_id)}}

    def start(self, *, alert: Alert | None = None, goal: str | None = None, run_id: str | None = None) -> RunResult:
        if (alert is None) == (goal is None):
            raise ValidationFailed("a run starts from exactly one of an alert or a goal")
        if goal is not None and not goal.strip():
            raise ValidationFailed("the goal is empty")
        run_id = run_id or f"run_{uuid.uuid4().hex[:16]}"
        if self.graph.get_state(self._config(run_id)).values:
            raise Conflict(f"run {run_id} already exists; resume it instead", run_id=run_id)
        source: Literal["alert", "goal"] = "alert" if alert is not None else "goal"
        alert_json = alert.model_dump(mode="json") if alert is not None else None
        if self.deps.runs is not None:
            self.deps.runs.create(run_id=run_id, thread_id=thread_id(run_id), kind=source, goal=goal, alert=alert_json)
        initial: RunState = {
            "run_id": run_id,
            "source": source,
            "alert": alert_json,
            "goal": goal,
            "steps": [],
            "decisions": [],
            "notes": [],
            "ledger": {},
            "active_s": 0.0,
            "stop": None,
        }
        self._drive(run_id, initial)
        return self.continue_run(run_id)

    def resume(self, run_id: str, *, decisions: list[dict[str, Any]], approver: Mapping[str, Any]) -> RunResult:
        """Answer a parked run's approval cards and carry on to the end (or the next gate)."""
        current = self.result(run_id)
        if not current.waiting:
            raise Conflict(f"run {run_id} is {current.status}, not waiting for approval", run_id=run_id)
        payload = ResumeIn.model_validate({"decisions": decisions, "approver": dict(approver)})
        if not self._claim(run_id):
            raise Conflict(f"run {run_id} is being carried on by another process; try again shortly", run_id=run_id)
        self._drive(run_id, Command(resume=payload.model_dump(mode="json")))
        return self.continue_run(run_id)

    def continue_run(self, run_id: str, *, busy_raises: bool = False) -> RunResult:
        """Carry a run parked at the approval gate on from decisions recorded elsewhere.

        For callers that decided approvals outside the graph (``POST /v1/approvals/{id}`` ->
        ``ToolGateway.decide``, Slack, the console): this records no decision itself. It reads each
        parked approval's current state from the approval store: approved steps execute (through
        ``ToolGateway.execute_approved``, exactly once: the approval id is the idempotency key),
        rejected, expired or superseded ones are recorded as such in the step outcomes, and while
        any is still pending the run parks again with only those on its cards.

        Safe to call any number of times, from any number of processes, at any point of a run's
        life: a run that is not parked, or whose approvals are all still pending, is returned as it
        stands without touching the checkpoint (so the cards stay the same); a run another process
        is carrying on right now (see the class docs) is returned as this process sees it, and that
        process picks up any decision made meanwhile. A run whose process died mid-node reads
        ``running``: :meth:`proceed` finishes it.

        With ``busy_raises`` (workers), a run another process holds raises :class:`RunBusy` instead:
        the job is then tried again later rather than ending "done" with the decisions unexecuted
        (which left a run whose holder had died parked forever).
        """
        result = self.result(run_id)
        for _ in range(10):  # each round either ends the run or answers decisions made meanwhile
            if not result.waiting or not self._decided_elsewhere(result):
                return result
            if not self._claim(run_id):
                if busy_raises:
                    raise RunBusy(f"run {run_id} is held by another process; try again shortly", run_id=run_id)
                return result
            result = self._drive(run_id, Command(resume=ResumeIn().model_dump(mode="json")))
        return result

    def proceed(self, run_id: str, *, busy_raises: bool = False) -> RunResult:
        """Carry on a run that stopped without finishing (its process crashed mid-node).

        Only once its claim has lapsed: a run that reads mid-node may be in the hands of a live,
        slow process, and driving it from two processes would race on one checkpoint."""
        current = self.result(run_id)
        if current.status != "running":
            return current
        if not self._claim_stopped(run_id):
            if busy_raises:
                raise RunBusy(f"run {run_id} is being carried on by another process", run_id=run_id)
            return current
        self._drive(run_id, None)
        return self.continue_run(run_id, busy_raises=busy_raises)

    def result(self, run_id: str) -> RunResult:
        snap = self.graph.get_state(self._config(run_id))
        values = cast(RunState, snap.values or {})
        if not values:
            raise NotFound("run", run_id)
        if snap.interrupts:
            payload = snap.interrupts[0].value
            return RunResult(run_id=run_id, status="awaiting_approval", approvals=list(payload.get("approvals", [])))
        if snap.next:
            return RunResult(run_id=run_id, status="running")
        return RunResult(run_id=run_id, status=str(values.get("status", "running")), report=values.get("report"))

    def state(self, run_id: str) -> RunState:
        return cast(RunState, self.graph.get_state(self._config(run_id)).values)

    # --- internals ------------------------------------------------------------------------------

    def _drive(self, run_id: str, graph_input: RunState | Command[Any] | None) -> RunResult:
        """Run the graph until it ends or parks, then let go of the run (also when it raised); one
        ``orderops.run`` span per drive, the parent of its nodes', tool calls' and model calls' spans."""
        with tracing.span("orderops.run", **{"orderops.run.id": run_id}) as span:
            try:
                self.graph.invoke(graph_input, self._config(run_id), context=self.deps, durability="sync")
            except BaseException:
                with contextlib.suppress(Exception):
                    self._let_go(run_id)
                    if self.deps.runs is not None:  # we are alive and no longer driving it: any process may
                        self.deps.runs.release_claim(run_id=run_id)
                raise
            result = self._let_go(run_id)
            tracing.annotate(
                span, **{"orderops.run.status": result.status, "orderops.run.approvals": len(result.approvals)}
            )
            return result

    def _claim(self, run_id: str) -> bool:
        """Take the run for this process (always granted without a runs index)."""
        if self.deps.runs is None:
            return True
        return self.deps.runs.claim(run_id=run_id, lease_s=self.lease_s)

    def _claim_stopped(self, run_id: str) -> bool:
        """Take a run that reads mid-node: granted when nobody holds it (its claim lapsed, or the
        index has no row yet for a run created by an older version)."""
        if self.deps.runs is None:
            return True
        try:
            if self.deps.runs.claim(run_id=run_id, lease_s=self.lease_s):
                return True
            # The index says it ended but the graph stopped before recording its last node: the
            # report node is safe to run again.
            return self.deps.runs.get(run_id=run_id).status not in ("running", "awaiting_approval")
        except NotFound:
            return True

    def _let_go(self, run_id: str) -> RunResult:
        """After driving the graph: a run parked again is marked ``awaiting_approval`` in the index
        (which also releases the claim). Finished runs were marked by the report node; a run that
        stopped mid-node stays ``running`` until :meth:`proceed` (or the lease runs out)."""
        result = self.result(run_id)
        if result.waiting:
            _set_status(self.deps, run_id, "awaiting_approval")
        return result

    def _decided_elsewhere(self, result: RunResult) -> bool:
        """Whether any approval on the run's cards is no longer pending in the approval store."""
        approvals = self.deps.gateway.guard.approvals
        for card in result.approvals:
            try:
                if approvals.get(str(card.get("approval_id"))).status != ApprovalStatus.PENDING:
                    return True
            except NotFound:
                continue
        return False
