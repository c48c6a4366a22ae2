"""One scenario per playbook: plan on a generated network, apply it through the real gateway
(approving what the default policy parks), then check the end state of the network."""

from __future__ import annotations

from collections import defaultdict

import pytest

from agents.plan import Alert, ExceptionKind, Scope, Triage
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert, triage_goal
from agents.verify import verify
from core.domain import RESERVING_STATUSES, CarrierStatus, NodeStatus, OrderStatus, ServiceLevel
from tests.agents.conftest import apply_plan
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter

UNRELEASED = [OrderStatus.CREATED, OrderStatus.ALLOCATED]


def _reserved(net: Net) -> dict[tuple[str, str], int]:
    return {(p.node_id, p.sku): p.reserved for p in net.adapters.wms.inventory()}


def test_congestion_reroute_end_state(net: Net) -> None:
    src = net.busiest_dc()
    node = net.adapters.wms.get_node(src)
    net.adapters.wms.set_backlog(src, node.daily_capacity * 2 + 50)  # far over a day: move them all
    before = {o.id: o for o in net.movable(src)}
    reserved_before = _reserved(net)
    triage = triage_alert(Alert(id="c1", kind=ExceptionKind.NODE_CONGESTION, labels={"node": src}), net.gateway.env)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    assert plan.planner == "playbook:node_congestion"
    assert {s.tool for s in plan.steps} == {"reroute_orders"}
    assert all(s.reason and s.args["to_node_id"] != src for s in plan.steps)
    planned = [oid for s in plan.steps for oid in s.args["order_ids"]]
    assert len(planned) == len(set(planned))
    assert set(planned) | set(plan.not_planned) == set(before)
    applied = apply_plan(net, plan)
    for step, first in zip(plan.steps, applied.first_status, strict=True):
        if len(step.args["order_ids"]) > 25:
            assert first == "awaiting_approval"  # bulk reroute: the default policy wants an approver
    assert all(o is not None and o.status == "executed" for o in applied.outcomes)
    # End state: nothing unreleased left at the node unless the plan said why.
    left = {o.id for o in net.movable(src)}
    assert left <= set(plan.not_planned)
    assert all("no other open node" in plan.not_planned[oid] for oid in left)
    # Every moved order is at its target, and allocated ones took their units along.
    target_of = {oid: s.args["to_node_id"] for s in plan.steps for oid in s.args["order_ids"]}
    after = {o.id: o for o in net.adapters.oms.get_orders(list(target_of))}
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for oid, target in target_of.items():
        assert after[oid].node_id == target
        if before[oid].status is OrderStatus.ALLOCATED:
            for ln in before[oid].lines:
                expected[(target, ln.sku)] += ln.quantity
                expected[(src, ln.sku)] -= ln.quantity
    reserved_after = _reserved(net)
    for key in set(reserved_before) | set(reserved_after):
        assert reserved_after.get(key, 0) - reserved_before.get(key, 0) == expected.get(key, 0), key
    report = verify(plan, applied.outcomes, net.gateway.env, scope=triage.scope)
    assert report.passed, report.reasons
    assert report.orders
    assert all(c.ok for c in report.orders)


def test_congestion_moves_only_enough_at_risk_first(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    node = net.adapters.wms.get_node(src)
    net.adapters.wms.set_backlog(src, node.daily_capacity + 10)
    plan = PlaybookPlanner().plan(triage_goal(f"{src} is congested", net.gateway.env), net.gateway.env)
    moved = [oid for s in plan.steps for oid in s.args["order_ids"]]
    assert len(moved) == 10
    assert sum("not needed" in why for why in plan.not_planned.values()) == len(net.movable(src)) - 10 - sum(
        "no other open node" in why or "stays at" in why for why in plan.not_planned.values()
    )


def test_verify_flags_a_plan_that_was_not_executed(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    triage = triage_goal(f"{src} is closed", net.gateway.env)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    report = verify(plan, [None] * len(plan.steps), net.gateway.env, scope=triage.scope)
    assert not report.passed
    assert any("still at" in r for r in report.reasons)


def test_closure_moves_every_unreleased_order(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    triage = triage_goal(f"{src} is closed", net.gateway.env)
    assert triage.kind is ExceptionKind.NODE_CLOSURE
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    assert all("no other open node" in why for why in plan.not_planned.values())
    applied = apply_plan(net, plan)
    assert {o.id for o in net.movable(src)} == set(plan.not_planned)
    assert verify(plan, applied.outcomes, net.gateway.env).passed


def test_carrier_outage_changes_carrier(sqlite_net: Net) -> None:
    net = sqlite_net
    states = ["GA", "TX", "NJ", "CA"]
    net.adapters.carriers.set_carrier_status("RDG", CarrierStatus.OUTAGE, outage_states=states)
    triage = triage_goal("carrier RDG outage in GA, TX, NJ, CA", net.gateway.env)
    assert triage.scope.states == sorted(states)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    assert plan.steps
    assert {s.tool for s in plan.steps} == {"change_carrier"}
    assert all(not s.args["carrier_service_id"].startswith("RDG-") for s in plan.steps)
    applied = apply_plan(net, plan)
    assert verify(plan, applied.outcomes, net.gateway.env).passed
    rdg = [s.id for s in net.adapters.carriers.list_services(carrier_id="RDG")]
    still = net.adapters.oms.list_orders(
        OrderFilter(carrier_service_ids=rdg, statuses=[*UNRELEASED, OrderStatus.RELEASED, OrderStatus.PICKED]),
        limit=10_000,
    )
    addresses = {a.id: a.state for a in net.adapters.oms.get_addresses(sorted({o.ship_to_id for o in still}))}
    nodes = {n.id: n.state for n in net.adapters.wms.list_nodes()}
    touching = [o.id for o in still if addresses[o.ship_to_id] in states or nodes.get(o.node_id or "") in states]
    assert set(touching) <= set(plan.not_planned)


def test_stockout_reroutes_or_holds(sqlite_net: Net) -> None:
    net = sqlite_net
    created = net.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=500, with_lines=True)
    order = created[0]
    assert order.node_id is not None
    sku = order.lines[0].sku
    atp = net.adapters.wms.atp([sku], [order.node_id])[sku][order.node_id]
    if atp:
        net.adapters.wms.adjust_on_hand(order.node_id, sku, -atp)
    alert = Alert(id="s1", kind=ExceptionKind.STOCKOUT, labels={"node": order.node_id, "sku": sku})
    triage = triage_alert(alert, net.gateway.env)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    affected = [oid for s in plan.steps for oid in s.args["order_ids"]]
    assert order.id in affected
    applied = apply_plan(net, plan)
    assert verify(plan, applied.outcomes, net.gateway.env).passed
    now = net.adapters.oms.get_order(order.id)
    assert now.node_id != order.node_id or now.status is OrderStatus.HELD


def test_promise_risk_expedites_or_reroutes(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    net.adapters.wms.set_backlog(src, net.adapters.wms.get_node(src).daily_capacity * 2)
    triage = triage_goal(f"expedite late orders at {src}", net.gateway.env)
    assert triage.kind is ExceptionKind.PROMISE_RISK
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    assert plan.steps
    assert {s.tool for s in plan.steps} <= {"expedite_orders", "reroute_orders"}
    applied = apply_plan(net, plan)
    report = verify(plan, applied.outcomes, net.gateway.env)
    assert report.passed, report.reasons
    levels = {s.id: s.level for s in net.adapters.carriers.list_services()}
    for step in plan.steps:
        for o in net.adapters.oms.get_orders(step.args["order_ids"]):
            if step.tool == "expedite_orders":
                assert levels[o.carrier_service_id or ""] is ServiceLevel(step.args["service_level"])
            else:
                assert o.node_id == step.args["to_node_id"]


def test_hazmat_on_air_is_held(sqlite_net: Net) -> None:
    net = sqlite_net
    oms = net.adapters.oms
    hazmat = {p.sku for p in oms.get_products([f"SKU-{i:05d}" for i in range(1, 41)]) if p.hazmat}
    if not hazmat:
        pytest.skip("the generated catalogue has no hazmat SKU")
    orders = oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED], skus=sorted(hazmat)), limit=5)
    assert orders, "some allocated order carries a hazmat SKU"
    target = orders[0]
    oms.set_carrier_service([target.id], "RDG-OVERNIGHT")  # booked by air: the violation to catch
    triage = triage_goal("hold hazmat orders going by air", net.gateway.env)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    assert [s.tool for s in plan.steps] == ["hold_orders"]
    assert target.id in plan.steps[0].args["order_ids"]
    applied = apply_plan(net, plan)
    assert oms.get_order(target.id).status is OrderStatus.HELD
    assert verify(plan, applied.outcomes, net.gateway.env).passed
    assert target.status in RESERVING_STATUSES


def test_unknown_kind_plans_nothing(sqlite_net: Net) -> None:
    t = Triage(kind=ExceptionKind.UNKNOWN, scope=Scope(), summary="?", source="goal")
    plan = PlaybookPlanner().plan(t, sqlite_net.gateway.env)
    assert plan.steps == []
    assert PlaybookPlanner().name == "playbook"
    assert plan.planner == "playbook:unknown"


def test_orders_read_in_pages_are_every_match_once_oldest_first(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_orders reads what one listing would, whether the count fits one page or the pages are
    capped (MAX_PAGE) and it must walk them."""
    from agents.playbooks import _common

    flt = OrderFilter(statuses=[OrderStatus.CREATED, OrderStatus.ALLOCATED])
    everything = net.adapters.oms.list_orders(flt, limit=10**6, with_lines=True)
    assert len(everything) > 10
    calls: list[int] = []
    listing = net.adapters.oms.list_orders

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(int(kwargs["limit"]))  # type: ignore[call-overload]
        return listing(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(net.adapters.oms, "list_orders", counted)
    assert _common.load_orders(net.gateway.env, flt, page=3) == everything
    assert calls == [len(everything) + 1]  # the count fits one page: one query
    calls.clear()
    monkeypatch.setattr(_common, "MAX_PAGE", 4)
    assert _common.load_orders(net.gateway.env, flt, page=3) == everything
    assert calls == [4] * (len(everything) // 4 + 1)
