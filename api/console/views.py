"""What the console pages show, built from the context: plain dataclasses the templates render.

Reading only: nothing here changes the network or decides anything (decisions go through the
gateway in :mod:`api.console.routes`). Approval cards join the request's stored preview with the
orders it covers (promise date, customer tier, value) so an approver can filter and choose a
subset; a run's plan alternatives come from its checkpoint when it has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from api.bootstrap import AppContext
from core.domain import Order
from core.errors import ConfigurationError, NotFound, ValidationFailed
from graphs.checkpoints import open_checkpointer
from graphs.exception import build_graph, thread_id
from graphs.runs import RunStore, RunSummary
from guardrails.approvals import ApprovalRequest
from guardrails.audit import AuditRecord

MAX_ROWS = 200
"""Per-order rows shown on a card; the filter still chooses among all covered orders."""


@dataclass(frozen=True)
class OrderRow:
    id: str
    ok: bool
    reason: str
    from_node: str | None
    to_node: str | None
    cost_before: str | None
    cost_after: str | None
    cost_delta: Decimal
    eta_before: str | None
    eta_after: str | None
    promised: date | None
    late_before: bool
    late_after: bool
    tier: str | None
    value: Decimal | None


@dataclass(frozen=True)
class SubsetFilter:
    """Which covered orders to approve: every given criterion must hold."""

    node: str | None = None
    tier: str | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    sla: str | None = None
    """``late`` (late after the change), ``on_time`` (on time after it), or None."""

    @classmethod
    def from_form(cls, form: dict[str, list[str]]) -> SubsetFilter:
        def one(name: str) -> str | None:
            v = (form.get(name) or [""])[0].strip()
            return v or None

        def money(name: str) -> Decimal | None:
            raw = one(name)
            if raw is None:
                return None
            try:
                value = Decimal(raw)
            except InvalidOperation as exc:
                raise ValidationFailed(f"{name.replace('_', ' ')} must be a number, not {raw!r}") from exc
            if not value.is_finite() or value < 0:
                raise ValidationFailed(f"{name.replace('_', ' ')} must be a non-negative number")
            return value

        sla = one("sla")
        if sla not in (None, "late", "on_time"):
            raise ValidationFailed("SLA filter must be late or on_time")
        flt = cls(
            node=one("node"), tier=one("tier"), min_value=money("min_value"), max_value=money("max_value"), sla=sla
        )
        if flt.min_value is not None and flt.max_value is not None and flt.min_value > flt.max_value:
            raise ValidationFailed("the minimum value is above the maximum value")
        return flt

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.node, self.tier, self.min_value, self.max_value, self.sla))

    def matches(self, row: OrderRow) -> bool:
        if not row.ok:
            return False
        if self.node is not None and row.from_node != self.node:
            return False
        if self.tier is not None and row.tier != self.tier:
            return False
        if self.min_value is not None and (row.value is None or row.value < self.min_value):
            return False
        if self.max_value is not None and (row.value is None or row.value > self.max_value):
            return False
        if self.sla == "late" and not row.late_after:
            return False
        return not (self.sla == "on_time" and row.late_after)


@dataclass
class ApprovalCard:
    req: ApprovalRequest
    summary: str
    cost_delta: str | None
    late_before: int | None
    late_after: int | None
    rows: list[OrderRow]
    plan_step: dict[str, Any] | None
    alternatives: list[dict[str, Any]]
    editable: dict[str, Any]
    """Top-level scalar arguments a person may edit (order ids excluded)."""
    reasons: list[str] = field(default_factory=list)
    """Why policy asked for approval (from the trail's awaiting-approval event)."""
    from_nodes: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)

    @property
    def shown_rows(self) -> list[OrderRow]:
        return self.rows[:MAX_ROWS]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.req.arguments, indent=2, sort_keys=True)

    def subset(self, flt: SubsetFilter) -> list[str]:
        covered = set(self.req.items)
        return [r.id for r in self.rows if r.id in covered and flt.matches(r)]


def approval_card(actx: AppContext, req: ApprovalRequest) -> ApprovalCard:
    preview: dict[str, Any] = req.preview if isinstance(req.preview, dict) else {}
    raw_items = preview.get("items")
    items = [i for i in raw_items if isinstance(i, dict)] if isinstance(raw_items, list) else []
    orders = _orders([str(i.get("id")) for i in items], actx)
    tiers = _tiers(actx)
    rows = []
    for i in items:
        before = i.get("before") if isinstance(i.get("before"), dict) else {}
        after = i.get("after") if isinstance(i.get("after"), dict) else {}
        assert isinstance(before, dict)
        assert isinstance(after, dict)
        o = orders.get(str(i.get("id")))
        rows.append(
            OrderRow(
                id=str(i.get("id")),
                ok=bool(i.get("ok")),
                reason=str(i.get("reason") or ""),
                from_node=before.get("node_id") or (o.node_id if o else None),
                to_node=after.get("node_id"),
                cost_before=before.get("cost"),
                cost_after=after.get("cost"),
                cost_delta=_dec(i.get("cost_delta")),
                eta_before=before.get("eta"),
                eta_after=after.get("eta"),
                promised=o.promised_date if o else None,
                late_before=bool(i.get("late_before")),
                late_after=bool(i.get("late_after")),
                tier=tiers.get(o.customer_id) if o else None,
                value=o.total_value if o else None,
            )
        )
    step, alternatives = plan_step_of(actx, req)
    args = req.arguments if isinstance(req.arguments, dict) else {}
    editable = {k: v for k, v in args.items() if k != "order_ids" and isinstance(v, str | int | float | bool)}
    cost = preview.get("cost_delta")
    return ApprovalCard(
        req=req,
        summary=str(preview.get("summary", "")),
        cost_delta=str(cost) if cost is not None else None,
        late_before=_int(preview.get("late_before")),
        late_after=_int(preview.get("late_after")),
        rows=rows,
        plan_step=step,
        alternatives=alternatives,
        editable=editable,
        from_nodes=sorted({r.from_node for r in rows if r.from_node}),
        tiers=sorted({r.tier for r in rows if r.tier}),
    )


def plan_step_of(actx: AppContext, req: ApprovalRequest) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The plan step that asked for ``req`` and the sourcing alternatives it weighed, read from the
    run's checkpoint; (None, []) when the request belongs to no stored run."""
    if not req.run_id:
        return None, []
    state = run_state(actx, req.run_id)
    if not state:
        return None, []
    plan = state.get("plan") or {}
    planned = plan.get("steps") if isinstance(plan, dict) else None
    ids = {req.id, req.supersedes_id}
    for s in state.get("steps", []) or []:
        if s.get("approval_id") in ids or (req.call_id and s.get("call_id") == req.call_id):
            index = s.get("index")
            call: Any = {}
            if isinstance(planned, list) and isinstance(index, int) and 0 <= index < len(planned):
                call = planned[index]
            alts = call.get("alternatives") if isinstance(call, dict) else None
            step = {
                "index": index,
                "tool": s.get("tool"),
                "reason": s.get("reason") or (call.get("reason", "") if isinstance(call, dict) else ""),
            }
            return step, [a for a in alts if isinstance(a, dict)] if isinstance(alts, list) else []
    return None, []


def run_state(actx: AppContext, run_id: str) -> dict[str, Any] | None:
    """A run's checkpointed graph state (plan, steps, notes, report), or None if it has none."""
    try:
        RunStore(actx.db, actx.clock).get(run_id=run_id)
    except NotFound:
        return None
    try:
        with open_checkpointer(actx.db) as saver:
            graph = build_graph().compile(checkpointer=saver)
            snap = graph.get_state({"configurable": {"thread_id": thread_id(run_id)}})
            return dict(snap.values) if snap.values else None
    except ConfigurationError:
        return None


def runs(
    actx: AppContext, *, status: str | None, kind: str | None, text: str | None, limit: int = 100
) -> list[RunSummary]:
    found = RunStore(actx.db, actx.clock).list(status=status, limit=limit * 5 if (kind or text) else limit)
    if kind:
        found = [r for r in found if r.kind == kind]
    if text:
        needle = text.lower()
        found = [r for r in found if needle in r.id.lower() or needle in (r.goal or "").lower()]
    return found[:limit]


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    kind: str
    title: str
    record: AuditRecord | None = None
    detail: dict[str, Any] | None = None


def timeline(actx: AppContext, run_id: str) -> tuple[RunSummary, list[AuditRecord], dict[str, Any] | None]:
    """The run, its audit events in chain order, and its checkpointed state (plan, steps)."""
    run = RunStore(actx.db, actx.clock).get(run_id=run_id)
    events = actx.guard.audit.list(run_id=run_id, limit=2000)
    return run, events, run_state(actx, run_id)


def _orders(ids: list[str], actx: AppContext) -> dict[str, Order]:
    if not ids:
        return {}
    try:
        return {o.id: o for o in actx.adapters.oms.get_orders(ids)}
    except NotFound:
        found = {}
        for i in ids:
            try:
                found[i] = actx.adapters.oms.get_order(i)
            except NotFound:
                continue
        return found


def _tiers(actx: AppContext) -> dict[str, str]:
    return {c.id: c.tier.value for c in actx.adapters.oms.list_customers()}


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
