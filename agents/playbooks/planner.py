"""Deterministic playbooks: the plan OrderOps proposes for each known kind of exception when no
model is configured (and the baseline the LLM planner is measured against).

Each playbook reads the affected orders in batches, builds one :class:`~tools.twin.TwinView` and
one ATP snapshot, decides every order with the sourcing scorer, and groups the decisions into few
tool calls (one reroute per target node, one carrier change per service...). Orders it leaves
alone are listed in ``Plan.not_planned`` with the reason. It proposes only: the gateway simulates,
applies policy and approvals, and executes.

A closure plan starts by marking the node closed (``set_node_status``, approved like any write) when
the systems do not show it yet, so sourcing stops sending new orders there; every call of a closure
or outage plan carries the incident (``incident``) so its preview's "before" is the world with the
node or lane down, whether or not the systems show it yet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from agents.optimize import gc_paused, optimise_moves
from agents.plan import Alternative, ExceptionKind, Plan, PlannedCall, Triage
from agents.playbooks._common import Group, calls, load_orders, merge_alternatives, rejected_text
from agents.playbooks._greedy import MatrixRanker, Pick, ScalarRanker
from agents.score_matrix import ScoreMatrix, score_matrix
from agents.sourcing import Candidate, RouteDecision, Sourcer, SourcingWeights, read_atp
from core.domain import REROUTABLE_STATUSES, NodeStatus, Order, OrderStatus, ServiceLevel
from core.shipping import ship_date
from tools.adapters.protocols import OrderFilter
from tools.base import ToolEnv
from tools.twin import TwinView

UNRELEASED = sorted(REROUTABLE_STATUSES)
WORKING = [OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.PICKED]
HOLDABLE = [OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED]
SPEED = {ServiceLevel.GROUND: 0, ServiceLevel.TWO_DAY: 1, ServiceLevel.OVERNIGHT: 2}


def _view(env: ToolEnv, orders: list[Order]) -> TwinView:
    view = TwinView.load(env.adapters, env.clock)
    view.prepare(orders)
    return view


def _restrict(orders: list[Order], order_ids: list[str]) -> list[Order]:
    if not order_ids:
        return orders
    wanted = set(order_ids)
    return [o for o in orders if o.id in wanted]


@dataclass
class _Draft:
    """A plan being assembled."""

    kind: ExceptionKind
    steps: list[PlannedCall] = field(default_factory=list)
    not_planned: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    optimizer: dict[str, Any] | None = None

    def plan(self, summary: str) -> Plan:
        text = "; ".join([summary, *self.notes]) if self.notes else summary
        return Plan(
            kind=self.kind,
            summary=text,
            steps=self.steps,
            not_planned=self.not_planned,
            planner=f"playbook:{self.kind.value}",
            optimizer=self.optimizer,
        )


@dataclass
class PlaybookPlanner:
    """The deterministic :class:`~agents.plan.Planner`: one playbook per exception kind."""

    weights: SourcingWeights = field(default_factory=SourcingWeights)
    congestion_target_days: float = 1.0
    """A congested node is relieved until its backlog is at most this many days of capacity."""
    name: str = "playbook"

    def plan(self, triage: Triage, env: ToolEnv) -> Plan:
        handlers: dict[ExceptionKind, Callable[[Triage, ToolEnv], Plan]] = {
            ExceptionKind.NODE_CONGESTION: self._node,
            ExceptionKind.NODE_CLOSURE: self._node,
            ExceptionKind.CARRIER_OUTAGE: self._carrier_outage,
            ExceptionKind.STOCKOUT: self._stockout,
            ExceptionKind.STOCKOUT_RISK: self._stockout_risk,
            ExceptionKind.PROMISE_RISK: self._promise_risk,
            ExceptionKind.COMPLIANCE: self._compliance,
        }
        handler = handlers.get(triage.kind)
        if handler is None:
            return _Draft(triage.kind).plan(f"no playbook for {triage.kind.value}: nothing planned ({triage.summary})")
        return handler(triage, env)

    # --- congestion and closure -------------------------------------------------------------

    def _node(self, triage: Triage, env: ToolEnv) -> Plan:
        # A batch of 100k orders builds millions of small acyclic objects (orders, candidates,
        # decisions); the cyclic collector's passes over that growing heap cost ~30% of the plan.
        with gc_paused():
            return self._node_plan(triage, env)

    def _node_plan(self, triage: Triage, env: ToolEnv) -> Plan:
        closure = triage.kind is ExceptionKind.NODE_CLOSURE
        draft = _Draft(triage.kind)
        if not triage.scope.node_ids:
            return draft.plan("no node named: nothing planned")
        sources = list(triage.scope.node_ids)
        orders = _restrict(load_orders(env, OrderFilter(node_ids=sources, statuses=UNRELEASED)), triage.scope.order_ids)
        view = _view(env, orders)
        targets = sorted(n.id for n in view.nodes.values() if n.id not in sources and n.status is not NodeStatus.CLOSED)
        atp = read_atp(env, orders, targets) if orders and targets else {}
        src = Sourcer(view, atp, self.weights)
        ranker, matrix = _ranker(src, orders, targets, sources)
        mv = _NodeMoves()
        by_source: dict[str, list[Order]] = defaultdict(list)
        for o in orders:
            by_source[o.node_id or ""].append(o)
        for node_id in sources:
            self._move_from(node_id, by_source.get(node_id, []), closure, view, ranker, draft, mv)
        if not closure and mv.greedy and self.weights.batch_optimizer:
            better = optimise_moves(
                Sourcer(view, atp, self.weights), orders, mv.stays, targets, mv.bounds,
                [(o, pick) for _, o, pick, _ in mv.greedy], draft.not_planned,
                matrix=None if matrix is None else matrix.columns(list(range(len(targets)))),
            )  # fmt: skip
            draft.optimizer = better.summary
            if better.moves is not None:
                mv.regroup(better.moves)
        if not mv.regrouped:
            mv.greedy_groups()
        incident = {"incident": {"closed_node_ids": sources}} if closure else {}
        if closure:
            _close_first(draft, view, sources)
        groups, at_risk = mv.groups, mv.at_risk
        for (origin, target), g in sorted(groups.items()):
            why = "is closed" if closure else "is congested"
            parts = [
                f"{origin} {why}: move {len(g.ids)} unreleased orders to {target}, their best-scoring open node "
                f"with stock for every line",
                f"{g.on_time} of them meet their promise from {target}",
            ]
            if not closure:
                parts.append(f"{at_risk[(origin, target)]} would have missed it at {origin}")
            draft.steps += calls(
                "reroute_orders",
                g.ids,
                {"to_node_id": target, **incident},
                "; ".join(parts),
                merge_alternatives(g.decisions),
            )
        total = sum(len(g.ids) for g in groups.values())
        return draft.plan(
            f"{triage.kind.value} at {', '.join(sources)}: reroute {total} orders in {len(draft.steps)} calls; "
            f"{len(draft.not_planned)} stay"
        )

    def _move_from(
        self,
        node_id: str,
        mine: list[Order],
        closure: bool,
        view: TwinView,
        ranker: Ranker,
        draft: _Draft,
        mv: _NodeMoves,
    ) -> None:
        """Move the orders of one source node, most urgent first, until the node is closed out or its
        backlog is within the target; an order stays when no open node serves it whole, or when it
        meets its promise where it is and the best alternative would not."""
        need, stay = self._need(node_id, mine, closure, view, ranker, draft)
        mv.stays.update(stay)
        moved = 0
        # Once stock runs out, most picks share one refusal dict (every target out of stock): its
        # text is made once (rejected dicts are never changed once made).
        texts: dict[int, tuple[dict[str, list[str]], str]] = {}
        for o in mine:
            if moved >= need:
                draft.not_planned[o.id] = (
                    f"not needed: moving {moved} orders brings {node_id}'s backlog within "
                    f"{self.congestion_target_days:g} day(s) of capacity"
                )
                continue
            d = ranker.rank(o)
            if d.node_id is None:
                draft.not_planned[o.id] = f"no other open node can serve it whole ({_refused(d, texts)})"
                continue
            here = stay.get(o.id)
            if here is not None and here.meets_promise and not d.meets_promise:
                draft.not_planned[o.id] = (
                    f"stays at {node_id}: it meets its promise there, while the best alternative "
                    f"{d.node_id} would be late (ETA {d.eta})"
                )
                continue
            ranker.assign(o, d.node_id)
            moved += 1
            mv.greedy.append((node_id, o, d, here is not None and not here.meets_promise))
        if not closure:
            mv.bounds[node_id] = (moved, min(need, len(mine)))

    def _need(
        self, node_id: str, mine: list[Order], closure: bool, view: TwinView, ranker: Ranker, draft: _Draft
    ) -> tuple[int, dict[str, Candidate]]:
        """How many of the node's orders must move, with ``mine`` sorted into the order they go in:
        all of a closed node's, by promise; for a congested node, enough to bring the backlog to the
        target, those that would miss their promise by staying first (the latest first). Also each
        order's score where it is (congestion only)."""
        if closure:
            mine.sort(key=lambda o: (o.promised_date, o.id))
            return len(mine), {}
        node = view.nodes[node_id]
        limit = math.floor(self.congestion_target_days * node.daily_capacity)
        need = max(0, node.backlog - limit)
        stay = ranker.stays(mine, node_id)
        mine.sort(key=lambda o: (-stay[o.id].late_days, not stay[o.id].feasible, o.promised_date, o.id))
        draft.notes.append(
            f"{node_id}: backlog {node.backlog} = {node.backlog_days:.2f} days of capacity; "
            f"moving {min(need, len(mine))} of {len(mine)} unreleased orders brings it to the target of "
            f"{self.congestion_target_days:g} day(s)"
            if need
            else f"{node_id}: backlog {node.backlog} is already within "
            f"{self.congestion_target_days:g} day(s) of capacity"
        )
        return need, stay

    # --- carrier outage ---------------------------------------------------------------------

    def _carrier_outage(self, triage: Triage, env: ToolEnv) -> Plan:
        draft = _Draft(triage.kind)
        carriers = list(triage.scope.carrier_ids)
        if not carriers:
            return draft.plan("no carrier named: nothing planned")
        services = {s.id: s for s in env.adapters.carriers.list_services()}
        mine = sorted(s for s, svc in services.items() if svc.carrier_id in carriers)
        flt = OrderFilter(
            carrier_service_ids=mine,
            statuses=[*WORKING, OrderStatus.HELD],
            node_ids=triage.scope.node_ids or None,
        )
        orders = _restrict(load_orders(env, flt), triage.scope.order_ids)
        view = _view(env, orders)
        states = set(triage.scope.states)
        if states:
            orders = [
                o
                for o in orders
                if view.addresses[o.ship_to_id].state in states
                or (o.node_id is not None and view.nodes[o.node_id].state in states)
            ]
        src = Sourcer(view, {}, self.weights)
        groups: dict[str, Group] = defaultdict(Group)
        for o in orders:
            if o.node_id is None:
                draft.not_planned[o.id] = "order has no node yet"
                continue
            level = [s for s in sorted(services) if services[s].level is o.service_level]
            cands = [src.score(o, o.node_id, service_id=s, exclude_carriers=carriers, check_stock=False) for s in level]
            d = src.decide(o, cands)
            if d.carrier_service_id is None or d.node_id is None:
                draft.not_planned[o.id] = (
                    f"no other {o.service_level.value} service can take it from {o.node_id} ({rejected_text(d)})"
                )
                continue
            groups[d.carrier_service_id].decisions.append(d)
        where = f" in {', '.join(sorted(states))}" if states else ""
        incident = {"carrier_outages": {c: sorted(states) for c in carriers}}
        for sid, g in sorted(groups.items()):
            reason = (
                f"carrier {', '.join(carriers)} is in outage{where}: ship {len(g.ids)} orders with {sid} instead, "
                f"the best-scoring available {services[sid].level.value} service from their nodes; "
                f"{g.on_time} of them still meet their promise"
            )
            draft.steps += calls(
                "change_carrier",
                g.ids,
                {"carrier_service_id": sid, "incident": incident},
                reason,
                merge_alternatives(g.decisions),
            )
        total = sum(len(g.ids) for g in groups.values())
        return draft.plan(
            f"carrier outage of {', '.join(carriers)}{where}: move {total} orders to other services in "
            f"{len(draft.steps)} calls; {len(draft.not_planned)} left as they are"
        )

    # --- stockout ---------------------------------------------------------------------------

    def _stockout(self, triage: Triage, env: ToolEnv) -> Plan:
        draft = _Draft(triage.kind)
        nodes, skus = list(triage.scope.node_ids), list(triage.scope.skus)
        if not nodes or not skus:
            return draft.plan("a stockout needs a node and a SKU: nothing planned")
        orders = _restrict(
            load_orders(env, OrderFilter(node_ids=nodes, skus=skus, statuses=UNRELEASED)), triage.scope.order_ids
        )
        orders.sort(key=lambda o: (o.promised_date, o.id))
        view = _view(env, orders)
        targets = sorted(n.id for n in view.nodes.values() if n.status is not NodeStatus.CLOSED)
        src = Sourcer(view, read_atp(env, orders, sorted(view.nodes)) if orders else {}, self.weights)
        groups: dict[str, Group] = defaultdict(Group)
        held: list[RouteDecision] = []
        for o in orders:
            node_id = o.node_id or ""
            if o.status is OrderStatus.ALLOCATED:
                draft.not_planned[o.id] = f"already holds a reservation at {node_id}"
                continue
            if src.has_stock(o, node_id):
                # Served from what is left at its node: keep those units for it.
                src.assign(o.model_copy(update={"node_id": None}), node_id)
                continue
            d = src.rank(o, [n for n in targets if n != node_id])
            if d.node_id is None:
                held.append(d)
                continue
            src.assign(o, d.node_id)
            groups[d.node_id].decisions.append(d)
        sku_text = ", ".join(skus)
        for target, g in sorted(groups.items()):
            reason = (
                f"{sku_text} is out at {', '.join(nodes)}: move {len(g.ids)} orders that cannot be served there to "
                f"{target}, the best-scoring node with stock for every line; {g.on_time} meet their promise"
            )
            draft.steps += calls(
                "reroute_orders", g.ids, {"to_node_id": target}, reason, merge_alternatives(g.decisions)
            )
        if held:
            ids = [d.order_id for d in held]
            reason = (
                f"{sku_text} is out at {', '.join(nodes)} and no open node has enough stock for every line of "
                f"these {len(ids)} orders: hold them for a person (split, substitute or wait for stock)"
            )
            alts = [Alternative(node_id=n, score=0.0, reasons=["NO_STOCK"]) for n in targets if n not in nodes][:3]
            draft.steps += calls("hold_orders", ids, {}, reason, alts)
        moved = sum(len(g.ids) for g in groups.values())
        return draft.plan(
            f"stockout of {sku_text} at {', '.join(nodes)}: reroute {moved} orders, hold {len(held)}; "
            f"{len(draft.not_planned)} unaffected"
        )

    # --- projected stock-out ----------------------------------------------------------------

    donor_keep_share: float = 0.5
    """A node giving stock keeps at least this share of its available units for its own demand."""

    def _stockout_risk(self, triage: Triage, env: ToolEnv) -> Plan:
        """Before a projected stock-out: move the shortfall from the nodes that can spare the most
        (each keeps ``donor_keep_share`` of what it has), largest first; what none can spare is
        left for re-sourcing (a purchase order), which is a person's call."""
        draft = _Draft(triage.kind)
        scope = triage.scope
        if not scope.node_ids or not scope.skus or scope.units is None:
            return draft.plan("a projected stock-out needs a node, a SKU and the units short: nothing planned")
        target, sku, need = scope.node_ids[0], scope.skus[0], scope.units
        open_nodes = {n.id for n in env.adapters.wms.list_nodes() if n.status is not NodeStatus.CLOSED}
        atp = env.adapters.wms.atp([sku]).get(sku, {})
        spare = {
            n: int(units * (1 - self.donor_keep_share))
            for n, units in atp.items()
            if n != target and n in open_nodes and units > 0
        }
        ranked = sorted((n for n in spare if spare[n] > 0), key=lambda n: (-spare[n], n))
        alts = [Alternative(node_id=n, score=float(spare[n]), reasons=[f"SPARE_{spare[n]}"]) for n in ranked[:3]]
        left = need
        for donor in ranked:
            if left <= 0:
                break
            units = min(left, spare[donor])
            left -= units
            reason = (
                f"{sku} at {target} is projected to run out within its lead time, {need} units short: move {units} "
                f"from {donor}, which can spare {spare[donor]} and keeps the rest for its own orders"
            )
            args = {"from_node_id": donor, "to_node_id": target, "sku": sku, "units": units, "reason": reason[:500]}
            draft.steps.append(PlannedCall(tool="transfer_inventory", args=args, reason=reason, alternatives=alts))
        if left > 0:
            draft.notes.append(f"{left} units no open node can spare: re-source {sku} for {target} (a person's call)")
        moved = need - max(left, 0)
        return draft.plan(
            f"projected stock-out of {sku} at {target}: transfer {moved} of {need} units in {len(draft.steps)} call(s)"
        )

    # --- promise risk -----------------------------------------------------------------------

    def _promise_risk(self, triage: Triage, env: ToolEnv) -> Plan:
        draft = _Draft(triage.kind)
        view = TwinView.load(env.adapters, env.clock)
        # No order can arrive before its node's ship date plus a day, so orders promised later
        # than the slowest possible ETA are safe and need not be read at all.
        latest_ship = max((self._ship_bound(view, n) for n in view.nodes), default=env.clock.today())
        horizon = latest_ship + timedelta(days=8)
        flt = OrderFilter(statuses=WORKING, node_ids=triage.scope.node_ids or None, promised_on_or_before=horizon)
        orders = _restrict(load_orders(env, flt), triage.scope.order_ids)
        view.prepare(orders)
        open_nodes = sorted(n.id for n in view.nodes.values() if n.status is not NodeStatus.CLOSED)
        src = Sourcer(view, {}, self.weights)
        late = _late_orders(src, orders)
        reroutable = [o for o, _ in late if o.status in REROUTABLE_STATUSES]
        src.atp = read_atp(env, reroutable, open_nodes) if reroutable else {}
        expedite: dict[ServiceLevel, Group] = defaultdict(Group)
        reroute: dict[str, Group] = defaultdict(Group)
        for o, here in late:
            node_id = o.node_id or ""
            options = _fix_options(src, view, o, open_nodes)
            meets = sorted((t for t in options if t[0].meets_promise), key=lambda t: (t[0].score, t[1]))
            if not meets:
                best = min((t[0].late_days for t in options), default=None)
                draft.not_planned[o.id] = (
                    f"late by {here.late_days} day(s) at {node_id} and no faster service or other node meets its "
                    "promise" + (f" (the best option is still late by {best} day(s))" if best is not None else "")
                )
                continue
            chosen, action = meets[0]
            alts = [c for c, _ in meets[1:]] + [c for c, _ in options if not c.meets_promise]
            d = src.decide(o, [chosen, *alts])
            kind_, _, arg = action.partition(":")
            if kind_ == "expedite":
                expedite[ServiceLevel(arg)].decisions.append(d)
            else:
                src.assign(o, arg)
                reroute[arg].decisions.append(d)
        _promise_steps(draft, expedite, reroute)
        fixed = sum(len(g.ids) for g in [*expedite.values(), *reroute.values()])
        return draft.plan(
            f"promise risk: {len(late)} open orders would arrive late; {fixed} fixed in {len(draft.steps)} calls, "
            f"{len(draft.not_planned)} cannot be saved"
        )

    @staticmethod
    def _ship_bound(view: TwinView, node_id: str) -> date:
        return ship_date(view.nodes[node_id], view.clock.now())

    # --- compliance -------------------------------------------------------------------------

    def _compliance(self, triage: Triage, env: ToolEnv) -> Plan:
        draft = _Draft(triage.kind)
        services = {s.id: s for s in env.adapters.carriers.list_services()}
        air = sorted(
            s
            for s, svc in services.items()
            if svc.air and (not triage.scope.carrier_ids or svc.carrier_id in triage.scope.carrier_ids)
        )
        if not air:
            return draft.plan("no air services in scope: nothing to check")
        flt = OrderFilter(carrier_service_ids=air, statuses=WORKING, node_ids=triage.scope.node_ids or None, skus=None)
        orders = _restrict(load_orders(env, flt), triage.scope.order_ids)
        view = _view(env, orders)
        src = Sourcer(view, {}, self.weights)
        hold: list[RouteDecision] = []
        for o in orders:
            if not view.hazmat(o):
                continue
            hazmat = sorted({ln.sku for ln in o.lines if view.products[ln.sku].hazmat})
            if o.status not in HOLDABLE:
                draft.not_planned[o.id] = (
                    f"hazmat ({', '.join(hazmat)}) on air service {o.carrier_service_id} but already {o.status.value}: "
                    "a person must intercept it"
                )
                continue
            ground = o.model_copy(update={"service_level": ServiceLevel.GROUND, "carrier_service_id": None})
            node_id = o.node_id or ""
            cands = [src.score(ground, node_id, check_stock=False)] if node_id else []
            d = src.decide(o, cands)
            # The decision is the hold; what a person may rebook it to is the alternative.
            hold.append(d.model_copy(update={"alternatives": [c.alternative() for c in cands if c.feasible]}))
        if hold:
            ids = [d.order_id for d in hold]
            reason = (
                f"{len(ids)} orders carry hazmat goods but are booked on an air service; dangerous-goods rules "
                "forbid air, so hold them until a person rebooks them on ground"
            )
            draft.steps += calls("hold_orders", ids, {}, reason, merge_alternatives(hold))
        return draft.plan(
            f"compliance: {len(hold)} hazmat orders on air services to hold; {len(draft.not_planned)} past holding"
        )


def _late_orders(src: Sourcer, orders: list[Order]) -> list[tuple[Order, Candidate]]:
    """Orders that would arrive late from their node as booked, the latest first."""
    late: list[tuple[Order, Candidate]] = []
    for o in orders:
        if o.node_id is None:
            continue
        here = src.score(o, o.node_id, check_stock=False)
        if here.feasible and here.late_days > 0:
            late.append((o, here))
    late.sort(key=lambda t: (-t[1].late_days, t[0].promised_date, t[0].id))
    return late


def _fix_options(src: Sourcer, view: TwinView, o: Order, open_nodes: list[str]) -> list[tuple[Candidate, str]]:
    """Every feasible fix for a late order: a faster level from its node (never air for dangerous
    goods), or, while it can still move, its own level from another open node."""
    node_id = o.node_id or ""
    options: list[tuple[Candidate, str]] = []
    for level in (lv for lv in ServiceLevel if SPEED[lv] > SPEED[o.service_level]):
        if view.hazmat(o) and all(s.air for s in view.services.values() if s.level is level):
            continue
        fast = o.model_copy(update={"service_level": level, "carrier_service_id": None})
        c = src.score(fast, node_id, check_stock=False)
        if c.feasible:
            options.append((c, f"expedite:{level.value}"))
    if o.status in REROUTABLE_STATUSES:
        for n in open_nodes:
            if n != node_id:
                c = src.score(o, n)
                if c.feasible:
                    options.append((c, f"reroute:{n}"))
    return options


def _promise_steps(draft: _Draft, expedite: dict[ServiceLevel, Group], reroute: dict[str, Group]) -> None:
    """One expedite call per level (slowest first) and one reroute call per target node."""
    for level, g in sorted(expedite.items(), key=lambda t: SPEED[t[0]]):
        reason = (
            f"{len(g.ids)} orders would miss their promise from their node; {level.value} is the cheapest "
            "faster level that meets it"
        )
        draft.steps += calls(
            "expedite_orders", g.ids, {"service_level": level.value}, reason, merge_alternatives(g.decisions)
        )
    for target, g in sorted(reroute.items()):
        reason = (
            f"{len(g.ids)} unreleased orders would miss their promise from their node; shipping from {target} "
            "at their own level meets it for less than expediting"
        )
        draft.steps += calls("reroute_orders", g.ids, {"to_node_id": target}, reason, merge_alternatives(g.decisions))


@dataclass
class _NodeMoves:
    """The moves planned off congested or closed nodes, grouped by (source, target); how many of
    each group would have missed their promise where they were; and what the batch optimiser needs
    (each order's score where it is, and per node how many moved out of how many needed).

    Greedy's moves are kept as picks (source, order, pick, late where it was): their decisions,
    with reasons and alternatives, are built only when greedy's plan is the one shown."""

    greedy: list[tuple[str, Order, Pick, bool]] = field(default_factory=list)
    stays: dict[str, Candidate] = field(default_factory=dict)
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    groups: dict[tuple[str, str], Group] = field(default_factory=lambda: defaultdict(Group))
    at_risk: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    regrouped: bool = False

    def greedy_groups(self) -> None:
        """Group greedy's moves, each with its decision."""
        for origin, _, pick, late_here in self.greedy:
            d = pick.decision()
            self.groups[(origin, d.node_id or "")].decisions.append(d)
            if late_here:
                self.at_risk[(origin, d.node_id or "")] += 1

    def regroup(self, moves: list[tuple[Order, RouteDecision]]) -> None:
        """Group the optimiser's moves instead of greedy's."""
        self.groups.clear()
        self.at_risk.clear()
        self.regrouped = True
        for o, d in moves:
            origin = o.node_id or ""
            self.groups[(origin, d.node_id or "")].decisions.append(d)
            if not self.stays[o.id].meets_promise:
                self.at_risk[(origin, d.node_id or "")] += 1


Ranker = MatrixRanker | ScalarRanker


def _refused(pick: Pick, texts: dict[int, tuple[dict[str, list[str]], str]]) -> str:
    """:func:`rejected_text` of ``pick``, remembered per refusal dict (kept in ``texts`` beside
    its text, so its id cannot be reused while remembered)."""
    rejected = pick.rejected
    known = texts.get(id(rejected))
    if known is not None and known[0] is rejected:
        return known[1]
    text = rejected_text(pick)
    texts[id(rejected)] = (rejected, text)
    return text


def _ranker(
    src: Sourcer, orders: list[Order], targets: list[str], sources: list[str]
) -> tuple[Ranker, ScoreMatrix | None]:
    """The ranker for a congestion or closure batch: from one score matrix over the targets and the
    sources (each order's score where it is), or the scalar scorer when the matrix cannot hold
    the data exactly. Returns the matrix too (the optimiser reuses its target columns)."""
    matrix = score_matrix(src, orders, [*targets, *sources]) if orders and targets else None
    if matrix is None:
        return ScalarRanker(src, targets), None
    return MatrixRanker(src, matrix, targets), matrix


def _close_first(draft: _Draft, view: TwinView, sources: list[str]) -> None:
    """A closed node the network still shows open is marked closed first, so sourcing stops sending
    new orders there."""
    for node_id in sources:
        if view.nodes[node_id].status is not NodeStatus.CLOSED:
            draft.steps.append(
                PlannedCall(
                    tool="set_node_status",
                    args={
                        "node_id": node_id,
                        "status": NodeStatus.CLOSED.value,
                        "reason": f"{node_id} is closed: stop sourcing new orders there",
                    },
                    reason=(
                        f"{node_id} is closed but the network still shows it "
                        f"{view.nodes[node_id].status.value}: mark it closed first, so sourcing stops "
                        "sending new orders there"
                    ),
                )
            )
