"""The tool gateway: the one path by which any tool call — an agent's, a person's, a playbook's —
reaches the systems.

For a write: validate the arguments (malformed -> denied, fail closed), simulate on the twin, ask
the policy, and then deny, park for approval, or execute exactly once under an idempotency key.
Every step lands in the audit trail. Executing an approved request re-simulates first: if the
network moved so that the approved preview no longer holds, nothing runs and a fresh approval is
requested ("approve exactly what you saw").

The gateway never trusts a model's word for anything a policy reads: the facts come from the
simulation, the actor and roles from the caller's identity, the risk from the tool class.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from core.errors import Conflict, DomainError, NotFound, OrderOpsError
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditEvent, AuditTrail, EventType
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


@dataclass
class ToolGateway:
    env: ToolEnv
    guard: Guard
    reads: dict[str, ReadTool[Any, Any]] = field(default_factory=lambda: {t.name: t for t in READ_TOOLS})
    writes: dict[str, WriteTool[Any]] = field(default_factory=lambda: {t.name: t for t in WRITE_TOOLS})

    # --- reads --------------------------------------------------------------------------------------

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
            return self._park(call_id, tool, args, preview, decision, actor, run, proposer, idempotency_key)
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

    def execute_approved(
        self, approval_id: str, *, actor: Actor, run: RunLedger, proposer: Proposer = Proposer()
    ) -> Outcome:
        """Run an approved request exactly as approved (args, subset), if its preview still holds."""
        req = self.guard.approvals.get(approval_id)
        tool = self.writes.get(req.tool)
        if tool is None:
            raise NotFound("write tool", req.tool)
        if req.status != "approved":
            raise Conflict(
                f"approval {approval_id} is {req.status}; only an approved request can execute",
                approval_id=approval_id,
                status=req.status,
            )
        args = tool.args_model.model_validate(req.arguments)
        if args_hash(args) != req.args_hash:
            raise Conflict(f"approval {approval_id} does not match its stored arguments", approval_id=approval_id)
        preview = tool.simulate(self.env, args)
        if preview.digest() != req.preview_hash:
            # The network moved: the person approved numbers that no longer hold. Ask again.
            decision = self._decide(tool, args, preview, actor, run)
            self._audit(
                EventType.NOTE,
                req.call_id,
                tool.name,
                actor,
                run,
                proposer,
                arguments=req.arguments,
                preview=_preview_record(preview),
                reasons=[
                    f"network changed since approval {approval_id}; the preview no longer holds, "
                    "so nothing was executed and a new approval is requested"
                ],
            )
            if decision.effect is Effect.DENY:
                return self._record_denied(
                    req.call_id, tool.name, req.arguments, actor, run, proposer, decision, preview
                )
            return self._park(
                req.call_id,
                tool,
                args,
                preview,
                decision,
                actor,
                run,
                proposer,
                req.idempotency_key + ":r",
                supersedes=approval_id,
            )
        subset = req.approved_subset
        exec_args = tool.restrict(args, subset) if subset is not None else args
        approvers = ", ".join(d.approver_id for d in req.decisions if d.decision == "approve")
        return self._execute(
            req.call_id,
            tool,
            exec_args,
            preview,
            actor,
            run,
            proposer,
            req.idempotency_key,
            policy_version=req.policy_version,
            approver=approvers or None,
        )

    # --- internals ----------------------------------------------------------------------------------

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
        idempotency_key: str,
        supersedes: str | None = None,
    ) -> Outcome:
        req = self.guard.approvals.create(
            run_id=run.run_id,
            call_id=call_id,
            tool=tool.name,
            arguments=args.model_dump(mode="json"),
            preview=preview.model_dump(mode="json"),
            preview_hash=preview.digest(),
            items=preview.affected,
            required_roles=decision.required_roles,
            approvers_required=max(decision.approvers_required, 1),
            requester_may_approve=decision.requester_may_approve,
            requesters=_requesters(actor),
            policy_version=decision.policy_version,
            reasons=decision.reasons,
            idempotency_key=idempotency_key,
            supersedes=supersedes,
        )
        self._audit(
            EventType.AWAITING_APPROVAL,
            call_id,
            tool.name,
            actor,
            run,
            proposer,
            arguments=args.model_dump(mode="json"),
            preview=_preview_record(preview),
            policy_version=decision.policy_version,
            reasons=decision.reasons,
            result={"approval_id": req.id},
        )
        return Outcome(
            status="awaiting_approval",
            call_id=call_id,
            tool=tool.name,
            reasons=decision.reasons,
            policy_version=decision.policy_version,
            approval_id=req.id,
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
        try:
            stored, replayed = self.guard.idempotency.run_once(
                idempotency_key, tool.name, args_hash(args), lambda: tool.execute(self.env, args)
            )
        except OrderOpsError as exc:
            return self._failed(call_id, tool.name, arguments, actor, run, proposer, exc, started)
        result = WriteResult.model_validate(stored)
        run.charge(preview)
        self._audit(
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
        return Outcome(
            status="replayed" if replayed else "executed",
            call_id=call_id,
            tool=tool.name,
            policy_version=policy_version,
            preview=preview,
            result=result.model_dump(mode="json"),
        )

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
    ) -> None:
        self.guard.audit.append(
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
