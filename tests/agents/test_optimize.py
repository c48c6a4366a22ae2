"""The batch optimiser: never breaks what greedy honours, never plans worse than greedy, and hands
over to greedy (saying so) when HiGHS is missing or out of time."""

from __future__ import annotations

import gc
import math
import sys
import threading
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents import optimize
from agents.optimize import MAX_BUCKETS, Instance, check, edge_scores, evaluate, rejection, solve
from agents.plan import ExceptionKind, Plan, Scope, Triage
from agents.playbooks import PlaybookPlanner
from agents.sourcing import SourcingWeights, order_needs
from core.domain import NodeStatus
from tests.tools.conftest import Net

# --- small random instances, as arrays ------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    """Random batches: a few orders at 1-2 sources, a few targets with tight stock and queues."""
    n = draw(st.integers(1, 14))
    targets = draw(st.integers(1, 4))
    sources = draw(st.integers(1, 2))
    skus = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    order_source = rng.integers(0, sources, n)
    e_order, e_target = [], []
    for o in range(n):
        for t in range(targets):
            if rng.random() < 0.8:
                e_order.append(o)
                e_target.append(t)
    need_ptr, need_sku, need_qty = [0], [], []
    for _ in range(n):
        for s in rng.choice(skus, size=int(rng.integers(1, min(skus, 2) + 1)), replace=False):
            need_sku.append(int(s))
            need_qty.append(float(rng.integers(1, 4)))
        need_ptr.append(len(need_sku))
    E = len(e_order)
    counts = np.bincount(order_source, minlength=sources)
    hi = np.array([draw(st.integers(0, int(c))) for c in counts], dtype=np.int64)
    lo = np.array([draw(st.integers(0, int(h))) for h in hi], dtype=np.int64)
    return Instance(
        order_source=order_source.astype(np.int64),
        stay_score=rng.uniform(20, 200, n),
        stay_meets=rng.random(n) < 0.4,
        edge_order=np.array(e_order, dtype=np.int64),
        edge_target=np.array(e_target, dtype=np.int64),
        edge_base=rng.uniform(10, 150, E),
        edge_slack=rng.integers(-2, 4, E).astype(np.int64),
        edge_rate=rng.uniform(0.8, 0.99, E),
        need_ptr=np.array(need_ptr, dtype=np.int64),
        need_sku=np.array(need_sku, dtype=np.int64),
        need_qty=np.array(need_qty, dtype=np.float64),
        atp=rng.integers(0, 8, (skus, targets)).astype(np.float64),
        backlog=rng.integers(0, 6, targets).astype(np.int64),
        capacity=rng.integers(1, 5, targets).astype(np.int64),
        move_lo=lo,
        move_hi=hi,
        stay_cost=rng.uniform(5, 50, n),
        edge_cost=rng.uniform(5, 50, E),
    )


def broken(inst: Instance, edge_of: np.ndarray, shift: np.ndarray) -> list[str]:
    """What a plan breaks, checked from scratch (not with the module's own checker)."""
    out = []
    used: dict[tuple[int, int], float] = defaultdict(float)
    per_target: dict[int, list[int]] = defaultdict(list)
    moves = np.zeros(len(inst.move_lo), dtype=int)
    for o, e in enumerate(edge_of):
        if e < 0:
            continue
        if inst.edge_order[e] != o:
            out.append(f"order {o} took another order's edge")
        t = int(inst.edge_target[e])
        per_target[t].append(o)
        moves[inst.order_source[o]] += 1
        for k in range(inst.need_ptr[o], inst.need_ptr[o + 1]):
            used[(int(inst.need_sku[k]), t)] += inst.need_qty[k]
        if inst.stay_meets[o] and inst.edge_slack[e] - shift[o] < 0:
            out.append(f"order {o} meets its promise where it is but moved to a late option")
    out += [f"ATP of sku {s} at {t} exceeded" for (s, t), q in used.items() if q > inst.atp[s, t] + 1e-9]
    out += [f"source {s} moved {m} > {inst.move_hi[s]}" for s, m in enumerate(moves) if m > inst.move_hi[s]]
    for t, mine in per_target.items():
        # The scorer's queue: the i-th order of the batch at t ships this many days later, at most.
        b, cap = int(inst.backlog[t]), int(inst.capacity[t])
        allowed = sorted(math.ceil((b + i) / cap) - math.ceil(b / cap) for i in range(len(mine)))
        if sorted(int(shift[o]) for o in mine) != allowed:
            out.append(f"target {t}: queue shifts {sorted(shift[mine])} are not the scorer's {allowed}")
    return out


def evaluate_shifted(inst: Instance, edge: int, shift: int) -> float:
    return float(edge_scores(inst, np.array([edge]), np.array([shift]))[0])


def greedy(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """The playbook's rule on arrays: latest first, each order to its best node now (stock and
    queue as earlier orders left them), never on-time to late, at most ``move_hi`` per source."""
    n = inst.n
    atp = inst.atp.copy()
    added = np.zeros(inst.targets, dtype=int)
    moves = np.zeros(len(inst.move_lo), dtype=int)
    edge_of = np.full(n, -1, dtype=np.int64)
    rank = np.zeros(n)
    for pos, o in enumerate(sorted(range(n), key=lambda o: (bool(inst.stay_meets[o]), o))):
        s = inst.order_source[o]
        if moves[s] >= inst.move_hi[s]:
            continue
        best, best_score = -1, math.inf
        for e in np.flatnonzero(inst.edge_order == o):
            t = int(inst.edge_target[e])
            a, b = inst.need_ptr[o], inst.need_ptr[o + 1]
            if (atp[inst.need_sku[a:b], t] < inst.need_qty[a:b]).any():
                continue
            cap, bl = int(inst.capacity[t]), int(inst.backlog[t])
            shift = math.ceil((bl + added[t]) / cap) - math.ceil(bl / cap)
            if inst.stay_meets[o] and inst.edge_slack[e] - shift < 0:
                continue
            score = float(evaluate_shifted(inst, int(e), shift))
            if score < best_score:
                best, best_score = int(e), score
        if best >= 0:
            t = int(inst.edge_target[best])
            a, b = inst.need_ptr[o], inst.need_ptr[o + 1]
            atp[inst.need_sku[a:b], t] -= inst.need_qty[a:b]
            added[t] += 1
            moves[s] += 1
            edge_of[o], rank[o] = best, pos
    return edge_of, rank


@settings(max_examples=150, deadline=None)
@given(instances())
def test_optimiser_never_breaks_what_greedy_honours(inst: Instance) -> None:
    _never_breaks(inst)


@settings(max_examples=100, deadline=None)
@given(instances())
def test_lp_rounding_never_breaks_what_greedy_honours(inst: Instance) -> None:
    """The same with the integer model off: the LP's moves rounded and repaired (large batches)."""
    saved = optimize.MIP_MAX_COLUMNS
    optimize.MIP_MAX_COLUMNS = 0
    try:
        _never_breaks(inst)
    finally:
        optimize.MIP_MAX_COLUMNS = saved


def _never_breaks(inst: Instance) -> None:
    g_edge, g_rank = greedy(inst)
    g = evaluate(inst, g_edge, g_rank)
    assert broken(inst, g.edge, g.shift) == []  # the reference greedy is itself valid
    inst.move_lo = np.minimum(np.bincount(inst.order_source[g_edge >= 0], minlength=len(inst.move_lo)), inst.move_hi)
    sol = solve(inst, time_limit_s=5)
    if sol is None:
        # Only when no move is allowed (greedy made none), or greedy queues an order past the
        # model's days: the greedy plan is otherwise a solution of the model, so it has one.
        assert not (g.edge >= 0).any() or int(g.shift.max(initial=0)) >= MAX_BUCKETS
        return
    assert broken(inst, sol.edge, sol.shift) == []
    if not check(inst, sol):
        # The LP bound is a bound on the plans the model admits. A rounded plan that leaves a source
        # short of greedy's count is not one of them (it may score lower); the playbook rejects it.
        assert sol.objective >= sol.info["bound"] - 1e-6
    assert g.objective >= sol.info["bound"] - 1e-6  # ... on greedy's plan too
    # What the playbook keeps: the optimiser's plan only when it honours everything and is better.
    final = g if rejection(inst, sol, g) is not None else sol
    assert broken(inst, final.edge, final.shift) == []
    moves = np.bincount(inst.order_source[final.edge >= 0], minlength=len(inst.move_lo))
    assert (moves >= inst.move_lo).all()
    assert final.objective <= g.objective + 1e-9


# --- the congestion playbook on a generated network -------------------------------------------


def _congestion(net: Net, over: int, weights: SourcingWeights) -> tuple[Triage, Plan]:
    src = net.busiest_dc()
    node = net.adapters.wms.get_node(src)
    net.adapters.wms.set_backlog(src, node.daily_capacity + over)
    triage = Triage(kind=ExceptionKind.NODE_CONGESTION, scope=Scope(node_ids=[src]), summary="t", source="alert")
    return triage, PlaybookPlanner(weights=weights).plan(triage, net.gateway.env)


def _moves(plan: Plan) -> dict[str, str]:
    return {oid: s.args["to_node_id"] for s in plan.steps for oid in s.args["order_ids"]}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(over=st.integers(1, 400))
@example(over=2)  # greedy's two moves have one stocked node each (no alternatives), the optimiser's have more
@example(over=300)  # the optimiser's plan is no better: greedy's stands
def test_congestion_plan_keeps_every_constraint_and_scores_no_worse(sqlite_net: Net, over: int) -> None:
    net = sqlite_net
    _, greedy_plan = _congestion(net, over, SourcingWeights(batch_optimizer=False))
    triage, plan = _congestion(net, over, SourcingWeights())
    src = triage.scope.node_ids[0]
    opt = plan.optimizer
    assert opt is not None
    assert greedy_plan.optimizer is None
    assert opt["method"] in {"highs", "greedy"}
    assert opt["objective"] <= opt["greedy"]["score"] + 0.01
    if opt["bound"] is not None:
        assert opt["bound"] <= opt["objective"] + 0.01
        assert opt["gap"] == pytest.approx(max(0.0, opt["objective"] - opt["bound"]) / abs(opt["bound"]), abs=1e-4)
    moves, greedy_moves = _moves(plan), _moves(greedy_plan)
    if opt["method"] == "greedy":
        assert moves == greedy_moves
    # Same relief as greedy at least, never past the backlog target.
    node = net.adapters.wms.get_node(src)
    assert len(greedy_moves) <= len(moves) <= max(0, node.backlog - node.daily_capacity)
    # Stock: no target promised more units than it has to promise.
    orders = {o.id: o for o in net.movable(src)}
    targets = {n.id: n for n in net.adapters.wms.list_nodes()}
    assert all(t != src and targets[t].status is not NodeStatus.CLOSED for t in moves.values())
    skus = sorted({ln.sku for o in orders.values() for ln in o.lines})
    atp = net.adapters.wms.atp(skus, sorted(targets))
    used: dict[tuple[str, str], int] = defaultdict(int)
    for oid, t in moves.items():
        for sku, qty in order_needs(orders[oid]).items():
            used[(sku, t)] += qty
    assert all(q <= atp.get(sku, {}).get(t, 0) for (sku, t), q in used.items())
    # Every order is either moved once or said why not.
    assert set(moves).isdisjoint(plan.not_planned)
    assert set(moves) | set(plan.not_planned) == set(orders)
    # Each move keeps its reasons and alternatives: other open nodes than the one it goes to. (Whether a
    # plan has any depends on which orders it moves: greedy's first few may each have one stocked
    # node, where the optimiser's have several, so the two plans need not agree on having some.)
    assert all(s.reason for s in plan.steps)
    for s in plan.steps:
        assert all(a.node_id not in (s.args["to_node_id"], src) for a in s.alternatives)
    if opt["method"] == "greedy":
        assert plan.steps == greedy_plan.steps


def test_without_highs_greedy_plans_and_says_so(sqlite_net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    _, greedy_plan = _congestion(sqlite_net, 300, SourcingWeights(batch_optimizer=False))
    monkeypatch.setitem(sys.modules, "highspy", None)  # "import highspy" now raises ImportError
    _, plan = _congestion(sqlite_net, 300, SourcingWeights())
    assert plan.optimizer is not None
    assert plan.optimizer["method"] == "greedy"
    assert "HiGHS unavailable" in plan.optimizer["reason"]
    assert plan.optimizer["bound"] is None
    assert plan.optimizer["gap"] is None
    assert plan.steps == greedy_plan.steps
    assert plan.not_planned == greedy_plan.not_planned


def test_a_zero_time_limit_means_greedy(sqlite_net: Net) -> None:
    _, greedy_plan = _congestion(sqlite_net, 300, SourcingWeights(batch_optimizer=False))
    _, plan = _congestion(sqlite_net, 300, SourcingWeights(optimizer_time_limit_s=0))
    assert plan.optimizer is not None
    assert plan.optimizer["method"] == "greedy"
    assert "time limit 0" in plan.optimizer["reason"]
    assert plan.steps == greedy_plan.steps


def test_out_of_time_means_greedy_and_says_so(sqlite_net: Net) -> None:
    """A time limit the solve cannot meet (a microsecond): greedy's plan, with the reason."""
    _, greedy_plan = _congestion(sqlite_net, 300, SourcingWeights(batch_optimizer=False))
    _, plan = _congestion(sqlite_net, 300, SourcingWeights(optimizer_time_limit_s=1e-6))
    assert plan.optimizer is not None
    assert plan.optimizer["method"] == "greedy"
    assert "out of time" in plan.optimizer["reason"]
    assert plan.optimizer["bound"] is None
    assert plan.steps == greedy_plan.steps
    assert plan.not_planned == greedy_plan.not_planned


def test_vectorised_scores_equal_the_scorer(sqlite_net: Net) -> None:
    """The batch's arrays and candidates from numpy are the scalar scorer's, on a network with a
    congested target, a degraded carrier and one in outage in some states."""
    from agents.optimize import build_batch
    from agents.score_matrix import score_matrix
    from agents.sourcing import Sourcer, read_atp
    from core.domain import CarrierStatus
    from tools.twin import TwinView

    net = sqlite_net
    env = net.gateway.env
    src_node = net.busiest_dc()
    carriers = net.adapters.carriers.list_carriers()
    net.adapters.carriers.set_carrier_status(carriers[0].id, CarrierStatus.DEGRADED)
    net.adapters.carriers.set_carrier_status(carriers[1].id, CarrierStatus.OUTAGE, outage_states=["CA", "TX", "NY"])
    net.adapters.wms.set_node_status(net.other_dc(src_node), NodeStatus.CONGESTED)
    orders = net.movable(src_node)
    view = TwinView.load(net.adapters, env.clock)
    view.prepare(orders)
    targets = sorted(n for n in view.nodes if n != src_node and view.nodes[n].status is not NodeStatus.CLOSED)
    atp = read_atp(env, orders, targets)
    weights = SourcingWeights(carbon_per_kg=0.5)
    stays = {o.id: Sourcer(view, atp, weights).score(o, src_node, check_stock=False) for o in orders}
    bounds = ({src_node: 0}, {src_node: len(orders)})
    assert score_matrix(Sourcer(view, atp, weights), orders, targets) is not None  # the arrays can hold it
    fast = build_batch(Sourcer(view, atp, weights), orders, stays, targets, *bounds)
    slow = build_batch(Sourcer(view, atp, weights), orders, stays, targets, *bounds, vectorised=False)
    a, b = fast.instance, slow.instance
    assert len(a.edge_order) > 0
    assert len(a.edge_order) < len(orders) * len(targets)  # some pairs are refused (stock, outage)
    for name in ("edge_order", "edge_target", "edge_slack", "edge_rate", "edge_cost"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.allclose(a.edge_base, b.edge_base, rtol=1e-12, atol=1e-9)
    assert np.allclose(a.edge_co2e, b.edge_co2e, rtol=1e-12, atol=1e-12)
    assert fast.by_order == slow.by_order
    for e in range(len(a.edge_order)):
        x, y = fast.candidate(e), slow.candidate(e)
        assert (x.node_id, x.service_id, x.cost, x.eta, x.late_days, x.reasons) == (
            y.node_id, y.service_id, y.cost, y.eta, y.late_days, y.reasons,
        )  # fmt: skip
        assert x.score == pytest.approx(y.score, rel=1e-12)
        assert x.p_on_time == pytest.approx(y.p_on_time, rel=1e-12)
    # Candidates built for many edges at once are the same as one at a time.
    edges = np.arange(len(a.edge_order))
    assert fast.many(edges) == [fast.candidate(e) for e in edges.tolist()]
    assert slow.many(edges) == [slow.candidate(e) for e in edges.tolist()]


def test_the_collector_is_paused_only_while_planning(sqlite_net: Net) -> None:
    """The optimiser pauses the cyclic garbage collector while it plans (its passes were ~45% of
    the decisions' time) and leaves it as it found it; the plan does not depend on it."""
    assert gc.isenabled()
    _, plan = _congestion(sqlite_net, 40, SourcingWeights())
    assert gc.isenabled()
    gc.disable()
    try:
        _, again = _congestion(sqlite_net, 40, SourcingWeights())
        assert not gc.isenabled()  # an outer pause stays a pause
    finally:
        gc.enable()
    assert plan.optimizer is not None
    assert plan.optimizer["method"] == "highs"
    assert again.steps == plan.steps
    assert again.not_planned == plan.not_planned


def test_overlapping_pauses_from_two_threads_leave_the_collector_on() -> None:
    """Two plans in two threads, the first ending while the second still runs (a worker with several
    threads): a save-and-restore pause per plan would leave the collector off for good."""
    from agents.optimize import gc_paused

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # still paused: the second plan is running

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_decisions_from_the_matrix_equal_the_scorers_decide(sqlite_net: Net) -> None:
    """The optimiser's decisions built from the score matrix's arrays are, field for field and in
    their repr, the ones ``Sourcer.decide`` builds from each moved order's candidates: for chosen
    edges that ship on time, late, and shifted by their queue place (a congested target among them)."""
    from dataclasses import replace

    from agents.optimize import Solution, _decisions, build_batch
    from agents.sourcing import Sourcer, read_atp
    from tools.twin import TwinView

    net = sqlite_net
    env = net.gateway.env
    src_node = net.busiest_dc()
    net.adapters.wms.set_node_status(net.other_dc(src_node), NodeStatus.CONGESTED)
    orders = net.movable(src_node)
    view = TwinView.load(net.adapters, env.clock)
    view.prepare(orders)
    targets = sorted(n for n in view.nodes if n != src_node and view.nodes[n].status is not NodeStatus.CLOSED)
    atp = read_atp(env, orders, targets)
    weights = SourcingWeights(alternatives=2)
    src = Sourcer(view, atp, weights)
    stays = {o.id: src.score(o, src_node, check_stock=False) for o in orders}
    batch = build_batch(src, orders, stays, targets, {src_node: 0}, {src_node: len(orders)})
    assert batch.matrix is not None
    inst = batch.instance
    rng = np.random.default_rng(7)
    edge = np.full(inst.n, -1, dtype=np.int64)
    for i, mine in enumerate(batch.by_order):
        if mine and rng.random() < 0.8:
            edge[i] = mine[int(rng.integers(len(mine)))]
    shift = np.where(edge >= 0, rng.integers(0, 4, inst.n), 0)
    target = np.where(edge >= 0, inst.edge_target[np.maximum(edge, 0)], -1)
    sol = Solution(target=target, shift=shift, edge=edge, objective=0.0)
    fast = _decisions(src, batch, sol, orders)
    slow = _decisions(src, replace(batch, matrix=None), sol, orders)
    assert len(fast) == len(slow) == int((edge >= 0).sum()) > 10
    assert any(d.alternatives for _, d in fast)
    assert {bool(s) for s in shift[edge >= 0]} == {False, True}
    for (o1, d1), (o2, d2) in zip(fast, slow, strict=True):
        assert o1 is o2
        assert repr(d1) == repr(d2)
        assert d1.model_dump_json() == d2.model_dump_json()
        assert d1 == d2
        for a1, a2 in zip(d1.alternatives, d2.alternatives, strict=True):
            assert a1 == a2
            assert a1.model_fields_set == a2.model_fields_set
            assert [type(r) for r in a1.reasons] == [type(r) for r in a2.reasons]
