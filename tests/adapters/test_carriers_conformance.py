"""Carriers conformance: services, zones, rates, ship dates, outages and shipments."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from core.clock import FixedClock
from core.domain import CarrierStatus, OrderStatus, ServiceLevel, ShipmentStatus
from core.errors import NotFound, ValidationFailed
from core.geo import zone_between
from tests.adapters.support import snapshot
from tests.factories import SmallNetwork
from tools.adapters.protocols import Adapters


def test_carriers_services_and_rate_cards(adapters: Adapters, network: SmallNetwork) -> None:
    c = adapters.carriers
    assert [x.id for x in c.list_carriers()] == ["PCL", "SWF"]
    assert len(c.list_services()) == 6
    assert [s.id for s in c.list_services(carrier_id="SWF", level=ServiceLevel.OVERNIGHT)] == ["SWF-OVERNIGHT"]
    assert c.get_service("PCL-GROUND").transit_days_by_zone[0] == 1
    cards = c.rate_cards()
    assert set(cards) == {s.id for s in c.list_services()}
    assert cards["PCL-GROUND"][2].base == Decimal("6.00")
    for call in (lambda: c.get_carrier("NOPE"), lambda: c.get_service("NOPE"), lambda: c.list_services(carrier_id="X")):
        with pytest.raises(NotFound):
            call()


def test_quote_zone_cost_and_dates(adapters: Adapters, network: SmallNetwork) -> None:
    la = adapters.oms.get_address(network.addr_a_la)
    nj = adapters.wms.get_node(network.node_nj)
    q = adapters.carriers.quote("PCL-GROUND", node_id=nj.id, ship_to_id=la.id, weight_kg=2.0)
    assert q.zone == zone_between(nj.lat, nj.lon, la.lat, la.lon) == 8
    assert q.cost == Decimal("12.00") + Decimal("0.50") * 2  # base 6 + 6 zone steps, 0.50/kg
    assert q.transit_days == 6
    assert q.ship_date == date(2026, 11, 24)  # backlog 2 of 100/day -> one day
    assert q.eta == q.ship_date + timedelta(days=6)
    assert q.available
    near = adapters.carriers.quote("PCL-GROUND", node_id=nj.id, ship_to_id=network.addr_a_ny, weight_kg=2.0)
    assert near.zone == 2
    assert near.cost < q.cost


def test_backlog_and_cutoff_push_ship_date(adapters: Adapters, network: SmallNetwork, clock: FixedClock) -> None:
    adapters.wms.set_backlog(network.node_nj, 250)  # 2.5 days of work -> 3 days
    q = adapters.carriers.quote("PCL-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1)
    assert q.ship_date == date(2026, 11, 26)
    clock.current = datetime(2026, 11, 23, 16, 0, tzinfo=clock.current.tzinfo)  # past the 15:00 cutoff
    late = adapters.carriers.quote("PCL-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1)
    assert late.ship_date == date(2026, 11, 27)


def test_quotes_cheapest_first_and_outages(adapters: Adapters, network: SmallNetwork) -> None:
    c = adapters.carriers
    quotes = c.quotes(node_id=network.node_nj, ship_to_id=network.addr_b_chi, weight_kg=3)
    assert len(quotes) == 6
    assert [q.cost for q in quotes] == sorted(q.cost for q in quotes)
    assert quotes[0].carrier_service_id == "PCL-GROUND"
    c.set_carrier_status("PCL", CarrierStatus.OUTAGE, outage_states=["il"])
    assert c.get_carrier("PCL").outage_states == ("IL",)
    quotes = c.quotes(node_id=network.node_nj, ship_to_id=network.addr_b_chi, weight_kg=3)
    down = [q for q in quotes if q.carrier_id == "PCL"]
    assert down
    assert all(not q.available and "outage" in q.reason for q in down)
    assert all(q.available for q in quotes if q.carrier_id == "SWF")
    # The outage is scoped to Illinois: NJ -> NY still works.
    assert c.quote("PCL-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1).available
    c.set_carrier_status("PCL", CarrierStatus.OUTAGE)  # everywhere
    assert not c.quote("PCL-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1).available
    base = c.quote("SWF-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1)
    c.set_carrier_status("SWF", CarrierStatus.DEGRADED)
    slow = c.quote("SWF-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1)
    assert slow.eta == base.eta + timedelta(days=1)
    assert c.set_carrier_status("PCL", CarrierStatus.OPERATIONAL).outage_states == ()


def test_quote_errors(adapters: Adapters, network: SmallNetwork) -> None:
    c = adapters.carriers
    with pytest.raises(NotFound):
        c.quote("NOPE", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=1)
    with pytest.raises(NotFound):
        c.quote("PCL-GROUND", node_id="NOPE", ship_to_id=network.addr_a_ny, weight_kg=1)
    with pytest.raises(NotFound):
        c.quotes(node_id=network.node_nj, ship_to_id="NOPE", weight_kg=1)
    with pytest.raises(ValidationFailed):
        c.quote("PCL-GROUND", node_id=network.node_nj, ship_to_id=network.addr_a_ny, weight_kg=0)
    with pytest.raises(NotFound):
        c.set_carrier_status("NOPE", CarrierStatus.OUTAGE)


def test_create_shipments_is_idempotent_and_tracked(adapters: Adapters, network: SmallNetwork) -> None:
    c = adapters.carriers
    ids = [network.orders["allocated_nj"], network.orders["shipped_nj"]]
    first = c.create_shipments(ids)
    assert [s.order_id for s in first] == ids
    assert all(s.status is ShipmentStatus.PLANNED for s in first)
    assert len({s.tracking_number for s in first}) == 2
    assert c.create_shipments(list(reversed(ids))) == list(reversed(first))
    assert c.shipments(ids) == first
    events = c.tracking(first[0].id)
    assert [e.status for e in events] == [ShipmentStatus.PLANNED]
    assert events[0].location == "Newark, NJ"
    assert c.shipments([network.orders["created"]]) == []


def test_create_shipments_errors_change_nothing(adapters: Adapters, network: SmallNetwork) -> None:
    c = adapters.carriers
    before = (snapshot(adapters), c.shipments(list(network.orders.values())))
    with pytest.raises(NotFound):
        c.create_shipments([network.orders["allocated_nj"], "ORD-NOPE"])
    with pytest.raises(ValidationFailed):  # not allocated yet
        c.create_shipments([network.orders["allocated_nj"], network.orders["created"]])
    with pytest.raises(ValidationFailed):
        c.create_shipments([])
    adapters.oms.transition([network.orders["allocated_nj2"]], OrderStatus.CREATED)
    before = (snapshot(adapters), c.shipments(list(network.orders.values())))
    c.set_carrier_status("PCL", CarrierStatus.OUTAGE)
    with pytest.raises(ValidationFailed):
        c.create_shipments([network.orders["allocated_nj"]])
    c.set_carrier_status("PCL", CarrierStatus.OPERATIONAL)
    assert (snapshot(adapters), c.shipments(list(network.orders.values()))) == before
    with pytest.raises(NotFound):
        c.tracking("SHP-NOPE")
