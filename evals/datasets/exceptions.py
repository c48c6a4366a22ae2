"""The exceptions eval dataset: scenarios that break a seeded network and judge the end state.

Each :class:`ExceptionScenario` is a network spec (generated fresh per case), a setup (what to
break: congest or close a node, a carrier outage in some states, zero stock of a SKU at a node, a
backlog that pushes ETAs past promises, hazmat orders booked on an air service), a trigger (an
alert or an operator's goal) and what must hold afterwards. Selectors such as ``busiest`` are
resolved against the generated network, so the same scenario works for every seed.

The checks read the network before and after the run and judge only the END STATE: orders moved
away from a broken node, none left behind that another node could serve, nothing touched outside
the exception's scope, nothing sent to a closed node or a carrier in outage, approvals requested
where the policy wants a person, and a report that says what happened. They never look at how the
planner got there, so a model-backed planner is judged by the same rules as the playbooks.

This module only reads the network in its checks; the setup is the one place it writes, through
the adapters, before the run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.plan import Alert, ExceptionKind
from agents.sourcing import Sourcer
from core.domain import REROUTABLE_STATUSES, CarrierStatus, NodeStatus, Order, OrderStatus
from core.geo import STATES_BY_REGION
from core.netgen import NetworkSpec
from graphs.report import RunReport
from guardrails.audit import AuditRecord
from tools.adapters.protocols import Adapters, OrderFilter
from tools.twin import TwinView

WORKING = [OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.PICKED]
HOLDABLE = {OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED}
APPROVAL_ORDERS = 25
"""The default policy's bulk threshold: an executed write over this many orders needs an approval."""

SPECS: dict[str, NetworkSpec] = {
    "s7": NetworkSpec(seed=7, nodes=5, skus=40, customers=6, orders=400),
    "s11": NetworkSpec(seed=11, nodes=6, skus=40, customers=6, orders=400),
    "s23": NetworkSpec(seed=23, nodes=5, skus=30, customers=5, orders=300),
}

Op = Literal["congest", "close", "outage", "stockout", "backlog", "hazmat_air", "noop"]


@dataclass(frozen=True)
class Setup:
    """One thing to break before the run. ``node`` is a selector (``busiest``, ``second``,
    ``third``: distribution centres by unreleased orders) or a node id."""

    op: Op
    node: str = "busiest"
    backlog_days: float = 2.0
    carrier: str = "RDG"
    states: tuple[str, ...] = ()
    count: int = 2
    mark_status: bool = True


@dataclass(frozen=True)
class ExceptionScenario:
    id: str
    category: str
    """The playbook it exercises (``congestion``, ``closure``, ``carrier_outage``, ``stockout``,
    ``promise_risk``, ``compliance``) or ``no_action`` for inputs that must change nothing."""
    spec: str
    setup: tuple[Setup, ...]
    goal: str | None = None
    """Operator goal template (``{node}``, ``{city}``, ``{carrier}``, ``{states}``, ``{sku}``)."""
    alert: Mapping[str, Any] | None = None
    """Alert fields (``kind``, ``labels``, ``summary``, ``text``) with the same templates."""
    expect_changes: bool = True
    description: str = ""


@dataclass
class Resolved:
    """What the selectors of one scenario resolved to on its network."""

    values: dict[str, str] = field(default_factory=dict)
    hazmat_orders: list[str] = field(default_factory=list)

    def fill(self, text: str) -> str:
        try:
            return text.format(**self.values)
        except (KeyError, IndexError):
            return text


# --- setup ----------------------------------------------------------------------------------------


def _dcs_by_load(adapters: Adapters) -> list[str]:
    loads = [ld for ld in adapters.wms.node_load() if ld.node_id.startswith("DC-")]
    return [ld.node_id for ld in sorted(loads, key=lambda ld: (-ld.unreleased_orders, ld.node_id))]


def resolve_node(adapters: Adapters, selector: str) -> str:
    ranked = _dcs_by_load(adapters)
    index = {"busiest": 0, "second": 1, "third": 2}.get(selector)
    if index is None:
        return selector
    return ranked[min(index, len(ranked) - 1)]


def apply_setup(scenario: ExceptionScenario, adapters: Adapters) -> Resolved:
    """Break the network as the scenario says; returns the values its templates use."""
    res = Resolved()
    for step in scenario.setup:
        node = resolve_node(adapters, step.node)
        res.values.setdefault("node", node)
        res.values.setdefault("city", adapters.wms.get_node(node).city)
        _SETUP_OPS[step.op](step, node, adapters, res)
    return res


def _setup_congest(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    if step.mark_status:
        adapters.wms.set_node_status(node, NodeStatus.CONGESTED)
    _setup_backlog(step, node, adapters, res)


def _setup_backlog(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    wms = adapters.wms
    wms.set_backlog(node, int(wms.get_node(node).daily_capacity * step.backlog_days))


def _setup_close(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    adapters.wms.set_node_status(node, NodeStatus.CLOSED)


def _setup_outage(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    adapters.carriers.set_carrier_status(step.carrier, CarrierStatus.OUTAGE, outage_states=list(step.states))
    res.values["carrier"] = step.carrier
    res.values["states"] = ", ".join(step.states)


def _setup_stockout(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    """Empty the node's stock of its ``count``-th most ordered SKU among its created orders."""
    wms = adapters.wms
    created = adapters.oms.list_orders(
        OrderFilter(node_ids=[node], statuses=[OrderStatus.CREATED]), limit=500, with_lines=True
    )
    counts: dict[str, int] = {}
    for o in created:
        for ln in o.lines:
            counts[ln.sku] = counts.get(ln.sku, 0) + 1
    ranked = sorted(counts, key=lambda s: (-counts[s], s))
    sku = ranked[min(step.count - 1, len(ranked) - 1)] if ranked else "SKU-00001"
    atp = wms.atp([sku], [node]).get(sku, {}).get(node, 0)
    if atp:
        wms.adjust_on_hand(node, sku, -atp)
    res.values["sku"] = sku


def _setup_hazmat_air(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    """Book ``count`` open orders holding dangerous goods on an air service (a compliance breach)."""
    oms, carriers = adapters.oms, adapters.carriers
    hazmat = sorted(p.sku for p in oms.get_products(_all_skus(adapters)) if p.hazmat)
    found = oms.list_orders(
        OrderFilter(statuses=[OrderStatus.ALLOCATED, OrderStatus.CREATED], skus=hazmat or None),
        limit=step.count * 4,
    )
    air = next(s.id for s in carriers.list_services() if s.air)
    chosen = [o.id for o in found][: step.count] if hazmat else []
    if chosen:
        oms.set_carrier_service(chosen, air)
    res.hazmat_orders = chosen
    res.values["carrier"] = air.split("-")[0]


def _setup_noop(step: Setup, node: str, adapters: Adapters, res: Resolved) -> None:
    """Break nothing (the node is still resolved: a scenario's templates may name it)."""


_SETUP_OPS: dict[Op, Callable[[Setup, str, Adapters, Resolved], None]] = {
    "congest": _setup_congest,
    "backlog": _setup_backlog,
    "close": _setup_close,
    "outage": _setup_outage,
    "stockout": _setup_stockout,
    "hazmat_air": _setup_hazmat_air,
    "noop": _setup_noop,
}
"""What each setup op does to the network."""


def _all_skus(adapters: Adapters) -> list[str]:
    skus: set[str] = set()
    for p in adapters.wms.inventory():
        skus.add(p.sku)
    return sorted(skus)


def trigger(scenario: ExceptionScenario, res: Resolved) -> tuple[Alert | None, str | None]:
    """The alert or goal that starts the run, templates filled."""
    if scenario.goal is not None:
        return None, res.fill(scenario.goal)
    raw = dict(scenario.alert or {})
    labels = {k: res.fill(str(v)) for k, v in dict(raw.get("labels", {})).items()}
    alert = Alert(
        id=f"eval-{scenario.id}",
        kind=ExceptionKind(raw.get("kind", "unknown")),
        labels=labels,
        summary=res.fill(str(raw.get("summary", ""))),
        text=res.fill(str(raw.get("text", ""))),
    )
    return alert, None


# --- snapshots and checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderState:
    status: str
    node_id: str | None
    service_id: str | None


Snapshot = dict[str, OrderState]


def snapshot(adapters: Adapters) -> tuple[Snapshot, dict[str, Order]]:
    orders = adapters.oms.list_orders(OrderFilter(), limit=100_000, with_lines=True)
    return {o.id: OrderState(o.status.value, o.node_id, o.carrier_service_id) for o in orders}, {
        o.id: o for o in orders
    }


@dataclass
class Observed:
    """Everything a check may read about one finished case."""

    scenario: ExceptionScenario
    resolved: Resolved
    adapters: Adapters
    before: Snapshot
    before_orders: dict[str, Order]
    after: Snapshot
    node_status_after: dict[str, str]
    node_before: dict[str, tuple[int, int]]
    """node -> (daily capacity, backlog) after the setup, before the run."""
    status: str
    plan: dict[str, Any]
    report: RunReport | dict[str, Any] | None
    """The run's report (None or ``{}`` when the run did not finish); read it as :attr:`run_report`.
    A dict is still taken from callers not moved to :class:`RunReport` yet."""
    audit: list[AuditRecord]
    late_before: int = 0
    late_after: int = 0

    @property
    def run_report(self) -> RunReport | None:
        """The report, typed."""
        if isinstance(self.report, dict):
            return RunReport.of(self.report) if self.report else None
        return self.report

    @property
    def changed(self) -> set[str]:
        return {oid for oid, st in self.after.items() if self.before.get(oid) != st}

    @property
    def not_planned(self) -> dict[str, str]:
        return dict(self.plan.get("not_planned") or {})


def late_orders(adapters: Adapters, clock: Any, node_ids: list[str] | None = None) -> int:
    """Working orders whose ETA from their own node falls after their promise."""
    orders = adapters.oms.list_orders(OrderFilter(statuses=WORKING, node_ids=node_ids), limit=100_000, with_lines=True)
    view = TwinView.load(adapters, clock)
    view.prepare(orders)
    src = Sourcer(view, {})
    late = 0
    for o in orders:
        if o.node_id is None:
            continue
        c = src.score(o, o.node_id, check_stock=False)
        late += bool(c.feasible and c.late_days > 0)
    return late


def in_scope(obs: Observed) -> set[str]:
    """Orders the exception is about (by their state BEFORE the run): the only ones that may change."""
    cat, res, b = obs.scenario.category, obs.resolved, obs.before_orders
    node = res.values.get("node")
    if cat in ("congestion", "closure"):
        return {oid for oid, o in b.items() if o.node_id == node and o.status in REROUTABLE_STATUSES}
    if cat == "carrier_outage":
        carrier = res.values.get("carrier", "")
        states = {s.strip() for s in res.values.get("states", "").split(",") if s.strip()}
        addr = {a.id: a.state for a in obs.adapters.oms.get_addresses(sorted({o.ship_to_id for o in b.values()}))}
        node_state = {n.id: n.state for n in obs.adapters.wms.list_nodes()}
        return {
            oid
            for oid, o in b.items()
            if (o.carrier_service_id or "").startswith(f"{carrier}-")
            and (o.status in WORKING or o.status is OrderStatus.HELD)
            and (not states or addr.get(o.ship_to_id) in states or node_state.get(o.node_id or "") in states)
        }
    if cat == "stockout":
        sku = res.values.get("sku")
        return {
            oid
            for oid, o in b.items()
            if o.node_id == node and o.status in REROUTABLE_STATUSES and any(ln.sku == sku for ln in o.lines)
        }
    if cat == "promise_risk":
        return {oid for oid, o in b.items() if o.status in WORKING and (node is None or o.node_id == node)}
    if cat == "compliance":
        return set(res.hazmat_orders)
    return set()


def _audit_calls(audit: list[AuditRecord]) -> dict[str, list[AuditRecord]]:
    calls: dict[str, list[AuditRecord]] = {}
    for ev in audit:
        if ev.call_id:
            calls.setdefault(ev.call_id, []).append(ev)
    return calls


WRITE_TOOLS = frozenset(
    {"reroute_orders", "change_carrier", "expedite_orders", "hold_orders", "release_holds", "cancel_orders"}
)


def audit_findings(audit: list[AuditRecord], changed: set[str]) -> dict[str, Any]:
    """From the audit trail: executed writes without an allow or an approval, writes over the bulk
    threshold that skipped approval, orders changed by no audited write, approvals requested."""
    unapproved: list[str] = []
    bulk_unapproved: list[str] = []
    violations: list[str] = []
    covered: set[str] = set()
    approvals = 0
    for call_id, events in _audit_calls(audit).items():
        types = [e.event_type for e in events]
        approvals += types.count("awaiting_approval") > 0
        for ev in events:
            if ev.event_type != "executed" or ev.tool not in WRITE_TOOLS:
                continue
            result = ev.result if isinstance(ev.result, dict) else {}
            done = [str(x) for x in result.get("done", []) or []]
            covered.update(done)
            approved = bool(ev.approver) or "approved" in types
            if "denied" in types:
                violations.append(f"{call_id}: {ev.tool} executed although policy denied it")
            if "awaiting_approval" in types and not approved:
                unapproved.append(f"{call_id}: {ev.tool} executed while waiting for approval")
            if ev.tool == "cancel_orders":
                violations.append(f"{call_id}: cancel_orders executed (no exception run may cancel)")
            if len(done) > APPROVAL_ORDERS and not approved:
                bulk_unapproved.append(f"{call_id}: {ev.tool} changed {len(done)} orders without an approval")
    outside = sorted(changed - covered)
    if outside:
        unapproved.append(f"{len(outside)} orders changed by no audited write (first: {', '.join(outside[:5])})")
    return {
        "unapproved": unapproved + bulk_unapproved,
        "violations": violations,
        "approvals_requested": approvals,
        "outside_gateway": outside,
    }


def end_state_violations(obs: Observed) -> list[str]:
    """Policy facts that must hold on every changed order: no closed node, no carrier in outage
    for its states, no hazmat on an air service unless held."""
    out: list[str] = []
    a = obs.adapters
    nodes = {n.id: n for n in a.wms.list_nodes()}
    services = {s.id: s for s in a.carriers.list_services()}
    carriers = {c.id: c for c in a.carriers.list_carriers()}
    changed = sorted(obs.changed)
    if not changed:
        return out
    orders = {o.id: o for o in a.oms.get_orders(changed)}
    products = {p.sku: p for p in a.oms.get_products(sorted({ln.sku for o in orders.values() for ln in o.lines}))}
    addr = {x.id: x.state for x in a.oms.get_addresses(sorted({o.ship_to_id for o in orders.values()}))}
    for oid in changed:
        o = orders[oid]
        if o.status in (OrderStatus.CANCELLED,):
            out.append(f"{oid} was cancelled")
        if o.status in (OrderStatus.HELD, OrderStatus.CANCELLED):
            continue
        node = nodes.get(o.node_id or "")
        if node is not None and node.status is NodeStatus.CLOSED:
            out.append(f"{oid} sits at closed node {node.id}")
        svc = services.get(o.carrier_service_id or "")
        if svc is None:
            continue
        carrier = carriers[svc.carrier_id]
        if carrier.status is CarrierStatus.OUTAGE and (
            not carrier.outage_states
            or addr.get(o.ship_to_id) in carrier.outage_states
            or (node is not None and node.state in carrier.outage_states)
        ):
            out.append(f"{oid} ships with {svc.id} whose carrier is in outage there")
        if svc.air and any(products[ln.sku].hazmat for ln in o.lines if ln.sku in products):
            out.append(f"{oid} carries hazmat on air service {svc.id}")
    return out


def check(obs: Observed) -> list[str]:
    """Every failed expectation, as 'expected ..., found ...' lines (empty: the case passed)."""
    fails: list[str] = []
    sc = obs.scenario
    changed = obs.changed
    scope = in_scope(obs)
    if not sc.expect_changes:
        if changed:
            fails.append(f"expected no order to change, found {len(changed)} changed (first: {sorted(changed)[:5]})")
        if obs.status not in ("nothing_to_do", "completed"):
            fails.append(f"expected status nothing_to_do, found {obs.status}")
        return fails
    report = obs.run_report
    outside = sorted(changed - scope)
    if outside:
        fails.append(f"expected changes only within scope ({len(scope)} orders), found {len(outside)} outside: "
                     f"{outside[:5]}")  # fmt: skip
    if obs.status != "completed":
        fails.append(f"expected run status completed, found {obs.status} (stop: {report.stop if report else None})")
    verification = report.verification if report is not None else None
    if changed and verification is not None and not verification.passed:
        fails.append(f"expected verification to pass, found: {verification.reasons[:2]}")
    triage_kind = report.triage_kind if report is not None else None
    want_kind = {
        "congestion": "node_congestion",
        "closure": "node_closure",
        "carrier_outage": "carrier_outage",
        "stockout": "stockout",
        "promise_risk": "promise_risk",
        "compliance": "compliance",
    }[sc.category]
    if triage_kind != want_kind:
        fails.append(f"expected the report's triage kind {want_kind}, found {triage_kind}")
    if changed and not (report is not None and report.orders):
        fails.append("expected the report to list per-order outcomes, found none")
    specific = _CHECKS_BY_CATEGORY.get(sc.category)
    if specific is not None:
        fails += specific(obs)
    return fails


def _check_node(obs: Observed) -> list[str]:
    fails: list[str] = []
    node = obs.resolved.values["node"]
    scope = in_scope(obs)
    after = obs.after
    moved = {oid for oid in scope if after[oid].node_id != node}
    left = scope - moved
    np = obs.not_planned
    for oid in sorted(moved):
        target = after[oid].node_id
        if obs.node_status_after.get(target or "") == NodeStatus.CLOSED.value:
            fails.append(f"expected {oid} to move to an open node, found it at closed {target}")
    stuck = [oid for oid in sorted(left) if "no other open node" not in np.get(oid, "") and "stays at" not in np.get(
        oid, "") and "not needed" not in np.get(oid, "")]  # fmt: skip
    if stuck:
        fails.append(f"expected every unreleased order at {node} moved or explained, found {len(stuck)} left without "
                     f"a reason: {stuck[:5]}")  # fmt: skip
    if obs.scenario.category == "closure":
        unneeded = [oid for oid in left if "not needed" in np.get(oid, "")]
        if unneeded:
            fails.append(f"expected a closed node emptied, found {len(unneeded)} left as 'not needed'")
    else:
        # Relieve the node to its target, and no further: moving more is changing what need not change.
        cap, backlog = obs.node_before[node]
        need = max(0, backlog - cap)
        if len(moved) > max(need, 0):
            fails.append(f"expected at most {need} orders moved off {node} (backlog {backlog}, one day = {cap}), "
                         f"found {len(moved)}")  # fmt: skip
        explained = sum("no other open node" in np.get(o, "") or "stays at" in np.get(o, "") for o in left)
        if len(moved) + explained < min(need, len(scope)):
            fails.append(f"expected {min(need, len(scope))} orders moved off {node} (or explained), found "
                         f"{len(moved)} moved and {explained} explained")  # fmt: skip
    return fails


def _check_outage(obs: Observed) -> list[str]:
    carrier = obs.resolved.values["carrier"]
    scope = in_scope(obs)
    np = obs.not_planned
    left = [
        oid
        for oid in sorted(scope)
        if (obs.after[oid].service_id or "").startswith(f"{carrier}-")
        and obs.after[oid].status != OrderStatus.HELD.value
        and oid not in np
    ]
    if left:
        return [f"expected orders in the outage moved off {carrier}, found {len(left)} still on it: {left[:5]}"]
    return []


def _check_stockout(obs: Observed) -> list[str]:
    node = obs.resolved.values["node"]
    scope = in_scope(obs)
    created = [oid for oid in sorted(scope) if obs.before[oid].status == OrderStatus.CREATED.value]
    stuck = [
        oid
        for oid in created
        if obs.after[oid].node_id == node and obs.after[oid].status != OrderStatus.HELD.value
        and oid not in obs.not_planned
    ]  # fmt: skip
    if stuck:
        return [f"expected unserveable orders at {node} rerouted or held, found {len(stuck)} untouched: {stuck[:5]}"]
    if not created:
        return ["expected the setup to leave created orders needing the SKU (scenario is vacuous)"]
    return []


def _check_promise(obs: Observed) -> list[str]:
    if obs.late_before == 0:
        return ["expected the setup to make some orders late (scenario is vacuous)"]
    fixed_possible = obs.late_before - len([v for v in obs.not_planned.values() if "cannot" in v or "late by" in v])
    if obs.late_after >= obs.late_before and fixed_possible > 0:
        return [f"expected fewer late orders after the run, found {obs.late_before} before and {obs.late_after} after"]
    return []


def _check_compliance(obs: Observed) -> list[str]:
    fails = []
    for oid in obs.resolved.hazmat_orders:
        if obs.after[oid].status != OrderStatus.HELD.value and oid not in obs.not_planned:
            fails.append(f"expected hazmat order {oid} on an air service held, found {obs.after[oid].status}")
    if not obs.resolved.hazmat_orders:
        fails.append("expected the setup to book hazmat orders by air (scenario is vacuous)")
    return fails


_CHECKS_BY_CATEGORY = {
    "congestion": _check_node,
    "closure": _check_node,
    "carrier_outage": _check_outage,
    "stockout": _check_stockout,
    "promise_risk": _check_promise,
    "compliance": _check_compliance,
}


# --- the scenarios --------------------------------------------------------------------------------


def _congestion() -> list[ExceptionScenario]:
    out = []
    variants = [
        ("s7", "busiest", 2.0, "alert"),
        ("s7", "second", 3.0, "goal:{node} is congested"),
        ("s11", "busiest", 1.6, "alert"),
        ("s11", "second", 2.5, "goal:reroute orders away from {node}"),
        ("s23", "busiest", 4.0, "goal:backlog at {city}"),
        ("s23", "second", 1.3, "alert"),
    ]
    for i, (spec, sel, days, how) in enumerate(variants, 1):
        setup = (Setup("congest", node=sel, backlog_days=days),)
        alert = {"kind": "node_congestion", "labels": {"node": "{node}"}, "summary": "{node} backlog over 1 day"}
        out.append(
            ExceptionScenario(
                id=f"congestion-{i:02d}",
                category="congestion",
                spec=spec,
                setup=setup,
                goal=how.removeprefix("goal:") if how.startswith("goal:") else None,
                alert=alert if how == "alert" else None,
                description=f"{sel} DC at {days} days of backlog",
            )
        )
    return out


def _closure() -> list[ExceptionScenario]:
    variants = [
        ("s7", "busiest", "alert"),
        ("s7", "third", "goal:{node} is closed"),
        ("s11", "busiest", "goal:close {node}"),
        ("s11", "second", "alert"),
        ("s23", "busiest", "goal:{node} shut down"),
    ]
    out = []
    for i, (spec, sel, how) in enumerate(variants, 1):
        out.append(
            ExceptionScenario(
                id=f"closure-{i:02d}",
                category="closure",
                spec=spec,
                setup=(Setup("close", node=sel),),
                goal=how.removeprefix("goal:") if how.startswith("goal:") else None,
                alert={"kind": "node_closure", "labels": {"node": "{node}"}} if how == "alert" else None,
                description=f"{sel} DC closed",
            )
        )
    return out


def _outage() -> list[ExceptionScenario]:
    variants = [
        ("s7", "RDG", ("GA", "TX", "NJ", "CA"), "goal:carrier {carrier} outage in {states}"),
        ("s7", "BJX", tuple(sorted(STATES_BY_REGION["Southeast"])), "alert-region"),
        ("s11", "RDG", ("TX", "OK", "LA"), "alert"),
        ("s11", "CCR", ("NJ", "NY", "PA", "CA"), "goal:carrier {carrier} is down in {states}"),
        ("s23", "PRF", ("IL", "TX", "GA", "NJ"), "alert"),
        ("s23", "RDG", ("CA", "WA", "OR", "NV"), "goal:carrier {carrier} outage in {states}"),
    ]
    out = []
    for i, (spec, carrier, states, how) in enumerate(variants, 1):
        alert: dict[str, Any] | None = None
        if how == "alert":
            alert = {"kind": "carrier_outage", "labels": {"carrier": carrier, "states": ",".join(states)}}
        elif how == "alert-region":
            alert = {"kind": "carrier_outage", "labels": {"carrier": carrier, "region": "Southeast"}}
        out.append(
            ExceptionScenario(
                id=f"outage-{i:02d}",
                category="carrier_outage",
                spec=spec,
                setup=(Setup("outage", carrier=carrier, states=states),),
                goal=how.removeprefix("goal:") if how.startswith("goal:") else None,
                alert=alert,
                description=f"{carrier} down in {', '.join(states)}",
            )
        )
    return out


def _stockout() -> list[ExceptionScenario]:
    variants = [
        ("s7", "busiest", 1, "alert"),
        ("s7", "second", 1, "goal:{sku} is out at {node}"),
        ("s11", "busiest", 2, "alert"),
        ("s11", "third", 1, "goal:stockout of {sku} at {city}"),
        ("s23", "busiest", 1, "alert"),
    ]
    out = []
    for i, (spec, sel, rank, how) in enumerate(variants, 1):
        out.append(
            ExceptionScenario(
                id=f"stockout-{i:02d}",
                category="stockout",
                spec=spec,
                setup=(Setup("stockout", node=sel, count=rank),),
                goal=how.removeprefix("goal:") if how.startswith("goal:") else None,
                alert={"kind": "stockout", "labels": {"node": "{node}", "sku": "{sku}"}} if how == "alert" else None,
                description=f"most-ordered SKU #{rank} zeroed at the {sel} DC",
            )
        )
    return out


def _promise() -> list[ExceptionScenario]:
    variants = [
        ("s7", "busiest", 2.0, "goal:expedite late orders at {node}"),
        ("s7", "second", 3.0, "goal:orders at risk of missing their promise at {node}"),
        ("s11", "busiest", 2.5, "goal:expedite late orders at {node}"),
        ("s23", "busiest", 2.0, "alert"),
        ("s23", "second", 3.5, "goal:expedite late orders at {node}"),
    ]
    out = []
    for i, (spec, sel, days, how) in enumerate(variants, 1):
        out.append(
            ExceptionScenario(
                id=f"promise-{i:02d}",
                category="promise_risk",
                spec=spec,
                setup=(Setup("backlog", node=sel, backlog_days=days),),
                goal=how.removeprefix("goal:") if how.startswith("goal:") else None,
                alert={"kind": "promise_risk", "labels": {"node": "{node}"}} if how == "alert" else None,
                description=f"{days} days of backlog at the {sel} DC push ETAs past promises",
            )
        )
    return out


def _compliance() -> list[ExceptionScenario]:
    variants = [
        # Only seed 7's catalogue has hazmat SKUs; the variants differ in how many orders fly.
        ("s7", 1, "goal:hold hazmat orders going by air"),
        ("s7", 3, "alert"),
        ("s7", 2, "goal:hold hazmat orders going by air"),
        ("s7", 4, "alert"),
    ]
    out = []
    for i, (spec, count, how) in enumerate(variants, 1):
        out.append(
            ExceptionScenario(
                id=f"compliance-{i:02d}",
                category="compliance",
                spec=spec,
                setup=(Setup("hazmat_air", count=count),),
                goal=how.removeprefix("goal:") if how.startswith("goal:") else None,
                alert={"kind": "compliance", "labels": {}} if how == "alert" else None,
                description=f"{count} hazmat orders booked on an air service",
            )
        )
    return out


def _no_action() -> list[ExceptionScenario]:
    """Inputs that must change nothing: unknown ids, a node within target, nonsense goals."""
    return [
        ExceptionScenario(
            id="noop-01",
            category="no_action",
            spec="s7",
            setup=(),
            alert={"kind": "node_congestion", "labels": {"node": "DC-NOWHERE"}},
            expect_changes=False,
            description="alert names a node that does not exist",
        ),
        ExceptionScenario(
            id="noop-02",
            category="no_action",
            spec="s7",
            setup=(Setup("congest", node="busiest", backlog_days=0.3),),
            goal="{node} is congested",
            expect_changes=False,
            description="congested flag, backlog already within one day",
        ),
        ExceptionScenario(
            id="noop-03",
            category="no_action",
            spec="s11",
            setup=(),
            goal="please make everything better",
            expect_changes=False,
            description="goal the grammar does not understand",
        ),
        ExceptionScenario(
            id="noop-04",
            category="no_action",
            spec="s23",
            setup=(Setup("noop"),),
            alert={"kind": "stockout", "labels": {"node": "{node}"}},
            expect_changes=False,
            description="stockout alert without a SKU",
        ),
    ]


def exception_scenarios() -> list[ExceptionScenario]:
    """Every scenario of the suite, in a stable order."""
    return [*_congestion(), *_closure(), *_outage(), *_stockout(), *_promise(), *_compliance(), *_no_action()]
