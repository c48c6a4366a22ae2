"""The embedded adapters on batches longer than a plain ``IN (...)`` list (the array / json_each path)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import insert

from core.db.tables import OrderLineRow, OrderRow
from core.domain import OrderStatus
from tests.adapters.support import assert_invariants, total_reserved
from tests.factories import SmallNetwork
from tools.adapters.embedded._common import SMALL_IN
from tools.adapters.protocols import Adapters, OrderFilter

N = SMALL_IN * 2 + 7


def _bulk_orders(network: SmallNetwork, n: int) -> list[str]:
    """``n`` created one-line orders at DC-NJ, inserted directly (the test is about the batch calls)."""
    ids = [f"ORD-B{i:06d}" for i in range(n)]
    common = {
        "customer_id": "CUST-B",
        "external_ref": None,
        "ship_to_id": "ADDR-B-CHI",
        "status": "created",
        "held_from": None,
        "node_id": "DC-NJ",
        "carrier_service_id": None,
        "service_level": "ground",
        "promised_date": date(2026, 12, 1),
        "created_at": datetime(2026, 11, 23, 8, 0),
        "total_value": Decimal("4.00"),
        "total_units": 1,
        "weight_kg": 0.5,
        "version": 1,
    }
    with network.db.begin() as s:
        s.execute(insert(OrderRow), [{"id": oid, **common} for oid in ids])
        line = {"line_no": 1, "sku": "SKU-002", "quantity": 1, "unit_price": Decimal("4.00")}
        s.execute(insert(OrderLineRow), [{"order_id": oid, **line} for oid in ids])
    return ids


def test_large_batches_allocate_move_list_cancel(adapters: Adapters, network: SmallNetwork) -> None:
    ids = _bulk_orders(network, N)
    adapters.wms.adjust_on_hand(network.node_nj, "SKU-002", N)
    result = adapters.oms.allocate(ids)
    assert result.done == ids
    assert adapters.wms.get_node(network.node_nj).backlog == 2 + N
    reserved = total_reserved(adapters)

    moved = adapters.oms.move_orders(ids, network.node_ga)  # GA has 96 free: the rest is skipped
    assert len(moved.moved) == 96
    assert moved.moved == ids[:96]
    assert all("ATP 0" in why for why in moved.skipped.values())
    assert total_reserved(adapters) == reserved

    listed = adapters.oms.list_orders(OrderFilter(order_ids=ids), limit=N, with_lines=True)
    assert [o.id for o in listed] == ids
    assert all(o.lines[0].sku == "SKU-002" for o in listed)
    assert adapters.oms.count_orders(OrderFilter(order_ids=ids, node_ids=[network.node_ga])) == 96
    assert len(adapters.oms.get_orders(list(reversed(ids)))) == N

    assert adapters.oms.transition(ids, OrderStatus.CANCELLED).done == ids
    assert adapters.oms.count_by_status(OrderFilter(order_ids=ids))[OrderStatus.CANCELLED] == N
    assert adapters.wms.get_node(network.node_nj).backlog == 2
    assert_invariants(adapters)
