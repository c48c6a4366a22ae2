"""OMS conformance: reads, filters, order creation, lifecycle, reservations and the error contract."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from core.domain import OrderCreate, OrderLineIn, OrderStatus, ServiceLevel
from core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from tests.adapters.support import assert_invariants, snapshot, total_reserved
from tests.factories import SmallNetwork
from tools.adapters.protocols import Adapters, OrderFilter


def _create(adapters: Adapters, lines: list[tuple[str, int]], customer: str = "CUST-A") -> str:
    order = OrderCreate(customer_id=customer, lines=[OrderLineIn(sku=s, quantity=q) for s, q in lines])
    return adapters.oms.create_order(order).id


def _reserved(adapters: Adapters, node: str, sku: str) -> int:
    return {(p.node_id, p.sku): p.reserved for p in adapters.wms.inventory()}.get((node, sku), 0)


def _on_hand(adapters: Adapters, node: str, sku: str) -> int:
    return {(p.node_id, p.sku): p.on_hand for p in adapters.wms.inventory()}.get((node, sku), 0)


# --- reads and filters ----------------------------------------------------------------------------


def test_seeded_network_satisfies_invariants(adapters: Adapters, network: SmallNetwork) -> None:
    assert_invariants(adapters)
    held = adapters.oms.get_order(network.orders["held_ga"])
    assert held.status is OrderStatus.HELD
    assert held.held_from is OrderStatus.ALLOCATED


def test_get_orders_keeps_order_and_names_first_unknown(adapters: Adapters, network: SmallNetwork) -> None:
    ids = [network.orders["released_ga"], network.orders["created"]]
    got = adapters.oms.get_orders(ids)
    assert [o.id for o in got] == ids
    assert all(o.lines for o in got)
    with pytest.raises(NotFound) as err:
        adapters.oms.get_orders([ids[0], "ORD-NOPE", "ORD-NOPE2"])
    assert err.value.ident == "ORD-NOPE"
    with pytest.raises(NotFound):
        adapters.oms.get_order("ORD-NOPE")


def test_list_orders_filters_combine(adapters: Adapters, network: SmallNetwork) -> None:
    oms = adapters.oms
    everything = oms.list_orders(OrderFilter())
    assert [o.id for o in everything] == sorted(network.orders.values())
    assert all(o.lines == () for o in everything)  # with_lines=False loads no lines

    at_nj = oms.list_orders(OrderFilter(node_ids=[network.node_nj], statuses=[OrderStatus.ALLOCATED]))
    assert {o.id for o in at_nj} == {network.orders["allocated_nj"], network.orders["allocated_nj2"]}

    by_sku = oms.list_orders(OrderFilter(skus=["SKU-003", "SKU-006"]), with_lines=True)
    assert {o.id for o in by_sku} == {network.orders["allocated_nj2"], network.orders["held_ga"]}
    assert all(any(line.sku in {"SKU-003", "SKU-006"} for line in o.lines) for o in by_sku)

    assert {o.id for o in oms.list_orders(OrderFilter(customer_ids=[network.customer_b]))} == {
        network.orders[k] for k in ("allocated_nj2", "released_ga", "shipped_nj")
    }
    rich = oms.list_orders(OrderFilter(min_value=Decimal("90.00"), max_value=Decimal("600")))
    assert {o.id for o in rich} == {network.orders[k] for k in ("allocated_nj2", "held_ga", "shipped_nj")}
    assert oms.list_orders(OrderFilter(node_ids=[])) == []
    assert oms.count_orders(OrderFilter(promised_on_or_before=date(2026, 11, 29))) == 0
    assert oms.count_orders(OrderFilter(promised_on_or_after=date(2026, 11, 30))) == len(network.orders)
    svc = network.service("PCL", ServiceLevel.GROUND)
    assert oms.count_orders(OrderFilter(carrier_service_ids=[svc])) == 5
    assert oms.count_orders(OrderFilter(service_levels=[ServiceLevel.OVERNIGHT])) == 0

    page = oms.list_orders(OrderFilter(), limit=2, offset=1)
    assert [o.id for o in page] == sorted(network.orders.values())[1:3]
    with pytest.raises(ValidationFailed):
        oms.list_orders(OrderFilter(), limit=0)
    with pytest.raises(ValidationFailed):
        oms.count_orders(OrderFilter(statuses=["lost"]))  # type: ignore[list-item]


def test_count_by_status_has_every_status(adapters: Adapters) -> None:
    counts = adapters.oms.count_by_status(OrderFilter())
    assert set(counts) == set(OrderStatus)
    assert counts[OrderStatus.ALLOCATED] == 2
    assert counts[OrderStatus.CANCELLED] == 0
    assert sum(counts.values()) == adapters.oms.count_orders(OrderFilter())
    assert adapters.oms.count_by_status(OrderFilter(skus=["SKU-005"]))[OrderStatus.SHIPPED] == 1


def test_customers_catalogue_prices_and_uoms(adapters: Adapters, network: SmallNetwork) -> None:
    oms = adapters.oms
    assert [c.id for c in oms.list_customers()] == ["CUST-A", "CUST-B"]
    assert [a.id for a in oms.addresses("CUST-A")] == ["ADDR-A-LA", "ADDR-A-NY"]
    assert [a.id for a in oms.get_addresses(["ADDR-B-CHI", "ADDR-A-NY"])] == ["ADDR-B-CHI", "ADDR-A-NY"]
    assert oms.get_product("SKU-005").hazmat
    assert [p.sku for p in oms.get_products(["SKU-002", "SKU-001"])] == ["SKU-002", "SKU-001"]
    assert [p.sku for p in oms.search_products("drill")] == ["SKU-003"]
    assert oms.search_products("sku-004")[0].sku == "SKU-004"
    assert oms.prices("CUST-A", ["SKU-001", "SKU-002"]) == {"SKU-001": Decimal("8.50"), "SKU-002": Decimal("4.00")}
    assert oms.prices("CUST-B", ["SKU-001"]) == {"SKU-001": Decimal("10.00")}
    assert oms.uom_factor("SKU-001", "CS") == 12
    assert oms.uom_factor("SKU-001", "EA") == 1
    for call in (
        lambda: oms.get_customer("NOPE"),
        lambda: oms.addresses("NOPE"),
        lambda: oms.get_address("NOPE"),
        lambda: oms.get_addresses(["ADDR-A-NY", "NOPE"]),
        lambda: oms.get_product("NOPE"),
        lambda: oms.prices("CUST-A", ["NOPE"]),
        lambda: oms.uom_factor("SKU-002", "CS"),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(ValidationFailed):
        oms.search_products("  ")


# --- create_order ---------------------------------------------------------------------------------


def test_create_order_fills_defaults(adapters: Adapters) -> None:
    order = adapters.oms.create_order(
        OrderCreate(
            customer_id="CUST-A",
            service_level=ServiceLevel.TWO_DAY,
            lines=[OrderLineIn(sku="SKU-001", quantity=4), OrderLineIn(sku="SKU-004", quantity=1)],
        )
    )
    assert order.id.startswith("ORD-")
    assert len(order.id) == 14
    assert order.id[4:] == order.id[4:].upper()
    assert order.status is OrderStatus.CREATED
    assert order.node_id is None
    assert order.version == 1
    assert order.ship_to_id == "ADDR-A-LA"  # the customer's first address
    assert [line.unit_price for line in order.lines] == [Decimal("8.50"), Decimal("6.50")]
    assert order.total_value == Decimal("40.50")
    assert order.promised_date == date(2026, 11, 25)  # Monday + 2 business days
    assert adapters.oms.get_order(order.id) == order


def test_create_order_with_given_id_prices_and_promise(adapters: Adapters) -> None:
    order = adapters.oms.create_order(
        OrderCreate(
            customer_id="CUST-B",
            ship_to_id="ADDR-B-CHI",
            promised_date=date(2026, 12, 24),
            external_ref="PO-77",
            lines=[OrderLineIn(sku="SKU-002", quantity=3, unit_price=Decimal("3.333"))],
        ),
        order_id="ORD-MINE",
    )
    assert order.id == "ORD-MINE"
    assert order.external_ref == "PO-77"
    assert order.total_value == Decimal("9.99")
    assert order.promised_date == date(2026, 12, 24)
    again = OrderCreate(customer_id="CUST-B", lines=[OrderLineIn(sku="SKU-002", quantity=1)])
    before = snapshot(adapters)
    with pytest.raises(Conflict):
        adapters.oms.create_order(again, order_id="ORD-MINE")
    assert snapshot(adapters) == before


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"customer_id": "NOPE"}, NotFound),
        ({"ship_to_id": "NOPE"}, NotFound),
        ({"ship_to_id": "ADDR-B-CHI"}, ValidationFailed),  # someone else's address
        ({"lines": [("SKU-001", 1), ("SKU-NOPE", 1)]}, NotFound),
        ({"lines": [("SKU-001", 0)]}, ValidationFailed),
        ({"lines": [("SKU-001", -3)]}, ValidationFailed),
    ],
)
def test_create_order_rejects_bad_input_and_changes_nothing(
    adapters: Adapters, payload: dict[str, object], error: type[Exception]
) -> None:
    before = snapshot(adapters)
    payload = dict(payload)  # parametrize shares the dict between backends
    raw_lines: list[tuple[str, int]] = payload.pop("lines", [("SKU-001", 1)])  # type: ignore[assignment]
    # model_construct: skip the schema's own checks, so the adapter's are what is tested.
    lines = [OrderLineIn.model_construct(sku=s, quantity=q, unit_price=None) for s, q in raw_lines]
    fields: dict[str, Any] = {"customer_id": "CUST-A", "ship_to_id": None, "external_ref": None} | payload
    order = OrderCreate.model_construct(**fields, service_level=ServiceLevel.GROUND, promised_date=None, lines=lines)
    with pytest.raises(error):
        adapters.oms.create_order(order)
    assert snapshot(adapters) == before


# --- allocate -------------------------------------------------------------------------------------


def test_allocate_reserves_all_lines_and_counts_backlog(adapters: Adapters, network: SmallNetwork) -> None:
    oid = _create(adapters, lines=[("SKU-001", 5), ("SKU-005", 2)])
    backlog = adapters.wms.get_node(network.node_nj).backlog
    before_001, before_005 = _reserved(adapters, "DC-NJ", "SKU-001"), _reserved(adapters, "DC-NJ", "SKU-005")
    result = adapters.oms.allocate([oid], network.node_nj)
    assert result.done == [oid]
    assert result.skipped == {}
    order = adapters.oms.get_order(oid)
    assert order.status is OrderStatus.ALLOCATED
    assert order.node_id == "DC-NJ"
    assert order.version == 2
    assert _reserved(adapters, "DC-NJ", "SKU-001") == before_001 + 5
    assert _reserved(adapters, "DC-NJ", "SKU-005") == before_005 + 2
    assert adapters.wms.get_node(network.node_nj).backlog == backlog + 1
    assert_invariants(adapters)


def test_allocate_is_all_or_nothing_per_order_with_reasons(adapters: Adapters, network: SmallNetwork) -> None:
    fits = _create(adapters, lines=[("SKU-005", 3)])
    too_big = _create(adapters, lines=[("SKU-001", 1), ("SKU-005", 3)])  # GA has 5 of SKU-005
    before_001 = _reserved(adapters, "DC-GA", "SKU-001")
    result = adapters.oms.allocate([fits, too_big], network.node_ga)
    assert result.done == [fits]
    assert "SKU-005" in result.skipped[too_big]
    assert "needs 3" in result.skipped[too_big]
    assert "ATP 2" in result.skipped[too_big]
    assert _reserved(adapters, "DC-GA", "SKU-001") == before_001  # no partial reservation
    assert adapters.oms.get_order(too_big).status is OrderStatus.CREATED
    assert_invariants(adapters)


def test_allocate_closed_node_and_wrong_status(adapters: Adapters, network: SmallNetwork) -> None:
    created = network.orders["created"]
    result = adapters.oms.allocate([created], network.node_closed)
    assert result.done == []
    assert "closed" in result.skipped[created]
    result = adapters.oms.allocate([created, network.orders["released_ga"]], network.node_ca)
    assert result.done == [created]
    assert network.orders["released_ga"] in result.skipped
    assert_invariants(adapters)


def test_allocate_errors_change_nothing(adapters: Adapters, network: SmallNetwork) -> None:
    before = snapshot(adapters)
    with pytest.raises(NotFound):
        adapters.oms.allocate([network.orders["created"], "ORD-NOPE"], network.node_nj)
    with pytest.raises(NotFound):
        adapters.oms.allocate([network.orders["created"]], "NODE-NOPE")
    with pytest.raises(ValidationFailed):
        adapters.oms.allocate([], network.node_nj)
    with pytest.raises(InvalidTransition):
        adapters.oms.allocate([network.orders["shipped_nj"]], network.node_nj)
    assert snapshot(adapters) == before


# --- move_orders ----------------------------------------------------------------------------------


def test_move_conserves_units_and_moves_backlog(adapters: Adapters, network: SmallNetwork) -> None:
    nj1, nj2, created = (network.orders[k] for k in ("allocated_nj", "allocated_nj2", "created"))
    total = total_reserved(adapters)
    backlog_nj, backlog_ca = (adapters.wms.get_node(n).backlog for n in (network.node_nj, network.node_ca))
    result = adapters.oms.move_orders([nj1, nj2, created, network.orders["released_ga"]], network.node_ca)
    assert result.moved == [nj1, nj2, created]
    assert "released" in result.skipped[network.orders["released_ga"]]
    assert result.units_moved == 4 + 5 + 2
    assert total_reserved(adapters) == total
    assert _reserved(adapters, "DC-NJ", "SKU-003") == 0
    assert _reserved(adapters, "DC-CA", "SKU-003") == 5
    assert adapters.wms.get_node(network.node_nj).backlog == backlog_nj - 2
    assert adapters.wms.get_node(network.node_ca).backlog == backlog_ca + 2
    moved = adapters.oms.get_order(nj1)
    assert moved.node_id == "DC-CA"
    assert moved.status is OrderStatus.ALLOCATED
    assert moved.version == 4
    assert adapters.oms.get_order(created).status is OrderStatus.CREATED
    assert_invariants(adapters)


def test_move_skips_orders_the_target_cannot_serve(adapters: Adapters, network: SmallNetwork) -> None:
    hazmat = _create(adapters, lines=[("SKU-005", 1), ("SKU-001", 1)])
    adapters.oms.allocate([hazmat], network.node_nj)
    before = adapters.oms.get_order(hazmat)
    result = adapters.oms.move_orders([hazmat, network.orders["allocated_nj"]], network.node_ca)
    assert result.moved == [network.orders["allocated_nj"]]
    assert "SKU-005" in result.skipped[hazmat]
    assert "ATP 0" in result.skipped[hazmat]
    assert adapters.oms.get_order(hazmat) == before
    assert_invariants(adapters)


def test_move_to_closed_or_unknown_node_fails_whole_call(adapters: Adapters, network: SmallNetwork) -> None:
    before = snapshot(adapters)
    ids = [network.orders["allocated_nj"]]
    with pytest.raises(ValidationFailed):
        adapters.oms.move_orders(ids, network.node_closed)
    with pytest.raises(NotFound):
        adapters.oms.move_orders(ids, "NODE-NOPE")
    with pytest.raises(NotFound):
        adapters.oms.move_orders([*ids, "ORD-NOPE"], network.node_ga)
    with pytest.raises(ValidationFailed):
        adapters.oms.move_orders([], network.node_ga)
    assert snapshot(adapters) == before


# --- transition -----------------------------------------------------------------------------------


def test_cancel_frees_reservations_and_backlog(adapters: Adapters, network: SmallNetwork) -> None:
    nj2, held = network.orders["allocated_nj2"], network.orders["held_ga"]
    backlog_nj = adapters.wms.get_node(network.node_nj).backlog
    result = adapters.oms.transition([nj2, held, network.orders["shipped_nj"]], OrderStatus.CANCELLED)
    assert result.done == [nj2, held]
    assert network.orders["shipped_nj"] in result.skipped
    assert _reserved(adapters, "DC-NJ", "SKU-003") == 0
    assert _reserved(adapters, "DC-GA", "SKU-006") == 0  # a hold keeps the reservation until cancelled
    assert adapters.wms.get_node(network.node_nj).backlog == backlog_nj - 1
    assert_invariants(adapters)


def test_ship_consumes_reservations(adapters: Adapters, network: SmallNetwork) -> None:
    rel = network.orders["released_ga"]
    on_hand, reserved = _on_hand(adapters, "DC-GA", "SKU-002"), _reserved(adapters, "DC-GA", "SKU-002")
    assert adapters.oms.transition([rel], OrderStatus.PICKED).done == [rel]
    assert adapters.oms.transition([rel], OrderStatus.SHIPPED).done == [rel]
    assert _on_hand(adapters, "DC-GA", "SKU-002") == on_hand - 4
    assert _reserved(adapters, "DC-GA", "SKU-002") == reserved - 4
    assert adapters.oms.transition([rel], OrderStatus.DELIVERED).done == [rel]
    assert_invariants(adapters)


def test_hold_and_unhold_return_to_held_from(adapters: Adapters, network: SmallNetwork) -> None:
    held, created = network.orders["held_ga"], network.orders["created"]
    reserved = _reserved(adapters, "DC-GA", "SKU-006")
    with pytest.raises(InvalidTransition):
        adapters.oms.transition([held], OrderStatus.CREATED)  # held from allocated, not created
    assert adapters.oms.transition([held], OrderStatus.ALLOCATED).done == [held]
    order = adapters.oms.get_order(held)
    assert order.status is OrderStatus.ALLOCATED
    assert order.held_from is None
    assert _reserved(adapters, "DC-GA", "SKU-006") == reserved
    adapters.oms.transition([created], OrderStatus.HELD)
    assert adapters.oms.get_order(created).held_from is OrderStatus.CREATED
    assert adapters.oms.transition([created], OrderStatus.CREATED).done == [created]
    assert_invariants(adapters)


def test_transition_to_allocated_reserves_like_allocate(adapters: Adapters, network: SmallNetwork) -> None:
    oid = _create(adapters, lines=[("SKU-004", 7)])
    adapters.oms.move_orders([oid], network.node_ca)  # assigns the node
    assert adapters.oms.transition([oid], OrderStatus.ALLOCATED).done == [oid]
    assert _reserved(adapters, "DC-CA", "SKU-004") == 7
    assert adapters.oms.transition([oid], OrderStatus.CREATED).done == [oid]  # de-allocate
    assert _reserved(adapters, "DC-CA", "SKU-004") == 0
    assert_invariants(adapters)


def test_illegal_transitions_raise_and_change_nothing(adapters: Adapters, network: SmallNetwork) -> None:
    before = snapshot(adapters)
    with pytest.raises(InvalidTransition):
        adapters.oms.transition([network.orders["created"]], OrderStatus.SHIPPED)
    with pytest.raises(InvalidTransition):
        adapters.oms.transition([network.orders["shipped_nj"], network.orders["created"]], OrderStatus.PICKED)
    with pytest.raises(NotFound):
        adapters.oms.transition([network.orders["allocated_nj"], "ORD-NOPE"], OrderStatus.CANCELLED)
    with pytest.raises(ValidationFailed):
        adapters.oms.transition([], OrderStatus.CANCELLED)
    with pytest.raises(ValidationFailed):
        adapters.oms.transition([network.orders["created"]], "teleported")  # type: ignore[arg-type]
    assert snapshot(adapters) == before


def test_set_carrier_service(adapters: Adapters, network: SmallNetwork) -> None:
    svc = network.service("SWF", ServiceLevel.OVERNIGHT)
    result = adapters.oms.set_carrier_service([network.orders["created"], network.orders["shipped_nj"]], svc)
    assert result.done == [network.orders["created"]]
    assert network.orders["shipped_nj"] in result.skipped
    assert adapters.oms.get_order(network.orders["created"]).carrier_service_id == svc
    with pytest.raises(NotFound):
        adapters.oms.set_carrier_service([network.orders["created"]], "NOPE")
