"""Assertions shared by the conformance tests: snapshots and the reservation invariants."""

from __future__ import annotations

from collections import defaultdict

from core.domain import RESERVING_STATUSES, InventoryPosition, Node, Order, OrderStatus
from tools.adapters.protocols import Adapters, OrderFilter

State = tuple[list[InventoryPosition], list[Order], list[Node]]


def snapshot(adapters: Adapters) -> State:
    """Everything a write could change, to assert that a failed call changed nothing."""
    return (
        adapters.wms.inventory(),
        adapters.oms.list_orders(OrderFilter(), limit=100_000, with_lines=True),
        adapters.wms.list_nodes(),
    )


def holds_reservation(order: Order) -> bool:
    return order.status in RESERVING_STATUSES or (
        order.status is OrderStatus.HELD and order.held_from in RESERVING_STATUSES
    )


def assert_invariants(adapters: Adapters) -> None:
    """Stock is never negative, reserved fits on hand, and every reserved unit belongs to an order."""
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for order in adapters.oms.list_orders(OrderFilter(), limit=100_000, with_lines=True):
        if holds_reservation(order):
            assert order.node_id is not None, order
            for line in order.lines:
                expected[(order.node_id, line.sku)] += line.quantity
    actual = {}
    for pos in adapters.wms.inventory():
        assert pos.on_hand >= 0, pos
        assert 0 <= pos.reserved <= pos.on_hand, pos
        actual[(pos.node_id, pos.sku)] = pos.reserved
    for key, qty in expected.items():
        assert actual.get(key, 0) == qty, (key, actual.get(key, 0), qty)
    for key, qty in actual.items():
        assert expected.get(key, 0) == qty, (key, qty, expected.get(key, 0))


def total_reserved(adapters: Adapters) -> int:
    return sum(p.reserved for p in adapters.wms.inventory())
