"""After a plan ran: re-read the network and check it is where the plan said it would be.

The gateway's outcomes say what each call *reported*; this module reads the orders and stock
again and compares them with the intended effect — each rerouted order at its target node with
its units reserved there, each carrier change on the new service, each expedite on a service of
the new level, each hold held — and, for a congested or closed node, that no unreleased order is
left there unless the plan said why. It only reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from agents.plan import ExceptionKind, Plan, Scope
from agents.playbooks._common import load_orders
from core.domain import REROUTABLE_STATUSES, RESERVING_STATUSES, Order, OrderStatus, ServiceLevel
from core.errors import ValidationFailed
from tools.adapters.protocols import OrderFilter
from tools.base import ToolEnv
from tools.gateway import Outcome

DONE = ("executed", "replayed")


class OrderCheck(BaseModel):
    order_id: str
    step: int
    tool: str
    ok: bool
    expected: dict[str, Any] = Field(default_factory=dict)
    actual: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class VerificationReport(BaseModel):
    passed: bool
    reasons: list[str] = Field(default_factory=list, description="Why it failed (empty when it passed).")
    orders: list[OrderCheck] = Field(default_factory=list)
    steps_executed: int = 0
    steps_not_executed: int = 0

    @property
    def failed_orders(self) -> list[OrderCheck]:
        return [c for c in self.orders if not c.ok]


def _expectation(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    if tool == "reroute_orders":
        return {"node_id": args["to_node_id"]}
    if tool == "change_carrier":
        return {"carrier_service_id": args["carrier_service_id"]}
    if tool == "expedite_orders":
        return {"service_level": args.get("service_level", ServiceLevel.TWO_DAY.value)}
    if tool == "hold_orders":
        return {"status": OrderStatus.HELD.value}
    if tool == "release_holds":
        return {"status": "not held"}
    if tool == "cancel_orders":
        return {"status": OrderStatus.CANCELLED.value}
    return {}


def _actual(order: Order, service_levels: dict[str, str]) -> dict[str, Any]:
    return {
        "node_id": order.node_id,
        "carrier_service_id": order.carrier_service_id,
        "service_level": service_levels.get(order.carrier_service_id or ""),
        "status": order.status.value,
    }


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, value in expected.items():
        if value == "not held":
            if actual["status"] == OrderStatus.HELD.value:
                return False
        elif actual.get(key) != value:
            return False
    return True


def _source_nodes(plan: Plan, outcomes: Sequence[Outcome | None], scope: Scope | None) -> list[str]:
    if scope is not None and scope.node_ids:
        return list(scope.node_ids)
    found: set[str] = set()
    for out in outcomes:
        if out is not None and out.preview is not None:
            for item in out.preview.items:
                node = item.before.get("node_id")
                if isinstance(node, str):
                    found.add(node)
    return sorted(found)


def verify(
    plan: Plan, executed_outcomes: Sequence[Outcome | None], env: ToolEnv, *, scope: Scope | None = None
) -> VerificationReport:
    """Compare the network now with what ``plan`` intended.

    ``executed_outcomes[i]`` is the gateway's final outcome of ``plan.steps[i]`` (None: never
    proposed). For congestion and closure plans, the source nodes come from ``scope`` (the
    triage's) or, failing that, from the previews' "before" nodes.
    """
    if len(executed_outcomes) != len(plan.steps):
        raise ValidationFailed(
            f"verify needs one outcome per plan step ({len(plan.steps)}), got {len(executed_outcomes)}"
        )
    reasons: list[str] = []
    intended: list[tuple[int, str, str, dict[str, Any]]] = []
    executed = 0
    for i, (step, out) in enumerate(zip(plan.steps, executed_outcomes, strict=True)):
        if out is None or out.status not in DONE:
            status = "not proposed" if out is None else out.status
            why = "; ".join(out.reasons) if out is not None and out.reasons else ""
            reasons.append(f"step {i} ({step.tool}) was {status}" + (f": {why}" if why else ""))
            continue
        executed += 1
        result = out.result or {}
        skipped: dict[str, str] = result.get("skipped", {})
        for oid, why in skipped.items():
            reasons.append(f"step {i} ({step.tool}) skipped {oid}: {why}")
        for oid in step.args.get("order_ids", []):
            if oid not in skipped:
                intended.append((i, step.tool, oid, _expectation(step.tool, step.args)))
    ids = list(dict.fromkeys(oid for _, _, oid, _ in intended))
    orders = {o.id: o for o in env.adapters.oms.get_orders(ids)} if ids else {}
    levels = {s.id: s.level.value for s in env.adapters.carriers.list_services()}
    checks: list[OrderCheck] = []
    for i, tool, oid, expected in intended:
        actual = _actual(orders[oid], levels)
        ok = _matches(expected, actual)
        checks.append(
            OrderCheck(
                order_id=oid,
                step=i,
                tool=tool,
                ok=ok,
                expected=expected,
                actual=actual,
                reason="" if ok else f"expected {expected}, found {actual}",
            )
        )
    bad = [c for c in checks if not c.ok]
    if bad:
        reasons.append(f"{len(bad)} orders are not where the plan put them (first: {bad[0].order_id}: {bad[0].reason})")
    reasons += _reservations(checks, orders, env)
    if plan.kind in (ExceptionKind.NODE_CONGESTION, ExceptionKind.NODE_CLOSURE):
        sources = _source_nodes(plan, executed_outcomes, scope)
        if sources:
            left = load_orders(env, OrderFilter(node_ids=sources, statuses=sorted(REROUTABLE_STATUSES)))
            stray = [o.id for o in left if o.id not in plan.not_planned]
            if stray:
                reasons.append(
                    f"{len(stray)} unreleased orders are still at {', '.join(sources)} without a reason in the plan "
                    f"(first: {', '.join(stray[:5])})"
                )
    return VerificationReport(
        passed=not reasons,
        reasons=reasons,
        orders=checks,
        steps_executed=executed,
        steps_not_executed=len(plan.steps) - executed,
    )


def _reservations(checks: Sequence[OrderCheck], orders: dict[str, Order], env: ToolEnv) -> list[str]:
    """Rerouted orders that hold stock must find at least their units reserved at the new node."""
    need: dict[tuple[str, str], int] = defaultdict(int)
    for c in checks:
        o = orders[c.order_id]
        if c.tool == "reroute_orders" and c.ok and o.node_id and o.status in RESERVING_STATUSES:
            for ln in o.lines:
                need[(o.node_id, ln.sku)] += ln.quantity
    if not need:
        return []
    nodes = sorted({n for n, _ in need})
    skus = sorted({s for _, s in need})
    reserved = {(p.node_id, p.sku): p.reserved for p in env.adapters.wms.inventory(node_ids=nodes, skus=skus)}
    short = [(k, q, reserved.get(k, 0)) for k, q in sorted(need.items()) if reserved.get(k, 0) < q]
    return [f"{n} reserves {have} of {sku}, the moved orders alone need {q}" for (n, sku), q, have in short[:10]]
