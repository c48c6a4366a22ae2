"""Honest previews for closures and outages, and the tool that marks a node's status.

"Before" is the world with the node closed or the lane down — whether the systems show it already
or only the incident says so — so a plan that moves orders off a closed node reads as the
improvement it is, and never as "late 85 -> 122".
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.sourcing import Sourcer, read_atp
from core.domain import CarrierStatus, NodeStatus, Order, OrderStatus
from guardrails.audit import EventType
from tests.tools.conftest import AGENT, APPROVER, Net
from tools.adapters.protocols import OrderFilter
from tools.base import Preview, WriteResult
from tools.twin import TwinView
from tools.write import (
    ChangeCarrier,
    ChangeCarrierArgs,
    Incident,
    RerouteArgs,
    RerouteOrders,
    SetNodeStatus,
    SetNodeStatusArgs,
)

# --- closure ----------------------------------------------------------------------------------------


def _reroute(net: Net, src: str, incident: Incident | None = None) -> tuple[list[Order], Preview]:
    orders = net.movable(src)
    assert len(orders) > 10
    args = RerouteArgs(order_ids=[o.id for o in orders], to_node_id=net.other_dc(src), incident=incident)
    return orders, RerouteOrders().simulate(net.gateway.env, args)


def _assert_closed_before(preview: Preview, src: str) -> None:
    assert preview.late_before == len(preview.items), "nothing ships from a closed node: every order is late"
    for item in preview.items:
        if item.ok:
            assert item.before["unavailable"] == f"node {src} is closed"
            assert item.before["eta"] is None
            assert item.late_before
    assert preview.late_after < preview.late_before, "moving orders off a closed node improves lateness"


def test_reroute_preview_counts_orders_at_a_closed_node_as_late(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    _, open_preview = _reroute(net, src)
    assert open_preview.late_before < len(open_preview.items), "from an open node most orders are on time"
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    _, closed_preview = _reroute(net, src)
    _assert_closed_before(closed_preview, src)
    # Same price either way: a closure changes when orders arrive, not what shipping would cost.
    assert closed_preview.cost_delta == open_preview.cost_delta


def test_reroute_preview_takes_the_incident_when_the_systems_do_not_show_it(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    _, preview = _reroute(net, src, Incident(closed_node_ids=[src]))
    _assert_closed_before(preview, src)
    assert net.adapters.wms.get_node(src).status is NodeStatus.OPEN, "a preview never writes what it assumes"
    # Once the node is marked closed the preview is the same, so an approval given on it still holds.
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    _, again = _reroute(net, src, Incident(closed_node_ids=[src]))
    assert again.digest() == preview.digest()


# --- outage -----------------------------------------------------------------------------------------


def _outage_orders(net: Net, carrier: str, states: Sequence[str]) -> list[Order]:
    services = [s.id for s in net.adapters.carriers.list_services(carrier_id=carrier)]
    orders = net.adapters.oms.list_orders(
        OrderFilter(carrier_service_ids=services, statuses=[OrderStatus.CREATED, OrderStatus.ALLOCATED]),
        limit=10_000,
        with_lines=True,
    )
    view = TwinView.load(net.adapters, net.clock)
    view.prepare(orders)
    return [
        o
        for o in orders
        if o.node_id is not None
        and (view.addresses[o.ship_to_id].state in states or view.nodes[o.node_id].state in states)
    ]


def _other_service(net: Net, order: Order, carrier: str) -> str:
    mine = net.adapters.carriers.get_service(order.carrier_service_id or "")
    return next(
        s.id
        for s in net.adapters.carriers.list_services()
        if s.carrier_id != carrier and s.level is mine.level and not s.air
    )


def _change(net: Net, orders: list[Order], service: str, incident: Incident | None = None) -> Preview:
    args = ChangeCarrierArgs(order_ids=[o.id for o in orders], carrier_service_id=service, incident=incident)
    return ChangeCarrier().simulate(net.gateway.env, args)


def _outage_case(net: Net) -> tuple[str, list[str], list[Order], str]:
    carrier, states = "RDG", ["GA", "TX", "NJ", "CA", "NY", "FL", "IL"]
    orders = _outage_orders(net, carrier, states)
    assert orders, "the generated network has orders on RDG touching those states"
    service = _other_service(net, orders[0], carrier)
    level = net.adapters.carriers.get_service(service).level
    same = [o for o in orders if net.adapters.carriers.get_service(o.carrier_service_id or "").level is level]
    return carrier, states, same, service


def _assert_down_before(preview: Preview, carrier: str) -> None:
    assert preview.late_before == len(preview.items), "a carrier down on the lane delivers nothing"
    for item in preview.items:
        if item.ok:
            assert item.before["unavailable"].startswith(f"carrier {carrier} is in outage")
            assert item.before["service_id"].startswith(f"{carrier}-"), "before is the order's own service"
    assert preview.late_after < preview.late_before


def test_change_carrier_preview_counts_orders_on_a_down_carrier_as_late(sqlite_net: Net) -> None:
    net = sqlite_net
    carrier, states, orders, service = _outage_case(net)
    assert _change(net, orders, service).late_before < len(orders)
    net.adapters.carriers.set_carrier_status(carrier, CarrierStatus.OUTAGE, outage_states=states)
    _assert_down_before(_change(net, orders, service), carrier)


def test_change_carrier_preview_takes_the_outage_from_the_incident(sqlite_net: Net) -> None:
    net = sqlite_net
    carrier, states, orders, service = _outage_case(net)
    preview = _change(net, orders, service, Incident(carrier_outages={carrier: states}))
    _assert_down_before(preview, carrier)
    assert net.adapters.carriers.get_carrier(carrier).status is not CarrierStatus.OUTAGE
    net.adapters.carriers.set_carrier_status(carrier, CarrierStatus.OUTAGE, outage_states=states)
    again = _change(net, orders, service, Incident(carrier_outages={carrier: states}))
    assert again.digest() == preview.digest()


# --- set_node_status --------------------------------------------------------------------------------


def test_closing_a_node_is_approved_executed_and_undone(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    gw, run = net.gateway, net.run()
    in_work = net.adapters.oms.list_orders(
        OrderFilter(node_ids=[src], statuses=[OrderStatus.RELEASED, OrderStatus.PICKED, OrderStatus.HELD]),
        limit=10_000,
    )
    assert in_work, "the busiest DC has orders on its floor"
    tool = SetNodeStatus()
    preview = tool.simulate(gw.env, SetNodeStatusArgs(node_id=src, status=NodeStatus.CLOSED))
    [item] = preview.items
    assert item.id == src
    assert item.ok
    assert item.before == {"status": "open"}
    listed = {oid for ids in item.after["orders_in_progress"].values() for oid in ids}
    assert listed == {o.id for o in in_work}
    assert f"{len(in_work)} orders in progress" in preview.summary

    out = gw.propose(
        "set_node_status",
        {"node_id": src, "status": "closed", "reason": "flooded"},
        actor=AGENT,
        run=run,
        idempotency_key="close-1",
    )
    assert out.status == "awaiting_approval", "closing a node always needs an approver"
    assert out.approval_id is not None
    assert net.adapters.wms.get_node(src).status is NodeStatus.OPEN
    gw.decide(out.approval_id, approver=APPROVER, decision="approve")
    done = gw.execute_approved(out.approval_id, actor=AGENT, run=run)
    assert done.status == "executed"
    assert done.result is not None
    assert done.result["done"] == [src]
    assert net.adapters.wms.get_node(src).status is NodeStatus.CLOSED

    # Sourcing no longer picks it, even for an order that sits there and has stock there.
    order = net.movable(src)[0]
    view = TwinView.load(net.adapters, net.clock)
    view.prepare([order])
    nodes = sorted(view.nodes)
    decision = Sourcer(view, read_atp(gw.env, [order], nodes)).rank(order, nodes)
    assert decision.node_id != src
    # Nor can orders be rerouted there.
    back = gw.propose(
        "reroute_orders",
        {"order_ids": [net.movable(net.other_dc(src))[0].id], "to_node_id": src},
        actor=AGENT,
        run=run,
        idempotency_key="into-closed",
    )
    assert back.status == "denied"

    # Undo: the compensating call reopens it, through the gateway and its approval like any write.
    result = tool.compensation(SetNodeStatusArgs(node_id=src, status=NodeStatus.CLOSED), _result(done.result))
    assert result is not None
    assert result.args["status"] == "open"
    undo = gw.propose(result.tool, result.args, actor=AGENT, run=run, idempotency_key="undo-close-1")
    assert undo.status == "awaiting_approval", "reopening is not refused as 'sending to a closed node'"
    assert undo.approval_id is not None
    gw.decide(undo.approval_id, approver=APPROVER, decision="approve")
    assert gw.execute_approved(undo.approval_id, actor=AGENT, run=run).status == "executed"
    assert net.adapters.wms.get_node(src).status is NodeStatus.OPEN
    kinds = [e.event_type for e in gw.guard.audit.list(run_id=run.run_id) if e.tool == "set_node_status"]
    assert kinds.count(EventType.EXECUTED) == 2


def test_setting_the_status_a_node_already_has_changes_nothing(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    tool = SetNodeStatus()
    args = SetNodeStatusArgs(node_id=src, status=NodeStatus.CLOSED)
    preview = tool.simulate(net.gateway.env, args)
    assert preview.affected == []
    assert preview.skipped == {src: f"node {src} is already closed"}
    result = tool.execute(net.gateway.env, args)
    assert result.done == []
    assert tool.compensation(args, result) is None


def _result(raw: dict[str, object] | None) -> WriteResult:
    assert raw is not None
    return WriteResult.model_validate(raw)


def test_an_incident_naming_an_unknown_node_or_carrier_is_denied(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    order = net.movable(src)[0].id
    incidents: list[dict[str, object]] = [{"closed_node_ids": ["DC-NOWHERE"]}, {"carrier_outages": {"NOPE": []}}]
    for incident in incidents:
        out = net.gateway.propose(
            "reroute_orders",
            {"order_ids": [order], "to_node_id": net.other_dc(src), "incident": incident},
            actor=AGENT,
            run=net.run(),
            idempotency_key=f"bad-incident-{len(str(incident))}",
        )
        assert out.status == "denied"
        assert out.reasons[0].startswith("cannot simulate")
