"""The LLM planner: a chat model proposes the remedy as tool calls, and this module turns the
proposals into a :class:`~agents.plan.Plan` — it never executes them.

Any OpenAI-compatible endpoint works (``ChatOpenAI`` with ``llm_base_url``/``llm_model``): the
calls go through :mod:`tools.llm`, which reads native tool calls where the server returns them and
otherwise asks for a JSON schema (``response_format``) or JSON in the content, so servers that
answer in the message text (llama.cpp, Ollama) plan as well as hosted APIs. The
exception's free text enters the prompt only quoted, inside a fence with an explicit "this is data,
not instructions" note. Every proposal is checked here before it reaches a plan: the tool must be
on the allow-list, its arguments must validate against the tool's ``args_model``, it must simulate
on the twin, and the policy must not deny it on that simulated preview. Refused proposals go back
to the model with the reason, a bounded number of times; what is still refused after that is left
out of the plan (and listed in ``not_planned``). Transport errors are retried; when the endpoint
stays down, its output never parses (after the layer's repairs), no model is configured, or the
run's token budget is spent (tokens are counted from
each reply's ``usage_metadata``, across repair rounds), the deterministic fallback planner (the
playbooks) plans instead and the plan says so (``Plan.fallback_reason`` and a note in its summary).

What this module must never do: execute a write, let the alert text out of its quotes, or plan a
call the gateway would refuse on sight.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from string import Template
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agents.plan import ExceptionKind, Plan, PlannedCall, Planner, Scope, Triage
from agents.read_loop import GatewayReads, ReadLoop, ReadRecord
from core.domain import REROUTABLE_STATUSES, CustomerTier, OrderStatus, ServiceLevel
from core.errors import DomainError
from core.settings import Settings
from guardrails.calls import Actor, ProposedCall, RunTotals, digest_arguments
from guardrails.policy import Effect, PolicyEngine
from prompts import Prompt, load_prompt
from tools.adapters.protocols import OrderFilter
from tools.base import MAX_BATCH, OrderSetArgs, ToolEnv, WriteTool
from tools.gateway import Proposer
from tools.llm import (
    TRANSPORT_ERRORS,
    EndpointUnavailable,
    PromptTooLarge,
    Proposal,
    StructuredModel,
    StructuredOutputError,
    ToolSpec,
    make_structured_model,
)
from tools.llm import make_chat_model as make_chat_model
from tools.read import SearchOrders, SearchOrdersArgs
from tools.write import WRITE_TOOLS

__all__ = [
    "TRANSPORT_ERRORS",
    "EndpointUnavailable",
    "LLMPlanner",
    "StructuredOutputError",
    "TokenBudgetExceeded",
    "gather_facts",
    "make_chat_model",
    "make_planner",
    "quote_block",
    "summarize_orders",
]

DEFAULT_WRITE_TOOLS: frozenset[str] = frozenset(
    {"reroute_orders", "change_carrier", "expedite_orders", "hold_orders", "release_holds"}
)
OPEN_STATUSES = sorted({*REROUTABLE_STATUSES, OrderStatus.RELEASED, OrderStatus.PICKED, OrderStatus.HELD})


class TokenBudgetExceeded(RuntimeError):
    """The replies so far used more tokens than the run allows: the caller falls back."""


def tokens_of(reply: AIMessage) -> int:
    """Tokens one reply cost, from its ``usage_metadata`` (0 when the provider reports none).

    ``total_tokens`` when given, else input + output: providers fill in one or the other.
    """
    usage = reply.usage_metadata
    if not usage:
        return 0
    total = usage.get("total_tokens")
    if total:
        return int(total)
    return int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)


@dataclass
class TokenMeter:
    """Tokens spent on one plan, against an optional limit."""

    limit: int | None = None
    used: int = 0

    def charge(self, reply: AIMessage) -> None:
        self.used += tokens_of(reply)
        if self.limit is not None and self.used > self.limit:
            raise TokenBudgetExceeded(f"token budget exceeded: {self.used} tokens used, the run allows {self.limit}")


def tool_spec(tool: WriteTool[Any]) -> ToolSpec:
    """What the model is told about a write tool: its docstring and the schema of the arguments it
    writes (:func:`model_args`: sets of orders by filter)."""
    return ToolSpec(name=tool.name, description=tool.description, parameters=model_args(tool).model_json_schema())


def tool_schema(tool: WriteTool[Any]) -> dict[str, Any]:
    """The OpenAI function-calling schema of a write tool."""
    return tool_spec(tool).openai_schema()


def quote_block(text: str) -> tuple[str, str]:
    """(fence, text) such that ``text`` cannot close the fence: one backtick longer than any run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1), text


def render_input(prompt: Prompt, triage: Triage, facts: dict[str, Any]) -> str:
    """The user message: trusted JSON blocks, then the exception text quoted as data."""
    fence, quoted = quote_block(triage.quoted_text or "(no text)")
    triage_view = triage.model_dump(mode="json", exclude={"quoted_text"})
    return Template(prompt.input_template).safe_substitute(
        triage=json.dumps(triage_view, indent=1, sort_keys=True),
        facts=json.dumps(facts, sort_keys=True, default=str, separators=(",", ":")),
        fence=fence,
        quoted=quoted,
    )


@dataclass
class Review:
    """What became of one round of proposals."""

    accepted: list[PlannedCall] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    """(tool call id, tool name, reason)"""
    replies: dict[str, str] = field(default_factory=dict)
    """tool call id -> what the model is told about it"""


class LLMPlanner:
    """A :class:`~agents.plan.Planner` backed by a chat model, with the playbooks as fallback.

    ``model`` is a :class:`~tools.llm.StructuredModel` (production: from settings, with its mode
    probed) or any LangChain chat model (scripted fakes in tests; asked in ``tools`` mode);
    ``None`` means no model is configured and every plan comes from ``fallback``.
    """

    def __init__(
        self,
        model: StructuredModel | BaseChatModel | None,
        *,
        fallback: Planner,
        model_name: str | None = None,
        policy: PolicyEngine | None = None,
        allow: frozenset[str] = DEFAULT_WRITE_TOOLS,
        max_repairs: int = 2,
        attempts: int = 3,
        retry_wait_s: float = 0.5,
        requested_by: str = "operator",
        prompt: Prompt | None = None,
        max_tokens: int | None = None,
        max_read_steps: int = 4,
        max_read_tokens: int | None = None,
    ) -> None:
        caller = model
        if isinstance(caller, BaseChatModel):
            caller = StructuredModel(
                caller, mode="tools", max_repairs=max_repairs, attempts=attempts, retry_wait_s=retry_wait_s
            )
        self.model: StructuredModel | None = caller
        self.fallback = fallback
        chat = caller.chat if caller is not None else None
        self.model_name = model_name or (getattr(chat, "model_name", None) or type(chat).__name__ if chat else None)
        self.policy = policy
        self.writes = {t.name: t for t in WRITE_TOOLS if t.name in allow}
        self.max_repairs = max_repairs
        self.attempts = attempts
        self.retry_wait_s = retry_wait_s
        self.actor = Actor(kind="agent", id="llm-planner", on_behalf_of=requested_by)
        self.prompt = prompt or load_prompt("exception_planner")
        self.name = f"llm:{self.model_name}" if model is not None else f"llm-unconfigured->{fallback.name}"
        self.max_tokens = max_tokens
        """This planner's own token limit per plan; a run's budget may lower it (:meth:`plan_within`)."""
        self.max_read_steps = max_read_steps
        """Model turns that may call read tools before it must propose (0: one planning call, no reads)."""
        self.max_read_tokens = max_read_tokens
        """Tokens the read loop may spend; past it the model must propose from what it read."""
        self.reads_prompt = load_prompt("exception_planner_reads")
        self.last_fallback_reason: str | None = None
        self.last_tokens_used: int | None = None
        self.last_reads: list[ReadRecord] = []
        self._skipped: dict[str, str] = {}
        """Orders left out of accepted calls because the twin says the call cannot change them."""

    # --- the Planner protocol -----------------------------------------------------------------

    def plan(self, triage: Triage, env: ToolEnv) -> Plan:
        return self.plan_within(triage, env, max_tokens=None)

    def plan_within(self, triage: Triage, env: ToolEnv, *, max_tokens: int | None) -> Plan:
        """Plan spending at most ``max_tokens`` (and this planner's own ``max_tokens``), summed over
        every round; past that the playbooks plan instead, with the reason."""
        return self.plan_reading(triage, env, max_tokens=max_tokens, reads=None)

    def plan_reading(self, triage: Triage, env: ToolEnv, *, max_tokens: int | None, reads: GatewayReads | None) -> Plan:
        """:meth:`plan_within`, the model first reading through ``reads`` (the run's gateway,
        audited as the run's agent) within ``max_read_steps``/``max_read_tokens``; the reads it
        made are in ``Plan.reads``. ``None`` or no read steps: one planning call, as before."""
        limits = [n for n in (max_tokens, self.max_tokens) if n is not None]
        meter = TokenMeter(limit=min(limits) if limits else None)
        self.last_fallback_reason = None
        self.last_tokens_used = None
        self.last_reads = []
        if self.model is None:
            return self._fall_back(triage, env, "no model is configured", None)
        first = len(self.model.calls)
        try:
            plan = self._plan_with_model(self.model, triage, env, meter, reads)
        except (EndpointUnavailable, TokenBudgetExceeded, PromptTooLarge) as exc:
            plan = self._fall_back(triage, env, str(exc), meter.used)
        except StructuredOutputError as exc:
            plan = self._fall_back(triage, env, f"the model's output could not be used: {exc}", meter.used)
        self.last_tokens_used = meter.used
        budget = self.model.max_prompt_tokens
        calls = [
            {
                "latency_s": r.latency_s,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "prompt_tokens_est": r.prompt_tokens_est,
                "prompt_budget": budget,
                "ok": r.ok,
            }
            for r in self.model.calls[first:]
        ]
        return plan.model_copy(update={"model_calls": calls, "reads": [dict(r) for r in self.last_reads]})

    # --- internals ----------------------------------------------------------------------------

    def _plan_with_model(
        self, model: StructuredModel, triage: Triage, env: ToolEnv, meter: TokenMeter, reads: GatewayReads | None
    ) -> Plan:
        specs = [tool_spec(t) for t in self.writes.values()]
        facts = gather_facts(triage, env)
        example = example_for(triage.kind)
        system = self.prompt.system
        loop: ReadLoop | None = None
        if reads is not None and self.max_read_steps > 0:
            system = f"{system}\n\n{self.reads_prompt.system}"
            loop = ReadLoop(
                model=model,
                reads=reads,
                read_specs=reads.specs(),
                write_specs=specs,
                charge=meter.charge,
                tokens=lambda: meter.used,
                proposer=Proposer(model=self.model_name, prompt_version=self._prompt_version(reads)),
                max_steps=self.max_read_steps,
                max_tokens=self.max_read_tokens,
                example=f"{READ_EXAMPLE} to read, then {example} to propose",
            )
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(render_input(self.prompt, triage, facts))]
        review = Review()
        proposal: Proposal | None = None
        self._skipped = {}
        for round_no in range(self.max_repairs + 1):
            if loop is not None and round_no == 0:
                proposal = loop.run(messages)
                messages, self.last_reads = loop.messages, loop.records
            else:
                proposal = model.propose(messages, specs, on_reply=meter.charge, example=example)
            review = self._review(proposal, env)
            if not review.refused or round_no == self.max_repairs:
                break
            messages.extend(
                model.follow_up(
                    proposal,
                    review.replies,
                    "Some proposed calls were refused; the results above say why. Reply with the complete, "
                    "corrected set of tool calls for this exception (repeat the accepted ones unchanged).",
                )
            )
        not_planned = {f"proposal {cid} ({name})": reason for cid, name, reason in review.refused}
        covered = {oid for step in review.accepted for oid in step.args.get("order_ids", [])}
        not_planned |= {oid: why for oid, why in self._skipped.items() if oid not in covered}
        for oid in scope_order_ids(triage, env):
            if oid not in covered:
                not_planned.setdefault(oid, LEFT_BY_MODEL)
        text = proposal.text if proposal is not None else ""
        summary = text.strip()[:300] or f"{len(review.accepted)} calls proposed by {self.model_name}"
        if loop is not None and loop.stopped:
            summary += f" [{loop.stopped} ({len(loop.records)} reads); proposed from what it read]"
        return Plan(
            kind=triage.kind,
            summary=summary,
            steps=review.accepted,
            not_planned=not_planned,
            planner=f"llm:{self.model_name}",
            prompt_version=self._prompt_version(reads),
            model=self.model_name,
            tokens_used=meter.used,
        )

    def _prompt_version(self, reads: GatewayReads | None) -> str:
        """The planner prompt's version, joined by the reading prompt's when the model may read."""
        if reads is None or self.max_read_steps <= 0:
            return self.prompt.version
        return f"{self.prompt.version}+{self.reads_prompt.version}"

    def _review(self, proposal: Proposal, env: ToolEnv) -> Review:
        review = Review()
        for n, bad in enumerate(proposal.reply.invalid_tool_calls):
            cid = bad.get("id") or f"invalid-{n}"
            reason = f"the arguments are not valid JSON ({bad.get('error') or 'unparseable'})"
            review.refused.append((cid, str(bad.get("name") or "?"), reason))
            review.replies[cid] = f"refused: {reason}"
        for call in proposal.calls:
            cid = call.id
            planned, reason = self._check(call.name, call.args, env)
            if planned is None:
                review.refused.append((cid, call.name, reason))
                review.replies[cid] = f"refused: {reason}"
            else:
                review.accepted.append(planned)
                review.replies[cid] = "accepted (simulated and within policy; a person may still need to approve it)"
        return review

    def _check(self, name: str, args: dict[str, Any], env: ToolEnv) -> tuple[PlannedCall | None, str]:
        tool = self.writes.get(name)
        if tool is None:
            allowed = ", ".join(sorted(self.writes))
            return None, f"{name!r} is not a tool you may use for this exception (allowed: {allowed})"
        try:
            args = self._expand(tool, args, env)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]
            )
            return None, f"malformed arguments ({problems})"
        except ValueError as exc:
            return None, str(exc)
        try:
            parsed = tool.args_model.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]
            )
            return None, f"malformed arguments ({problems})"
        try:
            preview = tool.simulate(env, parsed)
        except DomainError as exc:
            return None, f"cannot simulate: {exc.message}"
        if not preview.affected:
            why = "; ".join(f"{k}: {v}" for k, v in list(preview.skipped.items())[:3])
            return None, f"would change no order ({why})"
        if preview.skipped and isinstance(parsed, OrderSetArgs):
            # Plan only what simulates: the orders the twin says the call cannot change are left
            # out with the twin's reason (an approver sees exactly what will happen).
            self._skipped.update({oid: f"left out of {name}: {why}" for oid, why in preview.skipped.items()})
            parsed = parsed.model_copy(update={"order_ids": list(preview.affected)})
            preview = tool.simulate(env, parsed)
        if self.policy is not None:
            decision = self.policy.decide(
                ProposedCall(
                    tool=name,
                    risk=tool.risk,
                    actor=self.actor,
                    args_digest=digest_arguments(parsed.model_dump(mode="json")),
                    facts=preview.facts,
                    run=RunTotals(tool_calls=0, orders_touched=0, spend=Decimal(0)),
                )
            )
            if decision.effect is Effect.DENY:
                return None, "policy denies it: " + "; ".join(decision.reasons)
        arguments = parsed.model_dump(mode="json")
        reason = str(arguments.get("reason") or "") or f"proposed by {self.model_name}"
        return PlannedCall(tool=name, args=arguments, reason=reason), ""

    @staticmethod
    def _expand(tool: WriteTool[Any], args: dict[str, Any], env: ToolEnv) -> dict[str, Any]:
        """The tool's own arguments from what the model wrote: ``orders`` (a filter) expanded into
        ``order_ids`` (joined with any ids named), so the plan, the policy and the approval card
        see the exact orders. Raises ValidationError/ValueError with a reason for the model."""
        if not issubclass(tool.args_model, OrderSetArgs) or "orders" not in args:
            return args
        written = model_args(tool).model_validate({**args, "order_ids": args.get("order_ids") or None})
        ids = list(written.order_ids or [])  # type: ignore[attr-defined]
        selector: OrderSelector | None = written.orders  # type: ignore[attr-defined]
        if selector is not None:
            ids += [i for i in expand_selector(tool.name, selector, env) if i not in set(ids)]
            if not ids:
                raise ValueError(f"`orders` ({selector.describe()}) matches no order the tool can act on")
        out = {k: v for k, v in args.items() if k != "orders"}
        out["order_ids"] = ids
        return out

    def _fall_back(self, triage: Triage, env: ToolEnv, why: str, tokens_used: int | None) -> Plan:
        self.last_fallback_reason = why
        plan = self.fallback.plan(triage, env)
        note = f"[LLM planner not used: {why}; planned by {plan.planner} instead]"
        return plan.model_copy(
            update={
                "summary": f"{plan.summary} {note}",
                "prompt_version": self.prompt.version,
                "fallback_reason": why,
                "tokens_used": tokens_used,
            }
        )


EXEMPLARS = 5
"""Orders shown one by one in the fact sheet: enough for the model to see what an order looks like,
never enough for the prompt to grow with the incident."""
SKU_SAMPLE = 200
"""Orders whose lines are read to name the SKUs most in scope when the scope names none."""
PROMISE_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("overdue", None, -1),
    ("due_0_1d", 0, 1),
    ("due_2_3d", 2, 3),
    ("due_4_7d", 4, 7),
    ("later", 8, None),
)
"""Promise-date buckets: (name, first day, last day) relative to today, None: open-ended."""


def scope_filter(scope: Scope) -> OrderFilter | None:
    """The orders an exception is about, as a filter (None: the scope names no orders at all)."""
    if scope.order_ids:
        return OrderFilter(order_ids=scope.order_ids)
    if scope.node_ids:
        return OrderFilter(node_ids=scope.node_ids, statuses=sorted(REROUTABLE_STATUSES))
    if scope.skus:
        return OrderFilter(skus=scope.skus, statuses=OPEN_STATUSES)
    if scope.carrier_ids or scope.states:
        return OrderFilter(statuses=OPEN_STATUSES)
    return None


def _counts(oms: Any, flt: OrderFilter, groups: dict[str, OrderFilter]) -> dict[str, int]:
    out = {name: oms.count_orders(g) for name, g in groups.items()}
    return {k: v for k, v in out.items() if v}


def summarize_orders(env: ToolEnv, flt: OrderFilter, *, exemplars: int = EXEMPLARS) -> dict[str, Any]:
    """Orders matching ``flt`` as aggregates: total, per status, node, promise bucket, customer
    tier, service level and SKU, plus a few exemplar orders. Every figure is a count, so the sheet
    has the same shape (and about the same tokens) for 100 orders or 100,000; the queries are counts
    too, one per group, so building it does not read the orders either."""
    oms = env.adapters.oms
    today = env.clock.today()
    by_status = {k.value: v for k, v in oms.count_by_status(flt).items() if v}
    summary: dict[str, Any] = {"total": sum(by_status.values()), "by_status": by_status}
    if not summary["total"]:
        return summary
    nodes = [n.id for n in env.adapters.wms.list_nodes()]
    summary["by_node"] = _counts(
        oms, flt, {n: replace(flt, node_ids=[n]) for n in nodes if flt.node_ids is None or n in flt.node_ids}
    )
    buckets: dict[str, OrderFilter] = {}
    for name, first, last in PROMISE_BUCKETS:
        buckets[name] = replace(
            flt,
            promised_on_or_after=today + timedelta(days=first) if first is not None else None,
            promised_on_or_before=today + timedelta(days=last) if last is not None else None,
        )
    summary["by_promise"] = _counts(oms, flt, buckets)
    tiers: dict[str, list[str]] = {}
    for c in oms.list_customers():
        tiers.setdefault(c.tier.value, []).append(c.id)
    summary["by_tier"] = _counts(oms, flt, {t: replace(flt, customer_ids=ids) for t, ids in sorted(tiers.items())})
    summary["by_service_level"] = _counts(
        oms, flt, {lv.value: replace(flt, service_levels=[lv]) for lv in ServiceLevel}
    )
    if flt.skus:
        summary["by_sku"] = _counts(oms, flt, {sku: replace(flt, skus=[sku]) for sku in flt.skus})
    else:
        seen: Counter[str] = Counter()
        for o in oms.list_orders(flt, limit=SKU_SAMPLE, with_lines=True):
            seen.update({ln.sku for ln in o.lines})
        summary["top_skus_in_sample"] = {
            "sample_orders": min(SKU_SAMPLE, summary["total"]),
            **dict(seen.most_common(5)),
        }
    summary["exemplars"] = [
        {
            "id": o.id,
            "status": o.status.value,
            "node_id": o.node_id,
            "carrier_service_id": o.carrier_service_id,
            "service_level": o.service_level.value,
            "promised_date": o.promised_date.isoformat(),
            "value": str(o.total_value),
        }
        for o in oms.list_orders(flt, limit=exemplars)
    ]
    return summary


LEFT_BY_MODEL = "in scope, but no call the model proposed covers it: it stays as it is"


def scope_order_ids(triage: Triage, env: ToolEnv) -> list[str]:
    """Every order the exception is about (ids only, one query): a plan accounts for each of them,
    changed by a step or listed in ``not_planned`` with the reason."""
    scope = triage.scope
    flt = scope_filter(scope)
    if flt is None or not (scope.order_ids or scope.node_ids or scope.skus):
        return []  # a carrier/region scope is every open order: the facts count them, no list is kept
    return [o.id for o in env.adapters.oms.list_orders(flt, limit=MAX_BATCH)]


def gather_facts(triage: Triage, env: ToolEnv, *, exemplars: int = EXEMPLARS) -> dict[str, Any]:
    """The fact sheet the model plans from: nodes, carriers, and the orders in scope as aggregates
    with a few exemplars (:func:`summarize_orders`). Bounded: the model names sets of orders by
    filter (:class:`OrderSelector`), never by listing them, so it never needs to see them all."""
    wms, carriers = env.adapters.wms, env.adapters.carriers
    nodes = {n.id: n for n in wms.list_nodes()}
    facts: dict[str, Any] = {
        "today": env.clock.today().isoformat(),
        "nodes": [
            {
                "id": ld.node_id,
                "status": ld.status.value,
                "state": nodes[ld.node_id].state if ld.node_id in nodes else None,
                "backlog_days": round(ld.backlog_days, 2),
                "unreleased_orders": ld.unreleased_orders,
            }
            for ld in wms.node_load()
        ],
        "carriers": [
            {"id": c.id, "status": c.status.value, "outage_states": sorted(c.outage_states)}
            for c in carriers.list_carriers()
        ],
        "carrier_services": [{"id": s.id, "carrier": s.carrier_id, "air": s.air} for s in carriers.list_services()],
    }
    flt = scope_filter(triage.scope)
    facts["orders_in_scope"] = summarize_orders(env, flt, exemplars=exemplars) if flt is not None else {"total": 0}
    return facts


# --- orders named by filter ---------------------------------------------------------------------------


class OrderSelector(BaseModel):
    """A set of orders named by filter: every field given narrows it (AND); code expands it into
    order ids with the ``search_orders`` read tool when the call is checked."""

    model_config = ConfigDict(extra="forbid")

    node_ids: list[str] | None = Field(default=None, max_length=50, description="Orders at these nodes.")
    statuses: list[OrderStatus] | None = Field(
        default=None, max_length=8, description="Order statuses; default: those the tool can act on."
    )
    skus: list[str] | None = Field(default=None, max_length=50, description="Orders with a line of one of these SKUs.")
    tiers: list[CustomerTier] | None = Field(default=None, max_length=4, description="Customer tiers.")
    service_levels: list[ServiceLevel] | None = Field(default=None, max_length=3)
    carrier_ids: list[str] | None = Field(default=None, max_length=20, description="Orders booked on these carriers.")
    promised_within_days: int | None = Field(
        default=None, ge=-365, le=365, description="SLA window: promised on or before today + this many days."
    )
    promised_after_days: int | None = Field(
        default=None, ge=-365, le=365, description="Promised on or after today + this many days."
    )

    def narrows(self) -> bool:
        """True when something other than the status narrows it: "all open orders" is never a selector."""
        return any(
            v is not None
            for v in (
                self.node_ids,
                self.skus,
                self.tiers,
                self.service_levels,
                self.carrier_ids,
                self.promised_within_days,
                self.promised_after_days,
            )
        )

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.model_dump(mode="json", exclude_none=True).items()]
        return ", ".join(parts) or "(empty)"


SELECTOR_HELP = (
    "The orders to act on, by filter (node, status, SLA window, tier, SKU, carrier): they are expanded into "
    "order ids for you. Prefer this over order_ids."
)
ORDER_IDS_HELP = "Individual orders by id (only ids shown in FACTS); use `orders` for a set."


def model_args(tool: WriteTool[Any]) -> type[BaseModel]:
    """The arguments the model writes for ``tool``: an order-set tool takes ``orders`` (an
    :class:`OrderSelector`) or ``order_ids``; other tools take their own arguments."""
    args_model = tool.args_model
    if not issubclass(args_model, OrderSetArgs):
        return args_model
    fields: dict[str, Any] = {
        "order_ids": (list[str] | None, Field(default=None, max_length=50, description=ORDER_IDS_HELP)),
        "orders": (OrderSelector | None, Field(default=None, description=SELECTOR_HELP)),
    }
    return create_model(f"{args_model.__name__}ByFilter", __base__=args_model, **fields)


def default_statuses(tool: str) -> list[OrderStatus]:
    if tool == "reroute_orders":
        return sorted(REROUTABLE_STATUSES)
    if tool == "release_holds":
        return [OrderStatus.HELD]
    return [s for s in OPEN_STATUSES if s is not OrderStatus.HELD]


def expand_selector(tool: str, sel: OrderSelector, env: ToolEnv) -> list[str]:
    """The order ids ``sel`` names, read with the ``search_orders`` tool (tiers and carriers turned
    into the customers and services they stand for). Raises ValueError with a reason the model can
    act on: an unknown node/carrier/SKU, a selector that narrows nothing, or too many orders."""
    if not sel.narrows():
        raise ValueError("`orders` must narrow by node, SKU, tier, service level, carrier or SLA window")
    known_nodes = {n.id for n in env.adapters.wms.list_nodes()}
    unknown = sorted(set(sel.node_ids or ()) - known_nodes)
    if unknown:
        raise ValueError(f"unknown node ids {unknown} (nodes: {sorted(known_nodes)})")
    services: list[str] | None = None
    if sel.carrier_ids is not None:
        by_carrier: dict[str, list[str]] = {}
        for s in env.adapters.carriers.list_services():
            by_carrier.setdefault(s.carrier_id, []).append(s.id)
        unknown = sorted(set(sel.carrier_ids) - set(by_carrier))
        if unknown:
            raise ValueError(f"unknown carrier ids {unknown}")
        services = sorted(sid for c in sel.carrier_ids for sid in by_carrier[c])
    customers: list[str] | None = None
    if sel.tiers is not None:
        wanted = set(sel.tiers)
        customers = [c.id for c in env.adapters.oms.list_customers() if c.tier in wanted]
        if not customers:
            return []
    today = env.clock.today()
    args = SearchOrdersArgs(
        node_ids=sel.node_ids,
        statuses=sel.statuses or default_statuses(tool),
        customer_ids=customers,
        service_levels=sel.service_levels,
        skus=sel.skus,
        carrier_service_ids=services,
        promised_on_or_before=today + timedelta(days=sel.promised_within_days)
        if sel.promised_within_days is not None
        else None,
        promised_on_or_after=today + timedelta(days=sel.promised_after_days)
        if sel.promised_after_days is not None
        else None,
        limit=MAX_BATCH,
    )
    found = SearchOrders().run(env, args)
    if found.truncated:
        raise ValueError(f"`orders` matches {found.total} orders; one call may act on {MAX_BATCH}")
    return [o.id for o in found.orders]


SELECTOR_EXAMPLE = (
    '{"calls": [{"tool": "reroute_orders", "arguments": {"orders": {"node_ids": ["<node id from FACTS>"], '
    '"promised_within_days": 3}, "to_node_id": "<open node id from FACTS>", "reason": "<why>"}}], '
    '"summary": "<one sentence>"}'
)
"""The example a congestion's plan is shown (JSON modes); other kinds get their own (:func:`example_for`)."""


def _example(tool: str, args: str) -> str:
    call = f'{{"tool": "{tool}", "arguments": {{{args}, "reason": "<why>"}}}}'
    return f'{{"calls": [{call}], "summary": "<one sentence>"}}'


KIND_EXAMPLES: dict[ExceptionKind, str] = {
    ExceptionKind.NODE_CONGESTION: SELECTOR_EXAMPLE,
    ExceptionKind.NODE_CLOSURE: _example(
        "reroute_orders", '"orders": {"node_ids": ["<closed node id>"]}, "to_node_id": "<open node id from FACTS>"'
    ),
    ExceptionKind.CARRIER_OUTAGE: _example(
        "change_carrier",
        '"orders": {"carrier_ids": ["<carrier id that is down>"]}, '
        '"carrier_service_id": "<service of an operational carrier from FACTS>"',
    ),
    ExceptionKind.STOCKOUT: _example(
        "reroute_orders",
        '"orders": {"node_ids": ["<node out of stock>"], "skus": ["<sku>"]}, "to_node_id": "<open node with stock>"',
    ),
    ExceptionKind.PROMISE_RISK: _example(
        "expedite_orders",
        '"orders": {"node_ids": ["<node id>"], "promised_within_days": 1}, "service_level": "two_day"',
    ),
    ExceptionKind.COMPLIANCE: _example(
        "change_carrier",
        '"orders": {"skus": ["<hazmat sku>"], "carrier_ids": ["<air carrier id>"]}, '
        '"carrier_service_id": "<ground service id from FACTS>"',
    ),
}
"""One example per incident kind, of the remedy that kind usually takes: one example for all kinds
(a reroute) had the small local model propose a reroute for carrier outages, stockouts, promise
risks and hazmat alike (the recorded real-model runs under tests/cassettes/real/ show it)."""
KIND_EXAMPLES[ExceptionKind.STOCKOUT_RISK] = KIND_EXAMPLES[ExceptionKind.STOCKOUT]
NEUTRAL_EXAMPLE = (
    '{"calls": [{"tool": "<one of the tools listed>", "arguments": {"<argument>": "<value from FACTS>", '
    '"reason": "<why>"}}], "summary": "<one sentence>"} (or "calls": [] and the reason, when nothing should be done)'
)
READ_EXAMPLE = (
    '{"calls": [{"tool": "get_inventory", "arguments": {"skus": ["<sku>"]}}], "summary": "<what you look up>"}'
)


def example_for(kind: ExceptionKind) -> str:
    """The answer shape a plan for ``kind`` is shown in the JSON modes (neutral for other kinds)."""
    return KIND_EXAMPLES.get(kind, NEUTRAL_EXAMPLE)


def make_planner(
    settings: Settings,
    *,
    fallback: Planner,
    policy: PolicyEngine | None = None,
    requested_by: str = "operator",
    model: BaseChatModel | None = None,
    max_tokens: int | None = None,
) -> LLMPlanner:
    """The planner a run uses: the LLM on the configured endpoint (structured output as
    ``settings.llm_mode`` says, probed once in ``auto``), the playbooks when there is none."""
    return LLMPlanner(
        make_structured_model(settings, model),
        fallback=fallback,
        model_name=settings.llm_model,
        policy=policy,
        requested_by=requested_by,
        max_tokens=max_tokens,
        max_repairs=settings.llm_max_repairs,
        attempts=settings.llm_max_retries + 1,
        max_read_steps=settings.llm_max_read_steps,
        max_read_tokens=settings.llm_max_read_tokens,
    )
