"""The simulation is the exact effect: what a write tool's preview predicts is what ``execute`` does.

Approvers approve previews, and the policy judges the preview's facts, so a preview that differs
from the execution would let a change through that nobody judged. Each test runs ``simulate`` and
then ``execute`` directly on the tool (no gateway) on a generated network, on both backends, and
compares: the orders the preview marks ``ok`` are exactly the ``done`` ones, the skipped ones are
skipped for the same reason, stock moves as predicted per SKU, and the predicted cost after the
change is what a fresh twin computes once it has happened.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TypeVar

import pytest

from core.domain import RESERVING_STATUSES, CarrierStatus, NodeStatus, Order, OrderStatus, ServiceLevel
from core.errors import ValidationFailed
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter
from tools.base import OrderSetArgs, Preview, ToolArgs, WriteResult, WriteTool
from tools.twin import TwinView
from tools.write import (
    CancelOrders,
    ChangeCarrier,
    ChangeCarrierArgs,
    ExpediteArgs,
    ExpediteOrders,
    HoldOrders,
    ReleaseHolds,
    RerouteArgs,
    RerouteOrders,
)

Stock = dict[tuple[str, str], tuple[int, int]]
A = TypeVar("A", bound=ToolArgs)


def stock(net: Net) -> Stock:
    """(node, sku) -> (on hand, reserved)."""
    return {(p.node_id, p.sku): (p.on_hand, p.reserved) for p in net.adapters.wms.inventory()}


def orders_state(net: Net) -> dict[str, tuple[str, str | None, str | None]]:
    """order id -> (status, node, carrier service): everything a write may change, bar the version."""
    orders = net.adapters.oms.list_orders(OrderFilter(), limit=10_000)
    return {o.id: (o.status.value, o.node_id, o.carrier_service_id) for o in orders}


def reserved_delta(before: Stock, after: Stock) -> dict[tuple[str, str], int]:
    keys = before.keys() | after.keys()
    out = {k: after.get(k, (0, 0))[1] - before.get(k, (0, 0))[1] for k in keys}
    return {k: v for k, v in out.items() if v}


def by_status(net: Net, status: OrderStatus, n: int, *, node: str | None = None) -> list[Order]:
    flt = OrderFilter(statuses=[status], node_ids=[node] if node else None)
    found = net.adapters.oms.list_orders(flt, limit=n, with_lines=True)
    assert found, f"the generated network should hold {status.value} orders"
    return found


def run(net: Net, tool: WriteTool[A], args: A) -> tuple[Preview, WriteResult]:
    env = net.gateway.env
    preview = tool.simulate(env, args)
    result = tool.execute(env, args)
    return preview, result


def assert_same_split(preview: Preview, result: WriteResult) -> None:
    assert set(preview.affected) == set(result.done)
    assert set(preview.skipped) == set(result.skipped)


def reason_kind(reason: str) -> str:
    """What a skip reason is about, whichever layer worded it."""
    text = reason.lower()
    for kind, words in (
        ("closed", ("closed",)),
        ("already there", ("already at",)),
        ("stock", ("available", "atp")),
    ):
        if any(w in text for w in words):
            return kind
    for status in OrderStatus:
        if f"is {status.value}" in text:
            return f"status {status.value}"
    return text


# --- reroute ------------------------------------------------------------------------------------


def test_reroute_preview_is_the_effect(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    movable = net.movable(src)
    allocated = [o for o in movable if o.status is OrderStatus.ALLOCATED]
    created = [o for o in movable if o.status is OrderStatus.CREATED]
    released = by_status(net, OrderStatus.RELEASED, 3)
    already = net.movable(dst)[:2]
    assert len(allocated) >= 6
    assert created
    assert already
    # One SKU of an allocated order runs out at the target: that order must be skipped for stock.
    short = allocated[0]
    sku = short.lines[0].sku
    pos = stock(net)[(dst, sku)]
    if pos[0] - pos[1] > 0:
        net.adapters.wms.adjust_on_hand(dst, sku, -(pos[0] - pos[1]))
    ids = [o.id for o in [*allocated[:8], *created[:5], *released, *already]]
    before_stock, before_orders = stock(net), orders_state(net)

    preview, result = run(net, RerouteOrders(), RerouteArgs(order_ids=ids, to_node_id=dst))

    assert_same_split(preview, result)
    assert short.id in preview.skipped
    assert reason_kind(preview.skipped[short.id]) == "stock"
    for oid, reason in preview.skipped.items():
        assert reason_kind(reason) == reason_kind(result.skipped[oid]), (oid, reason, result.skipped[oid])
    after_orders = orders_state(net)
    assert {oid for oid in ids if after_orders[oid] != before_orders[oid]} == set(result.done)
    assert all(after_orders[oid][1] == dst for oid in result.done)
    # Stock: the target reserves per SKU exactly what the preview moved; the sources release it.
    delta = reserved_delta(before_stock, stock(net))
    at_target: dict[str, int] = {sku: d for (node, sku), d in delta.items() if node == dst}
    at_sources: dict[str, int] = defaultdict(int)
    for (node, sku), d in delta.items():
        if node != dst:
            at_sources[sku] -= d
    assert at_target == preview.inventory_moved
    assert dict(at_sources) == preview.inventory_moved
    assert sum(preview.inventory_moved.values()) > 0
    assert all(on_hand == before_stock[k][0] for k, (on_hand, _) in stock(net).items() if k in before_stock)


def test_reroute_then_its_compensation_restores_the_network(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:12]
    before_stock, before_orders = stock(net), orders_state(net)
    tool = RerouteOrders()
    args = RerouteArgs(order_ids=ids, to_node_id=dst)
    _, result = run(net, tool, args)
    assert result.done
    assert orders_state(net) != before_orders

    comp = tool.compensation(args, result)
    assert comp is not None
    assert comp.tool == tool.name
    undo = RerouteArgs.model_validate(comp.args)
    assert undo.to_node_id == src
    undone = tool.execute(net.gateway.env, undo)

    assert set(undone.done) == set(result.done)
    assert orders_state(net) == before_orders
    assert stock(net) == before_stock


def test_reroute_to_a_closed_node_previews_nothing_and_executes_nothing(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    net.adapters.wms.set_node_status(dst, NodeStatus.CLOSED)
    ids = [o.id for o in net.movable(src)][:5]
    before = net.snapshot()
    tool = RerouteOrders()
    args = RerouteArgs(order_ids=ids, to_node_id=dst)
    preview = tool.simulate(net.gateway.env, args)
    assert preview.affected == []
    assert {reason_kind(r) for r in preview.skipped.values()} == {"closed"}
    with pytest.raises(ValidationFailed, match="closed"):
        tool.execute(net.gateway.env, args)
    assert net.snapshot() == before


# --- carrier and service level ------------------------------------------------------------------


def _assert_costs_hold(net: Net, preview: Preview) -> None:
    """The after-cost and service the preview promised are what a fresh twin sees now."""
    after = {o.id: o for o in net.adapters.oms.get_orders(preview.affected)}
    view = TwinView.load(net.adapters, net.clock)
    view.prepare(after.values())
    for item in preview.items:
        if not item.ok:
            continue
        order = after[item.id]
        assert order.node_id is not None
        assert order.carrier_service_id == item.after["service_id"]
        now = view.fulfil(order, order.node_id)
        assert now.cost == Decimal(item.after["cost"]), item.id
        assert now.cost - Decimal(item.before["cost"]) == item.cost_delta


def test_change_carrier_preview_is_the_effect(net: Net) -> None:
    open_orders = [
        *by_status(net, OrderStatus.CREATED, 4),
        *by_status(net, OrderStatus.ALLOCATED, 4),
        *by_status(net, OrderStatus.HELD, 2),
    ]
    closed_orders = [*by_status(net, OrderStatus.SHIPPED, 2), *by_status(net, OrderStatus.CANCELLED, 2)]
    ids = [o.id for o in [*open_orders, *closed_orders]]
    service = "PRF-GROUND"
    before_stock, before_orders = stock(net), orders_state(net)

    preview, result = run(net, ChangeCarrier(), ChangeCarrierArgs(order_ids=ids, carrier_service_id=service))

    assert_same_split(preview, result)
    assert set(preview.affected) == {o.id for o in open_orders}
    for oid, reason in preview.skipped.items():
        assert reason_kind(reason) == reason_kind(result.skipped[oid])
    after_orders = orders_state(net)
    assert {oid for oid in ids if after_orders[oid] != before_orders[oid]} <= set(result.done)
    assert all(after_orders[oid][2] == service for oid in result.done)
    assert stock(net) == before_stock
    _assert_costs_hold(net, preview)


@pytest.mark.parametrize("level", [ServiceLevel.TWO_DAY, ServiceLevel.OVERNIGHT])
def test_expedite_preview_is_the_effect(net: Net, level: ServiceLevel) -> None:
    candidates = net.adapters.oms.list_orders(
        OrderFilter(statuses=[OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED]), limit=60
    )
    ids = [o.id for o in candidates][:30] + [o.id for o in by_status(net, OrderStatus.DELIVERED, 2)]
    before_stock = stock(net)

    preview, result = run(net, ExpediteOrders(), ExpediteArgs(order_ids=ids, service_level=level))

    assert preview.affected, "some orders should be slower than the level asked for"
    assert preview.skipped, "delivered orders and orders already at the level are skipped"
    assert_same_split(preview, result)
    assert result.skipped == preview.skipped
    assert result.details["services"] == {i.id: i.after["service_id"] for i in preview.items if i.ok}
    assert stock(net) == before_stock
    _assert_costs_hold(net, preview)


def test_change_carrier_to_a_carrier_in_outage_changes_nothing(net: Net) -> None:
    net.adapters.carriers.set_carrier_status("RDG", CarrierStatus.OUTAGE)
    ids = [o.id for o in by_status(net, OrderStatus.ALLOCATED, 5)]
    before = net.snapshot()
    preview, result = run(net, ChangeCarrier(), ChangeCarrierArgs(order_ids=ids, carrier_service_id="RDG-GROUND"))
    assert preview.affected == []
    assert result.done == []
    assert net.snapshot() == before


# --- lifecycle ----------------------------------------------------------------------------------


def _mixed(net: Net) -> list[str]:
    statuses = [
        OrderStatus.CREATED,
        OrderStatus.ALLOCATED,
        OrderStatus.RELEASED,
        OrderStatus.PICKED,
        OrderStatus.SHIPPED,
        OrderStatus.HELD,
        OrderStatus.CANCELLED,
    ]
    return [o.id for s in statuses for o in by_status(net, s, 3)]


@pytest.mark.parametrize("tool", [HoldOrders(), ReleaseHolds(), CancelOrders()], ids=lambda t: t.name)
def test_lifecycle_preview_is_the_effect(net: Net, tool: WriteTool[OrderSetArgs]) -> None:
    ids = _mixed(net)
    before_orders = {o.id: o for o in net.adapters.oms.get_orders(ids)}
    before_stock = stock(net)

    preview, result = run(net, tool, OrderSetArgs(order_ids=ids))

    assert preview.affected
    assert preview.skipped
    assert_same_split(preview, result)
    assert result.skipped == preview.skipped
    after = {o.id: o for o in net.adapters.oms.get_orders(ids)}
    for item in preview.items:
        if item.ok:
            assert after[item.id].status.value == item.after["status"]
        else:
            assert after[item.id].status == before_orders[item.id].status
    # Stock: only a cancel frees reservations, per SKU exactly as previewed; nothing leaves the shelf.
    delta = reserved_delta(before_stock, stock(net))
    per_sku: dict[str, int] = defaultdict(int)
    for (_, sku), d in delta.items():
        per_sku[sku] += d
    assert {k: v for k, v in per_sku.items() if v} == preview.inventory_moved
    if isinstance(tool, CancelOrders):
        freed = [
            o
            for o in before_orders.values()
            if o.id in result.done and (o.status in RESERVING_STATUSES or o.held_from in RESERVING_STATUSES)
        ]
        assert bool(freed) == bool(preview.inventory_moved)
    else:
        assert preview.inventory_moved == {}
