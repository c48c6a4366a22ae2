"""The congestion and closure playbooks rank from one score matrix (agents/playbooks/_greedy.py):
their plans must be the scalar scorer's, decision for decision and to the last reason, with
queues that fill up during the batch, stock that runs out, a degraded carrier, one in outage in
some states and a congested target."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from agents.plan import ExceptionKind, Plan, Scope, Triage
from agents.playbooks import PlaybookPlanner
from agents.playbooks import planner as planner_module
from agents.playbooks._greedy import MatrixRanker
from agents.score_matrix import score_matrix
from agents.sourcing import Sourcer, SourcingWeights, order_needs, read_atp
from core.domain import CarrierStatus, NodeStatus
from tests.tools.conftest import Net
from tools.twin import TwinView

TIMINGS = ("solve_s", "cpu_s", "score_s", "lp_s", "decide_s")


def _dump(plan: Plan) -> dict[str, Any]:
    out = plan.model_dump(mode="json")
    for key in TIMINGS:
        (out.get("optimizer") or {}).pop(key, None)
    return out


def _both(net: Net, monkeypatch: pytest.MonkeyPatch, triage: Triage, weights: SourcingWeights) -> tuple[Plan, Plan]:
    """The plan ranked from the matrix, and the same plan ranked by the scalar scorer."""
    fast = PlaybookPlanner(weights=weights).plan(triage, net.gateway.env)
    with monkeypatch.context() as m:
        m.setattr(planner_module, "score_matrix", lambda *a, **k: None)
        slow = PlaybookPlanner(weights=weights).plan(triage, net.gateway.env)
    return fast, slow


def _busy_network(net: Net, src: str, over: int) -> None:
    """Congest ``src``; put every other open node three orders short of a day boundary (their ship
    dates move within the batch), with a third of the units its orders need (stock runs out within
    the batch); a degraded carrier, one down in a few states, a congested target."""
    need: dict[str, int] = defaultdict(int)
    for o in net.movable(src):
        for sku, qty in order_needs(o).items():
            need[sku] += qty
    others = [n.id for n in net.adapters.wms.list_nodes() if n.id != src]
    for sku, by_node in net.adapters.wms.atp(sorted(need), others).items():
        for node_id, units in by_node.items():
            if units > need[sku] // 3:
                net.adapters.wms.adjust_on_hand(node_id, sku, need[sku] // 3 - units)
    node = net.adapters.wms.get_node(src)
    net.adapters.wms.set_backlog(src, node.daily_capacity + over)
    for other in net.adapters.wms.list_nodes():
        if other.id != src and other.status is not NodeStatus.CLOSED and other.daily_capacity > 3:
            net.adapters.wms.set_backlog(other.id, other.daily_capacity - 3)
    carriers = net.adapters.carriers.list_carriers()
    net.adapters.carriers.set_carrier_status(carriers[0].id, CarrierStatus.DEGRADED)
    net.adapters.carriers.set_carrier_status(carriers[1].id, CarrierStatus.OUTAGE, outage_states=["CA", "TX", "NY"])
    net.adapters.wms.set_node_status(net.other_dc(src), NodeStatus.CONGESTED)


@pytest.mark.parametrize("optimiser", [False, True])
def test_congestion_plan_from_the_matrix_is_the_scalar_one(
    sqlite_net: Net, monkeypatch: pytest.MonkeyPatch, optimiser: bool
) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    _busy_network(net, src, over=10_000)  # far over: every order is ranked, stock runs out
    triage = Triage(kind=ExceptionKind.NODE_CONGESTION, scope=Scope(node_ids=[src]), summary="t", source="alert")
    fast, slow = _both(net, monkeypatch, triage, SourcingWeights(batch_optimizer=optimiser))
    assert _dump(fast) == _dump(slow)
    # The comparison means something: moves were made, with alternatives, some late, some refused.
    moved = [oid for s in fast.steps for oid in s.args["order_ids"]]
    assert moved
    assert any(s.alternatives for s in fast.steps)
    assert any("no other open node" in why or "stays at" in why for why in fast.not_planned.values())
    assert (fast.optimizer is not None) is optimiser


def test_closure_plan_from_the_matrix_is_the_scalar_one(sqlite_net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    _busy_network(net, src, over=0)
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    triage = Triage(kind=ExceptionKind.NODE_CLOSURE, scope=Scope(node_ids=[src]), summary="t", source="alert")
    fast, slow = _both(net, monkeypatch, triage, SourcingWeights())
    assert _dump(fast) == _dump(slow)
    assert any(s.tool == "reroute_orders" for s in fast.steps)


def test_matrix_scores_are_the_scorers_to_the_bit(sqlite_net: Net) -> None:
    """Every pair's score, from the arrays, equals Sourcer.score exactly (not approximately), before
    and after moves push a target's ship date out; so are the candidates a decision is built from."""
    net = sqlite_net
    src_node = net.busiest_dc()
    _busy_network(net, src_node, over=0)
    env = net.gateway.env
    orders = net.movable(src_node)
    view = TwinView.load(net.adapters, env.clock)
    view.prepare(orders)
    targets = sorted(n for n in view.nodes if n != src_node and view.nodes[n].status is not NodeStatus.CLOSED)
    atp = read_atp(env, orders, targets)
    weights = SourcingWeights(carbon_per_kg=0.5)
    src = Sourcer(view, atp, weights)
    matrix = score_matrix(src, orders, [*targets, src_node])
    assert matrix is not None
    ranker = MatrixRanker(src, matrix, targets)
    reference = Sourcer(view, atp, weights)

    def check() -> int:
        served = 0
        for j, t in enumerate(targets):
            stays = ranker.stays(orders, t)
            for i, o in enumerate(orders):
                want = reference.score(o, t, check_stock=False)
                assert stays[o.id] == want
                if want.feasible and ranker.serviceable[i]:
                    served += 1
                    assert float(ranker.current[i, j]) == want.score
                    assert ranker.candidate(i, j, ranker.shifts[j]) == want
        return served

    assert check() > 0
    # Move orders onto the first target until its ship date moves: its scores must follow.
    target = targets[0]
    for o in orders:
        if ranker.shifts[0] > 0:
            break
        ranker.assign(o, target)
        reference.assign(o, target)
    assert ranker.shifts[0] > 0
    assert check() > 0


def test_ranker_moves_record_what_sourcer_assign_records(sqlite_net: Net) -> None:
    """MatrixRanker.assign takes each order's needs from the matrix instead of calling
    Sourcer.assign: the running ATP and queue counts must end up as Sourcer.assign leaves them, and
    the shared needs must be order_needs' (repeated SKUs summed, in the same order)."""
    net = sqlite_net
    src_node = net.busiest_dc()
    _busy_network(net, src_node, over=0)
    env = net.gateway.env
    orders = net.movable(src_node)
    multi = next(o for o in orders if len(o.lines) >= 2)
    # An order naming one SKU on two lines (the needs must sum them).
    orders.append(multi.model_copy(update={"id": "ORD-DUP", "lines": (*multi.lines, multi.lines[0])}))
    view = TwinView.load(net.adapters, env.clock)
    view.prepare(orders)
    targets = sorted(n for n in view.nodes if n != src_node and view.nodes[n].status is not NodeStatus.CLOSED)
    atp = read_atp(env, orders, targets)
    src = Sourcer(view, atp, SourcingWeights())
    matrix = score_matrix(src, orders, [*targets, src_node])
    assert matrix is not None
    assert matrix.needs is not None
    assert [matrix.needs.of(i) for i in range(len(orders))] == [order_needs(o) for o in orders]
    assert [list(matrix.needs.of(i)) for i in range(len(orders))] == [list(order_needs(o)) for o in orders]
    ranker = MatrixRanker(src, matrix, targets)
    reference = Sourcer(view, atp, SourcingWeights())
    for k, o in enumerate(orders):
        where = [*targets, src_node, "NODE-NOT-IN-MATRIX"][k % (len(targets) + 2)]
        ranker.assign(o, where)
        reference.assign(o, where)
    assert src.atp == reference.atp
    assert dict(src.added) == dict(reference.added)
    assert sum(src.added.values()) > 0
    # The ranker's own running stock follows too.
    for k, sku in enumerate(matrix.needs.skus):
        assert ranker.atp[k] == [src.atp.get(sku, {}).get(t, 0) for t in targets]
