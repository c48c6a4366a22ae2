"""The tool gateway: the one path by which any tool call — an agent's, a person's, a playbook's —
reaches the systems.

For a write: validate the arguments (malformed -> denied, fail closed), simulate on the twin, ask
the policy, and then deny, park for approval, or execute exactly once under an idempotency key.
Every step lands in the audit trail; a write's EXECUTED event commits in the same transaction as
its effect and key, so a crash leaves all three or none. Executing an approved request re-simulates first: if the
network moved so that the approved preview no longer holds, nothing runs and a fresh approval is
requested ("approve exactly what you saw").

The gateway never trusts a model's word for anything a policy reads: the facts come from the
simulation, the actor and roles from the caller's identity, the risk from the tool class.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, ParamSpec

from pydantic import BaseModel, Field, ValidationError

from core import changes, tracing
from core.errors import Conflict, DomainError, NotFound, OrderOpsError, PolicyDenied, ValidationFailed
from guardrails.approvals import ApprovalRequest, ApprovalStatus, ApprovalStore, preview_hash
from guardrails.approvals import args_hash as approval_args_hash
from guardrails.audit import AuditEvent, AuditRecord, AuditTrail, EventType
from guardrails.calls import Actor, ProposedCall, RunTotals, digest_arguments
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import Decision, Effect, PolicyEngine
from tools.base import Preview, ReadTool, ToolArgs, ToolEnv, WriteResult, WriteTool
from tools.read import READ_TOOLS
from tools.write import WRITE_TOOLS

Status = Literal["executed", "replayed", "denied", "awaiting_approval", "failed", "read"]


@dataclass(frozen=True)
class Guard:
    """The guardrail services every call passes through."""

    policy: PolicyEngine
    audit: AuditTrail
    approvals: ApprovalStore
    idempotency: IdempotencyStore
    approval_ttl: timedelta = timedelta(hours=4)


@dataclass
class RunLedger:
    """Running totals of one agent run, for the policy's per-run budgets."""

    run_id: str
    tool_calls: int = 0
    orders_touched: int = 0
    spend: Decimal = Decimal(0)

    def totals(self) -> RunTotals:
        return RunTotals(tool_calls=self.tool_calls, orders_touched=self.orders_touched, spend=self.spend)

    def charge(self, preview: Preview | None) -> None:
        self.tool_calls += 1
        if preview is not None:
            self.orders_touched += len(preview.affected)
            self.spend += max(preview.cost_delta, Decimal(0))


@dataclass(frozen=True)
class Proposer:
    """Where a proposal came from, for the audit trail: a model (and prompt version) or code."""

    model: str | None = None
    prompt_version: str | None = None


class Outcome(BaseModel):
    """What became of one call."""

    status: Status
    call_id: str
    tool: str
    reasons: list[str] = Field(default_factory=list)
    policy_version: str | None = None
    approval_id: str | None = None
    preview: Preview | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def args_hash(args: ToolArgs) -> str:
    return digest_arguments(args.model_dump(mode="json"))


P = ParamSpec("P")


def _traced(operation: str) -> Callable[[Callable[P, Outcome]], Callable[P, Outcome]]:
    """One ``orderops.tool`` span per gateway call: the tool, the run, the call and approval ids, what
    became of it and how many orders it touched; never its arguments or results."""

    def wrap(fn: Callable[P, Outcome]) -> Callable[P, Outcome]:
        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> Outcome:
            run = kwargs.get("run")
            with tracing.span(
                "orderops.tool",
                **{
                    "gen_ai.operation.name": "execute_tool",
                    "orderops.tool.operation": operation,
                    "orderops.run.id": getattr(run, "run_id", None),
                },
            ) as span:
                out = fn(*args, **kwargs)
                done = (out.result or {}).get("done")
                tracing.annotate(
                    span,
                    **{
                        "gen_ai.tool.name": out.tool,
                        "gen_ai.tool.call.id": out.call_id,
                        "orderops.tool.status": out.status,
                        "orderops.approval.id": out.approval_id,
                        "orderops.tool.affected": len(out.preview.affected) if out.preview is not None else None,
                        "orderops.tool.changed": len(done) if isinstance(done, list) else None,
                    },
                )
                return out

        return call

    return wrap


@dataclass
class ToolGateway:
    env: ToolEnv
    guard: Guard
    reads: dict[str, ReadTool[Any, Any]] = field(default_factory=lambda: {t.name: t for t in READ_TOOLS})
    writes: dict[str, WriteTool[Any]] = field(default_factory=lambda: {t.name: t for t in WRITE_TOOLS})

    # --- reads --------------------------------------------------------------------------------------

    @_traced("read")
    def read(
        self, name: str, raw_args: Mapping[str, Any], *, actor: Actor, run: RunLedger, proposer: Proposer = Proposer()
    ) -> Outcome:
        call_id = _new_id("call")
        tool = self.reads.get(name)
        if tool is None:
            return self._refuse(call_id, name, raw_args, actor, run, proposer, f"unknown read tool {name!r}")
        try:
            args = tool.args_model.model_validate(dict(raw_args))
        except ValidationError as exc:
            return self._refuse(call_id, name, raw_args, actor, run, proposer, _validation_reason(exc))
        decision = self.guard.policy.decide(
            ProposedCall(tool=name, risk=tool.risk, actor=actor, args_digest=args_hash(args), run=run.totals())
        )
        if decision.effect is not Effect.ALLOW:
            return self._record_denied(call_id, name, args.model_dump(mode="json"), actor, run, proposer, decision)
        started = time.perf_counter()
        try:
            result = tool.run(self.env, args)
        except DomainError as exc:
            return self._failed(call_id, name, args.model_dump(mode="json"), actor, run, proposer, exc, started)
        run.charge(None)
        self._audit(
            EventType.EXECUTED,
            call_id,
            name,
            actor,
            run,
            proposer,
            arguments=args.model_dump(mode="json"),
            result={"summary": _summarise(result)},
            policy_version=decision.policy_version,
            duration_ms=_ms(started),
        )
        return Outcome(
            status="read",
            call_id=call_id,
            tool=name,
            policy_version=decision.policy_version,
            result=result.model_dump(mode="json"),
        )

    # --- writes -------------------------------------------------------------------------------------

    @_traced("propose")
    def propose(
        self,
        name: str,
        raw_args: Mapping[str, Any],
        *,
        actor: Actor,
        run: RunLedger,
        idempotency_key: str,
        proposer: Proposer = Proposer(),
    ) -> Outcome:
        """Judge one write and act on the decision: denied, parked for approval, or executed."""
        call_id = _new_id("call")
        tool = self.writes.get(name)
        if tool is None:
            return self._refuse(call_id, name, raw_args, actor, run, proposer, f"unknown write tool {name!r}")
        try:
            args = tool.args_model.model_validate(dict(raw_args))
        except ValidationError as exc:
            return self._refuse(call_id, name, raw_args, actor, run, proposer, _validation_reason(exc))
        replay = self._replay(call_id, tool, args, actor, run, proposer, idempotency_key)
        if replay is not None:
            return replay
        try:
            preview = tool.simulate(self.env, args)
        except DomainError as exc:
            return self._refuse(
                call_id, name, args.model_dump(mode="json"), actor, run, proposer, f"cannot simulate: {exc.message}"
            )
        decision = self._decide(tool, args, preview, actor, run)
        arguments = args.model_dump(mode="json")
        self._audit(
            EventType.PROPOSED,
            call_id,
            name,
            actor,
            run,
            proposer,
            arguments=arguments,
            preview=_preview_record(preview),
            policy_version=decision.policy_version,
            reasons=decision.reasons,
        )
        if decision.effect is Effect.DENY:
            return self._record_denied(call_id, name, arguments, actor, run, proposer, decision, preview)
        if decision.effect is Effect.REQUIRE_APPROVAL:
            return self._park(call_id, tool, args, preview, decision, actor, run, proposer)
        return self._execute(
            call_id,
            tool,
            args,
            preview,
            actor,
            run,
            proposer,
            idempotency_key,
            policy_version=decision.policy_version,
            approver=None,
        )

    @_traced("execute_approved")
    def execute_approved(
        self, approval_id: str, *, actor: Actor, run: RunLedger, proposer: Proposer = Proposer()
    ) -> Outcome:
        """Run an approved request exactly as approved (arguments, subset), if its preview still holds.

        The idempotency key is the approval's id: however often this is called (a retry, a resumed
        graph, two workers), the approved change happens once.
        """
        req = self.guard.approvals.get(approval_id)
        tool = self.writes.get(req.tool)
        if tool is None:
            raise NotFound("write tool", req.tool)
        if req.status != ApprovalStatus.APPROVED:
            raise Conflict(
                f"approval {approval_id} is {req.status.value}; only an approved request can execute",
                approval_id=approval_id,
                status=req.status.value,
            )
        args = tool.args_model.model_validate(req.arguments)
        call_id = req.call_id or _new_id("call")
        if approval_args_hash(args.model_dump(mode="json")) != req.args_hash:
            raise Conflict(f"approval {approval_id} does not match its stored arguments", approval_id=approval_id)
        exec_args = args
        if req.approved_items is not None and set(req.approved_items) != set(req.items):
            exec_args = tool.restrict(args, req.approved_items)
        key = f"approval:{req.id}"
        replay = self._replay(call_id, tool, exec_args, actor, run, proposer, key)
        if replay is not None:
            return replay
        preview = tool.simulate(self.env, args)
        if preview_hash(preview) != req.preview_hash:
            # The network moved: the person approved numbers that no longer hold. Ask again.
            reason = (
                f"the network changed since approval {approval_id}: its preview no longer holds, so nothing "
                "was executed and a new approval is requested"
            )
            self._audit(
                EventType.NOTE,
                call_id,
                tool.name,
                actor,
                run,
                proposer,
                arguments=req.arguments,
                preview=_preview_record(preview),
                reasons=[reason],
            )
            decision = self._decide(tool, args, preview, actor, run)
            if decision.effect is Effect.DENY:
                return self._record_denied(call_id, tool.name, req.arguments, actor, run, proposer, decision, preview)
            outcome = self._park(call_id, tool, args, preview, decision, actor, run, proposer)
            return outcome.model_copy(update={"reasons": [reason, *outcome.reasons]})
        approvers = ", ".join(d.approver_id for d in req.approvals)
        return self._execute(
            call_id,
            tool,
            exec_args,
            preview,
            actor,
            run,
            proposer,
            key,
            policy_version=self._policy_version_of(call_id),
            approver=approvers or None,
        )

    def decide(
        self,
        approval_id: str,
        *,
        approver: Actor,
        decision: Literal["approve", "reject"],
        reason: str | None = None,
        subset: list[str] | None = None,
        expected_args_hash: str | None = None,
    ) -> ApprovalRequest:
        """One person's decision on a pending request, checked and recorded in the trail.

        The approver must hold every role the request names (the policy's rule; stricter than the
        store's own any-of check), may not be the requester, and decides what they saw: pass the
        ``args_hash`` shown to them as ``expected_args_hash``.
        """
        req = self.guard.approvals.get(approval_id)
        missing = sorted(set(req.required_roles) - set(approver.roles))
        if missing:
            raise PolicyDenied(
                f"{approver.id} lacks the role(s) {', '.join(missing)} needed to decide this request",
                reasons=[f"missing roles {missing}"],
            )
        decided = self.guard.approvals.decide(
            approval_id,
            approver.id,
            approver.roles,
            decision,
            reason=reason,
            subset=subset,
            expected_args_hash=expected_args_hash,
        )
        kind = EventType.APPROVED if decision == "approve" else EventType.REJECTED
        self.guard.audit.append(
            AuditEvent(
                event_type=kind,
                run_id=req.run_id,
                call_id=req.call_id,
                tool=req.tool,
                approver=approver.id,
                actor=f"{approver.kind}:{approver.id}",
                reasons=[reason] if reason else [],
                result={
                    "approval_id": approval_id,
                    "status": decided.status.value,
                    "subset": len(subset) if subset is not None else None,
                    "of": len(req.items),
                },
            )
        )
        return decided

    def edit(self, approval_id: str, raw_args: Mapping[str, Any], *, editor: Actor, run: RunLedger) -> Outcome:
        """Replace a pending request's arguments: validated, re-simulated and re-judged by policy
        like a new proposal. A denied edit leaves the original request as it was."""
        req = self.guard.approvals.get(approval_id)
        tool = self.writes.get(req.tool)
        if tool is None:
            raise NotFound("write tool", req.tool)
        try:
            args = tool.args_model.model_validate(dict(raw_args))
        except ValidationError as exc:
            raise ValidationFailed(_validation_reason(exc)) from exc
        preview = tool.simulate(self.env, args)
        decision = self._decide(tool, args, preview, editor, run)
        call_id = req.call_id or _new_id("call")
        if decision.effect is Effect.DENY:
            return self._record_denied(
                call_id, tool.name, args.model_dump(mode="json"), editor, run, Proposer(), decision, preview
            )
        new = self.guard.approvals.decide(
            approval_id,
            editor.id,
            editor.roles,
            "edit",
            edited_args=args,
            edited_preview=preview,
            edited_items=preview.affected if tool.items(args) else [],
        )
        reasons = [f"arguments edited by {editor.id} (supersedes {approval_id})", *decision.reasons]
        return self._parked(
            call_id, tool, args, preview, editor, run, Proposer(), decision.policy_version, reasons, new.id
        )

    # --- internals ----------------------------------------------------------------------------------

    def _replay(
        self,
        call_id: str,
        tool: WriteTool[Any],
        args: ToolArgs,
        actor: Actor,
        run: RunLedger,
        proposer: Proposer,
        idempotency_key: str,
    ) -> Outcome | None:
        """A call whose key already completed gets its first result back, without re-simulating or
        re-judging it (the network has since changed *because* of that first call)."""
        try:
            done, stored = self.guard.idempotency.completed(idempotency_key, tool.name, args_hash(args))
        except Conflict as exc:
            return self._refuse(call_id, tool.name, args.model_dump(mode="json"), actor, run, proposer, exc.message)
        if not done:
            return None
        result = WriteResult.model_validate(stored)
        self._audit(
            EventType.NOTE,
            call_id,
            tool.name,
            actor,
            run,
            proposer,
            arguments=args.model_dump(mode="json"),
            result={"replayed": True, "done": len(result.done)},
            reasons=[f"idempotency key {idempotency_key!r} already executed; returning its first result"],
        )
        return Outcome(status="replayed", call_id=call_id, tool=tool.name, result=result.model_dump(mode="json"))

    def _policy_version_of(self, call_id: str) -> str:
        parked = self.guard.audit.list(call_id=call_id, event_type=EventType.AWAITING_APPROVAL)
        return (parked[-1].policy_version if parked else None) or self.guard.policy.version

    def _decide(self, tool: WriteTool[Any], args: ToolArgs, preview: Preview, actor: Actor, run: RunLedger) -> Decision:
        return self.guard.policy.decide(
            ProposedCall(
                tool=tool.name,
                risk=tool.risk,
                actor=actor,
                args_digest=args_hash(args),
                facts=preview.facts,
                run=run.totals(),
            )
        )

    def _park(
        self,
        call_id: str,
        tool: WriteTool[Any],
        args: ToolArgs,
        preview: Preview,
        decision: Decision,
        actor: Actor,
        run: RunLedger,
        proposer: Proposer,
    ) -> Outcome:
        req = self.guard.approvals.create(
            tool=tool.name,
            arguments=args,
            preview=preview,
            requester_id=actor.on_behalf_of or actor.id,
            run_id=run.run_id,
            call_id=call_id,
            items=preview.affected if tool.items(args) else [],
            required_roles=decision.required_roles,
            approvers_required=max(decision.approvers_required, 1),
            requester_may_approve=decision.requester_may_approve,
            ttl=self.guard.approval_ttl,
        )
        return self._parked(
            call_id, tool, args, preview, actor, run, proposer, decision.policy_version, decision.reasons, req.id
        )

    def _parked(
        self,
        call_id: str,
        tool: WriteTool[Any],
        args: ToolArgs,
        preview: Preview,
        actor: Actor,
        run: RunLedger,
        proposer: Proposer,
        policy_version: str,
        reasons: list[str],
        approval_id: str,
    ) -> Outcome:
        """Record that a call waits for approval ``approval_id`` and say so to the caller."""
        self._audit(
            EventType.AWAITING_APPROVAL,
            call_id,
            tool.name,
            actor,
            run,
            proposer,
            arguments=args.model_dump(mode="json"),
            preview=_preview_record(preview),
            policy_version=policy_version,
            reasons=reasons,
            result={"approval_id": approval_id},
        )
        return Outcome(
            status="awaiting_approval",
            call_id=call_id,
            tool=tool.name,
            reasons=reasons,
            policy_version=policy_version,
            approval_id=approval_id,
            preview=preview,
        )

    def _execute(
        self,
        call_id: str,
        tool: WriteTool[Any],
        args: ToolArgs,
        preview: Preview,
        actor: Actor,
        run: RunLedger,
        proposer: Proposer,
        idempotency_key: str,
        *,
        policy_version: str,
        approver: str | None,
    ) -> Outcome:
        started = time.perf_counter()
        arguments = args.model_dump(mode="json")
        # Never act on what the preview did not show: narrow an order-set call to the orders the
        # simulation accepted (and so policy judged and a person approved). The idempotency key
        # stays bound to the requested arguments, so a retry still finds its first result.
        effective = args
        if tool.items(args):
            accepted = set(preview.affected)
            effective = tool.restrict(args, [i for i in tool.items(args) if i in accepted])

        def executed(result: WriteResult, replayed: bool) -> AuditRecord:
            return self._audit(
                EventType.EXECUTED,
                call_id,
                tool.name,
                actor,
                run,
                proposer,
                arguments=arguments,
                result={**result.model_dump(mode="json"), "replayed": replayed},
                approver=approver,
                policy_version=policy_version,
                duration_ms=_ms(started),
            )

        recorded: list[AuditRecord] = []

        def run_and_record() -> Any:
            # The EXECUTED event joins the effect's transaction where the trail shares its
            # database (always, as deployed): a crash then leaves both or neither. Appended after
            # the commit instead, a kill between the two left an effect no event records, and the
            # resumed call only replays it - undo, eval capture and order history never saw it.
            stored = self.guard.idempotency.stored_form(self._run_tool(tool, effective, preview))
            recorded.clear()
            if self.guard.audit.db.in_one_transaction():
                recorded.append(executed(WriteResult.model_validate(stored), False))
            return stored

        try:
            stored, replayed = self.guard.idempotency.run_once(
                idempotency_key, tool.name, args_hash(args), run_and_record
            )
        except OrderOpsError as exc:
            return self._failed(call_id, tool.name, arguments, actor, run, proposer, exc, started)
        result = WriteResult.model_validate(stored)
        run.charge(preview)
        if not replayed:  # committed: this process's caches of nodes and carriers re-check now
            changes.publish(changes.NETWORK)
            for record in recorded:
                self.guard.audit.anchor_committed(record)
        if replayed or not recorded:  # another caller's effect, or a trail on another database
            executed(result, replayed)
        return Outcome(
            status="replayed" if replayed else "executed",
            call_id=call_id,
            tool=tool.name,
            policy_version=policy_version,
            preview=preview,
            result=result.model_dump(mode="json"),
        )

    def _run_tool(self, tool: WriteTool[Any], args: ToolArgs, preview: Preview) -> WriteResult:
        """Execute ``args`` (already narrowed to the preview); what the preview skipped is reported
        as skipped with the preview's reason."""
        result = WriteResult(tool=tool.name) if not tool.items(args) and hasattr(args, "order_ids") else None
        if result is None:
            result = tool.execute(self.env, args)
        ran = set(tool.items(args))
        for oid, why in preview.skipped.items():
            if oid not in ran:
                result.skipped.setdefault(oid, why)
        return result

    def _refuse(
        self, call_id: str, name: str, raw_args: Any, actor: Actor, run: RunLedger, proposer: Proposer, reason: str
    ) -> Outcome:
        """Malformed or unknown calls are denied before policy (fail closed) and recorded."""
        run.tool_calls += 1
        self._audit(
            EventType.DENIED, call_id, name, actor, run, proposer, arguments=_jsonable(raw_args), reasons=[reason]
        )
        return Outcome(status="denied", call_id=call_id, tool=name, reasons=[reason])

    def _record_denied(
        self,
        call_id: str,
        name: str,
        arguments: Any,
        actor: Actor,
        run: RunLedger,
        proposer: Proposer,
        decision: Decision,
        preview: Preview | None = None,
    ) -> Outcome:
        run.tool_calls += 1
        self._audit(
            EventType.DENIED,
            call_id,
            name,
            actor,
            run,
            proposer,
            arguments=arguments,
            policy_version=decision.policy_version,
            reasons=decision.reasons,
        )
        return Outcome(
            status="denied",
            call_id=call_id,
            tool=name,
            reasons=decision.reasons,
            policy_version=decision.policy_version,
            preview=preview,
        )

    def _failed(
        self,
        call_id: str,
        name: str,
        arguments: Any,
        actor: Actor,
        run: RunLedger,
        proposer: Proposer,
        exc: OrderOpsError,
        started: float,
    ) -> Outcome:
        run.tool_calls += 1
        self._audit(
            EventType.FAILED,
            call_id,
            name,
            actor,
            run,
            proposer,
            arguments=arguments,
            result=exc.to_dict(),
            reasons=[exc.message],
            duration_ms=_ms(started),
        )
        return Outcome(status="failed", call_id=call_id, tool=name, reasons=[exc.message], error=exc.to_dict())

    def _audit(
        self, kind: EventType, call_id: str, tool: str, actor: Actor, run: RunLedger, proposer: Proposer, **fields: Any
    ) -> AuditRecord:
        return self.guard.audit.append(
            AuditEvent(
                event_type=kind,
                run_id=run.run_id,
                call_id=call_id,
                tool=tool,
                actor=f"{actor.kind}:{actor.id}",
                model=proposer.model,
                prompt_version=proposer.prompt_version,
                **fields,
            )
        )


def _requesters(actor: Actor) -> list[str]:
    return [actor.id] + ([actor.on_behalf_of] if actor.on_behalf_of else [])


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _validation_reason(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]]
    return "malformed arguments (" + "; ".join(parts) + ")"


def _jsonable(value: Any) -> Any:
    """Raw (possibly malformed) arguments as something the trail can store."""
    if isinstance(value, Mapping):
        return {
            str(k): v if isinstance(v, str | int | float | bool | None | list | dict) else repr(v)
            for k, v in value.items()
        }
    return repr(value)


def _preview_record(preview: Preview) -> dict[str, Any]:
    """What the trail keeps of a preview: totals and the digest, not 10,000 per-order rows."""
    return {
        "summary": preview.summary,
        "digest": preview.digest(),
        "affected": len(preview.affected),
        "skipped": len(preview.skipped),
        "cost_delta": str(preview.cost_delta),
        "late_before": preview.late_before,
        "late_after": preview.late_after,
        "inventory_moved_units": sum(preview.inventory_moved.values()),
    }


def _summarise(result: BaseModel) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    return {k: (len(v) if isinstance(v, list | dict) else v) for k, v in data.items()}
