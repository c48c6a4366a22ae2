"""After a plan ran: re-read the network and check it is where the plan said it would be.

The gateway's outcomes say what each call *reported*; this module reads the orders and stock
again and compares them with the intended effect — each rerouted order at its target node with
its units reserved there, each carrier change on the new service, each expedite on a service of
the new level, each hold held, each node status set — and, for a congested or closed node, that no
unreleased order is left there unless the plan said why.

What a person chose is not a failure: orders an approver left out of a subset approval, and the
orders of a step they rejected, are *left in place by the approver* — counted, never checked
against the plan. For a closure, every open order still at the node is listed with its reason.
It only reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from agents.plan import ExceptionKind, Plan, PlannedCall, Scope
from agents.playbooks._common import load_orders
from core.domain import REROUTABLE_STATUSES, RESERVING_STATUSES, Order, OrderStatus, ServiceLevel
from core.errors import ValidationFailed
from tools.adapters.protocols import OrderFilter
from tools.base import ToolEnv
from tools.gateway import Outcome

DONE = ("executed", "replayed")
OPEN_STATUSES = sorted(
    {OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.PICKED, OrderStatus.HELD}
)


class OrderCheck(BaseModel):
    order_id: str
    step: int
    tool: str
    ok: bool
    expected: dict[str, Any] = Field(default_factory=dict)
    actual: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class NodeCheck(BaseModel):
    node_id: str
    step: int
    ok: bool
    expected: str
    actual: str


class VerificationReport(BaseModel):
    passed: bool
    reasons: list[str] = Field(default_factory=list, description="Why it failed (empty when it passed).")
    orders: list[OrderCheck] = Field(default_factory=list)
    nodes: list[NodeCheck] = Field(default_factory=list)
    steps_executed: int = 0
    steps_not_executed: int = 0
    orders_proposed: int = 0
    """Orders the plan's steps named (each order once)."""
    orders_approved: int = 0
    """Of those, the ones a run was allowed to act on: in executed steps, not left out by an approver."""
    left_by_approver: dict[str, str] = Field(
        default_factory=dict, description="order id -> why it was left in place: the approver's choice, not a failure"
    )
    stays: dict[str, str] = Field(
        default_factory=dict, description="closure: every open order still at the closed node -> why it stays"
    )

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
    led = _Ledger()
    for i, (step, out) in enumerate(zip(plan.steps, executed_outcomes, strict=True)):
        led.step(i, step, out)
    reasons = led.reasons
    checks, orders = _order_checks(led.intended, env)
    bad = [c for c in checks if not c.ok]
    if bad:
        reasons.append(f"{len(bad)} orders are not where the plan put them (first: {bad[0].order_id}: {bad[0].reason})")
    reasons += _reservations(checks, orders, env)
    node_checks = _node_checks(led.node_steps, env)
    reasons += [
        f"step {c.step} (set_node_status): {c.node_id} is {c.actual}, expected {c.expected}"
        for c in node_checks
        if not c.ok
    ]
    stays: dict[str, str] = {}
    if plan.kind in (ExceptionKind.NODE_CONGESTION, ExceptionKind.NODE_CLOSURE):
        sources = _source_nodes(plan, executed_outcomes, scope)
        if sources:
            stays = _left_at_sources(plan, sources, led, env)
    approved = len(led.proposed - set(led.left_by_approver) - set(led.not_run))
    return VerificationReport(
        passed=not reasons,
        reasons=reasons,
        orders=checks,
        nodes=node_checks,
        steps_executed=led.executed,
        steps_not_executed=len(plan.steps) - led.executed,
        orders_proposed=len(led.proposed),
        orders_approved=approved,
        left_by_approver=dict(sorted(led.left_by_approver.items())),
        stays=dict(sorted(stays.items())),
    )


@dataclass
class _Ledger:
    """What each step of the plan did: the orders it should have moved (with what it should have
    made of them), node status steps, and why orders were left (a person, a skip, a step not run)."""

    reasons: list[str] = field(default_factory=list)
    intended: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    node_steps: list[tuple[int, str, str]] = field(default_factory=list)
    left_by_approver: dict[str, str] = field(default_factory=dict)
    skipped_by_step: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    proposed: set[str] = field(default_factory=set)
    executed: int = 0

    def step(self, i: int, step: PlannedCall, out: Outcome | None) -> None:
        ids = [str(oid) for oid in step.args.get("order_ids", [])]
        self.proposed.update(ids)
        if out is not None and _rejected(out):
            # A person said no: the orders stay where they are by their choice, not by a fault.
            for oid in ids:
                self.left_by_approver.setdefault(oid, f"step {i} ({step.tool}) was rejected by the approver")
            return
        if out is None or out.status not in DONE:
            status = "not proposed" if out is None else out.status
            why = "; ".join(out.reasons) if out is not None and out.reasons else ""
            self.reasons.append(f"step {i} ({step.tool}) was {status}" + (f": {why}" if why else ""))
            for oid in ids:
                self.not_run.setdefault(oid, f"step {i} ({step.tool}) was {status}")
            return
        self.executed += 1
        self._done(i, step, out, ids)

    def _done(self, i: int, step: PlannedCall, out: Outcome, ids: list[str]) -> None:
        """An executed step: what it skipped, what the approver left out, and what it should have done."""
        result = out.result or {}
        skipped: dict[str, str] = result.get("skipped", {})
        left_out = {str(oid) for oid in result.get("left_out", [])} - set(skipped)
        for oid, why in skipped.items():
            if step.tool == "set_node_status":
                continue  # "already closed": nothing to do is not a fault; the node check below reads it
            self.reasons.append(f"step {i} ({step.tool}) skipped {oid}: {why}")
            self.skipped_by_step.setdefault(oid, f"step {i} ({step.tool}) skipped it: {why}")
        for oid in sorted(left_out):
            self.left_by_approver.setdefault(oid, f"left out of step {i} ({step.tool}) by the approver")
        if step.tool == "set_node_status":
            self.node_steps.append((i, str(step.args.get("node_id", "")), str(step.args.get("status", ""))))
        for oid in ids:
            if oid not in skipped and oid not in left_out:
                self.intended.append((i, step.tool, oid, _expectation(step.tool, step.args)))


def _order_checks(
    intended: list[tuple[int, str, str, dict[str, Any]]], env: ToolEnv
) -> tuple[list[OrderCheck], dict[str, Order]]:
    """Each order a step should have changed, as it is now against what the step intended; and the
    orders as read (the reservation check reads the same snapshot)."""
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
    return checks, orders


def _left_at_sources(plan: Plan, sources: list[str], led: _Ledger, env: ToolEnv) -> dict[str, str]:
    """Unreleased orders still at the source nodes must each have a reason in the plan (a stray is
    a fault, added to the ledger's reasons); for a closure, why each one stays."""
    closure = plan.kind is ExceptionKind.NODE_CLOSURE
    statuses = OPEN_STATUSES if closure else sorted(REROUTABLE_STATUSES)
    left = load_orders(env, OrderFilter(node_ids=sources, statuses=statuses))
    faults = {**led.not_run, **led.skipped_by_step}
    stays: dict[str, str] = {}
    stray: list[str] = []
    for o in left:
        # A step that did not run or skipped the order explains it but is still a fault.
        stays_because = _why_it_stays(o, plan.not_planned, led.left_by_approver)
        if stays_because is None:
            stray.append(o.id)
        if closure:
            stays[o.id] = stays_because or faults.get(o.id) or "no reason in the plan"
    if stray:
        led.reasons.append(
            f"{len(stray)} unreleased orders are still at {', '.join(sources)} without a reason in the plan "
            f"(first: {', '.join(stray[:5])})"
        )
    return stays


def _rejected(out: Outcome) -> bool:
    """A step a person rejected (the run graph reports it as denied with "rejected" first)."""
    return out.status == "denied" and bool(out.reasons) and out.reasons[0] == "rejected"


def _why_it_stays(o: Order, not_planned: dict[str, str], by_approver: dict[str, str]) -> str | None:
    """Why an open order is rightly still at the node, or None when nothing accounts for it."""
    if o.id in by_approver:
        return by_approver[o.id]
    if o.id in not_planned:
        return f"not planned: {not_planned[o.id]}"
    if o.status in (OrderStatus.RELEASED, OrderStatus.PICKED):
        return f"already {o.status.value}: in work at {o.node_id}, it ships from there"
    if o.status is OrderStatus.HELD:
        return f"held at {o.node_id}: waits for a person"
    return None


def _node_checks(node_steps: Sequence[tuple[int, str, str]], env: ToolEnv) -> list[NodeCheck]:
    """Each executed node-status change, read back from the WMS."""
    if not node_steps:
        return []
    nodes = {n.id: n.status.value for n in env.adapters.wms.list_nodes()}
    out = []
    for i, node_id, status in node_steps:
        expected = status
        actual = nodes.get(node_id, "missing")
        out.append(NodeCheck(node_id=node_id, step=i, ok=actual == expected, expected=expected, actual=actual))
    return out


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
