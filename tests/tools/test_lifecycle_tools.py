"""Lifecycle write tools on the twin: hold, release, cancel apply only where the lifecycle allows."""

from __future__ import annotations

import pytest

from core.domain import OrderStatus
from core.errors import InvalidTransition
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter
from tools.base import OrderSetArgs, ToolEnv
from tools.write import CancelOrders, HoldOrders, ReleaseHolds


def test_release_applies_only_to_held_orders_and_restores_their_status(sqlite_net: Net) -> None:
    env = ToolEnv(sqlite_net.adapters, sqlite_net.clock)
    oms = sqlite_net.adapters.oms
    created = oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=1)[0]
    allocated = oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED]), limit=1)[0]
    HoldOrders().execute(env, OrderSetArgs(order_ids=[allocated.id]))
    args = OrderSetArgs(order_ids=[created.id, allocated.id])
    preview = ReleaseHolds().simulate(env, args)
    assert preview.affected == [allocated.id]
    assert "cannot release" in preview.skipped[created.id]
    result = ReleaseHolds().execute(env, args)
    assert result.done == [allocated.id]
    assert oms.get_order(created.id).status is OrderStatus.CREATED  # not held by a "release"
    assert oms.get_order(allocated.id).status is OrderStatus.ALLOCATED


def test_cancel_frees_reservations_and_skips_shipped_orders(sqlite_net: Net) -> None:
    env = ToolEnv(sqlite_net.adapters, sqlite_net.clock)
    oms, wms = sqlite_net.adapters.oms, sqlite_net.adapters.wms
    allocated = oms.get_order(oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED]), limit=1)[0].id)
    shipped = oms.list_orders(OrderFilter(statuses=[OrderStatus.SHIPPED]), limit=1)[0]
    assert allocated.node_id is not None
    skus = [ln.sku for ln in allocated.lines]
    before = {p.sku: p.reserved for p in wms.inventory(node_ids=[allocated.node_id], skus=skus)}
    args = OrderSetArgs(order_ids=[allocated.id, shipped.id])
    preview = CancelOrders().simulate(env, args)
    assert preview.affected == [allocated.id]
    assert preview.inventory_moved == {ln.sku: -ln.quantity for ln in allocated.lines}
    result = CancelOrders().execute(env, args)
    assert result.done == [allocated.id]
    after = {p.sku: p.reserved for p in wms.inventory(node_ids=[allocated.node_id], skus=skus)}
    assert {s: before[s] - after[s] for s in skus} == {ln.sku: ln.quantity for ln in allocated.lines}
    assert oms.get_order(shipped.id).status is OrderStatus.SHIPPED
    with pytest.raises(InvalidTransition):  # the adapter refuses it outright, too
        oms.transition([shipped.id], OrderStatus.CANCELLED)
