"""Factories for tests: small, hand-checkable fulfillment networks on a migrated database.

Master data (nodes, products, customers, carriers, rate cards, stock) is inserted as rows; orders
are created and moved through their lifecycle with the adapters themselves, so every reservation
in a built network is one the OMS made and the reservation invariants hold from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from core.clock import Clock, FixedClock
from core.db import Database
from core.db.tables import (
    AddressRow,
    CarrierRow,
    CarrierServiceRow,
    CustomerRow,
    InventoryRow,
    NodeRow,
    PriceListItemRow,
    PriceListRow,
    ProductRow,
    ProductUomRow,
    RateCardRow,
)
from core.domain import OrderCreate, OrderLineIn, OrderStatus, ServiceLevel
from core.geo import city
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters

AdaptersFactory = Callable[[Database, Clock], Adapters]

# (id, city, state, daily capacity, status)
NODES: tuple[tuple[str, str, str, int, str], ...] = (
    ("DC-NJ", "Newark", "NJ", 100, "open"),
    ("DC-GA", "Atlanta", "GA", 100, "open"),
    ("DC-CA", "Ontario", "CA", 50, "open"),
    ("DC-TX", "Dallas", "TX", 80, "closed"),
)
# (sku, name, weight kg, list price, hazmat, cold chain)
PRODUCTS: tuple[tuple[str, str, float, str, bool, bool], ...] = (
    ("SKU-001", "Steel bolt M8 box", 1.0, "10.00", False, False),
    ("SKU-002", "Hex nut M8 box", 0.5, "4.00", False, False),
    ("SKU-003", "Cordless drill 18V", 2.5, "120.00", False, False),
    ("SKU-004", "Safety gloves pair", 0.2, "6.50", False, False),
    ("SKU-005", "Lithium battery pack", 1.5, "80.00", True, False),
    ("SKU-006", "Epoxy resin chilled", 3.0, "45.00", False, True),
)
# on hand per (node, sku); DC-CA stocks no hazmat and no cold chain.
STOCK: dict[tuple[str, str], int] = {
    **{(n, s): 100 for n in ("DC-NJ", "DC-GA", "DC-CA", "DC-TX") for s in ("SKU-001", "SKU-002", "SKU-003", "SKU-004")},
    ("DC-NJ", "SKU-005"): 20,
    ("DC-GA", "SKU-005"): 5,
    ("DC-GA", "SKU-006"): 10,
    ("DC-TX", "SKU-006"): 10,
}
CONTRACT_PRICES: dict[str, Decimal] = {"SKU-001": Decimal("8.50"), "SKU-003": Decimal("99.00")}
# (carrier id, name, service id prefix)
CARRIERS: tuple[tuple[str, str], ...] = (("PCL", "Parcelline"), ("SWF", "Swiftair"))
# level -> (transit days zone 2..8, air, base per zone 2, base step per zone, per kg)
SERVICES: dict[ServiceLevel, tuple[tuple[int, ...], bool, Decimal, Decimal, Decimal]] = {
    ServiceLevel.GROUND: ((1, 2, 3, 4, 5, 5, 6), False, Decimal("6.00"), Decimal("1.00"), Decimal("0.50")),
    ServiceLevel.TWO_DAY: ((2, 2, 2, 2, 2, 2, 2), True, Decimal("14.00"), Decimal("2.00"), Decimal("1.20")),
    ServiceLevel.OVERNIGHT: ((1, 1, 1, 1, 1, 1, 1), True, Decimal("30.00"), Decimal("4.00"), Decimal("2.50")),
}


@dataclass
class SmallNetwork:
    """Ids of everything in the small network, named by role so tests read like the scenario."""

    db: Database
    clock: FixedClock
    adapters: Adapters
    node_nj: str = "DC-NJ"
    node_ga: str = "DC-GA"
    node_ca: str = "DC-CA"
    node_closed: str = "DC-TX"
    skus: tuple[str, ...] = tuple(p[0] for p in PRODUCTS)
    hazmat_sku: str = "SKU-005"
    cold_sku: str = "SKU-006"
    customer_a: str = "CUST-A"
    customer_b: str = "CUST-B"
    addr_a_ny: str = "ADDR-A-NY"
    addr_a_la: str = "ADDR-A-LA"
    addr_b_chi: str = "ADDR-B-CHI"
    carrier_ground: str = "PCL"
    carrier_air: str = "SWF"
    orders: dict[str, str] = field(default_factory=dict)
    """Seeded orders by role: created, allocated_nj, allocated_nj2, released_ga, held_ga, shipped_nj."""

    def service(self, carrier_id: str, level: ServiceLevel) -> str:
        return f"{carrier_id}-{level.value.upper()}"


def _insert_master_data(db: Database) -> None:
    with db.begin() as s:
        for node_id, name, state, capacity, status in NODES:
            c = city(name, state)
            s.add(
                NodeRow(
                    id=node_id,
                    name=f"{name} DC",
                    type="dc",
                    city=name,
                    state=state,
                    lat=c.lat,
                    lon=c.lon,
                    daily_capacity=capacity,
                    backlog=0,
                    cutoff_hour=15,
                    status=status,
                    pick_pack_cost=Decimal("2.50"),
                )
            )
        for sku, name, weight, price, hazmat, cold in PRODUCTS:
            s.add(
                ProductRow(
                    sku=sku,
                    name=name,
                    description=f"{name} (test catalogue)",
                    weight_kg=weight,
                    length_cm=20.0,
                    width_cm=15.0,
                    height_cm=10.0,
                    hazmat=hazmat,
                    cold_chain=cold,
                    base_uom="EA",
                    list_price=Decimal(price),
                )
            )
        s.flush()
        s.add(ProductUomRow(sku="SKU-001", uom="CS", qty_in_base=12))
        s.add_all([PriceListRow(id="PL-A", name="Contract A", currency="USD"), PriceListRow(id="PL-B", name="List")])
        s.flush()
        s.add_all(
            PriceListItemRow(price_list_id="PL-A", sku=sku, unit_price=price) for sku, price in CONTRACT_PRICES.items()
        )
        s.add(
            CustomerRow(
                id="CUST-A",
                name="Acme Hardware",
                account_number="AC-1001",
                tier="gold",
                email="orders@acme.example",
                email_domain="acme.example",
                edi_id="ACMEEDI",
                gln="0614141000012",
                price_list_id="PL-A",
            )
        )
        s.add(
            CustomerRow(
                id="CUST-B",
                name="Bolt & Co",
                account_number="BC-2002",
                tier="standard",
                email="buy@bolt.example",
                email_domain="bolt.example",
                price_list_id="PL-B",
            )
        )
        s.flush()
        for addr_id, cust, cname, state in (
            ("ADDR-A-LA", "CUST-A", "Los Angeles", "CA"),
            ("ADDR-A-NY", "CUST-A", "New York", "NY"),
            ("ADDR-B-CHI", "CUST-B", "Chicago", "IL"),
        ):
            c = city(cname, state)
            s.add(
                AddressRow(
                    id=addr_id,
                    customer_id=cust,
                    label=cname,
                    name=f"{cust} {cname}",
                    street="1 Main St",
                    city=cname,
                    state=state,
                    postal_code="00000",
                    country="US",
                    lat=c.lat,
                    lon=c.lon,
                )
            )
        for carrier_id, cname in CARRIERS:
            s.add(CarrierRow(id=carrier_id, name=cname, status="operational", on_time_rate=0.95, outage_states=[]))
        s.flush()
        for n, (carrier_id, cname) in enumerate(CARRIERS):
            for level, (transit, air, base, step, per_kg) in SERVICES.items():
                sid = f"{carrier_id}-{level.value.upper()}"
                s.add(
                    CarrierServiceRow(
                        id=sid,
                        carrier_id=carrier_id,
                        level=level.value,
                        name=f"{cname} {level.value}",
                        transit_days_by_zone=list(transit),
                        air=air,
                    )
                )
                s.flush()
                # The second carrier is a little dearer, so "cheapest first" has an answer.
                s.add_all(
                    RateCardRow(
                        carrier_service_id=sid,
                        zone=zone,
                        base=base + step * (zone - 2) + Decimal(n),
                        per_kg=per_kg,
                    )
                    for zone in range(2, 9)
                )
        s.add_all(InventoryRow(node_id=n, sku=sku, on_hand=q, reserved=0) for (n, sku), q in STOCK.items())


def build_small_network(
    db: Database, clock: FixedClock | None = None, *, make_adapters: AdaptersFactory = embedded_adapters
) -> SmallNetwork:
    """Four nodes (one closed), six SKUs (one hazmat, one cold chain), two customers with contract
    prices and addresses on both coasts, two carriers with three services each, and six orders in
    different states, all made through the adapters."""
    clock = clock or FixedClock()
    _insert_master_data(db)
    adapters = make_adapters(db, clock)
    net = SmallNetwork(db=db, clock=clock, adapters=adapters)
    oms = adapters.oms

    def order(key: str, customer: str, lines: list[tuple[str, int]], **kw: object) -> str:
        o = oms.create_order(
            OrderCreate(
                customer_id=customer,
                lines=[OrderLineIn(sku=s, quantity=q) for s, q in lines],
                **kw,  # type: ignore[arg-type]
            ),
            order_id=f"ORD-T-{key.upper()}",
        )
        net.orders[key] = o.id
        return o.id

    order("created", "CUST-A", [("SKU-001", 2)])
    nj1 = order("allocated_nj", "CUST-A", [("SKU-001", 3), ("SKU-002", 1)], ship_to_id="ADDR-A-NY")
    nj2 = order("allocated_nj2", "CUST-B", [("SKU-003", 5)])
    rel = order("released_ga", "CUST-B", [("SKU-002", 4), ("SKU-004", 2)])
    held = order("held_ga", "CUST-A", [("SKU-006", 2)])
    ship = order("shipped_nj", "CUST-B", [("SKU-001", 1), ("SKU-005", 1)])
    oms.allocate([nj1, nj2, ship], net.node_nj)
    oms.allocate([rel, held], net.node_ga)
    oms.set_carrier_service([nj1, nj2, rel, held, ship], net.service("PCL", ServiceLevel.GROUND))
    oms.transition([rel, ship], OrderStatus.RELEASED)
    oms.transition([ship], OrderStatus.PICKED)
    oms.transition([ship], OrderStatus.SHIPPED)
    oms.transition([held], OrderStatus.HELD)
    return net
