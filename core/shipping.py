"""Shipping arithmetic of the digital twin, pure and shared.

The carrier adapter's quotes, the tool layer's simulations and the sourcing scorer all price and
date a shipment with these functions, so a preview and the execution it predicts cannot disagree
about cost or ETA. No I/O here: callers load nodes, services and rate cards and pass them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from core import geo
from core.domain import Address, Carrier, CarrierService, CarrierStatus, Node, ServiceLevel

CENT = Decimal("0.01")
DEGRADED_DELAY_DAYS = 1


@dataclass(frozen=True)
class Rate:
    base: Decimal
    per_kg: Decimal


@dataclass(frozen=True)
class ShipQuote:
    carrier_service_id: str
    carrier_id: str
    level: ServiceLevel
    zone: int
    weight_kg: float
    cost: Decimal
    transit_days: int
    ship_date: date
    eta: date
    available: bool
    reason: str = ""


def ship_date(node: Node, now: datetime) -> date:
    """First day the node can ship: queued work (backlog / capacity) pushes it out, and an order
    arriving after the node's cut-off waits a day."""
    days = math.ceil(node.backlog / node.daily_capacity) if node.daily_capacity > 0 else 30
    if now.hour >= node.cutoff_hour:
        days += 1
    return now.date() + timedelta(days=days)


def zone(node: Node, address: Address) -> int:
    return geo.zone_between(node.lat, node.lon, address.lat, address.lon)


def shipping_cost(rate: Rate, weight_kg: float) -> Decimal:
    return (rate.base + rate.per_kg * Decimal(str(round(weight_kg, 3)))).quantize(CENT, ROUND_HALF_UP)


def availability(carrier: Carrier, origin_state: str, dest_state: str) -> tuple[bool, str]:
    """A carrier in outage cannot take shipments touching its outage states (all states when the
    outage names none)."""
    if carrier.status is not CarrierStatus.OUTAGE:
        return True, ""
    states = set(carrier.outage_states)
    if not states:
        return False, f"carrier {carrier.id} is in outage everywhere"
    hit = sorted(states & {origin_state, dest_state})
    if hit:
        return False, f"carrier {carrier.id} is in outage in {', '.join(hit)}"
    return True, ""


def quote(
    *,
    node: Node,
    address: Address,
    service: CarrierService,
    carrier: Carrier,
    rate: Rate,
    weight_kg: float,
    now: datetime,
    zone_hint: int | None = None,
) -> ShipQuote:
    """Price and date one shipment. ``zone_hint``: the zone if the caller already computed it
    (it needs it to pick the rate), saving a second great-circle computation."""
    z = zone_hint if zone_hint is not None else zone(node, address)
    transit = service.transit_days_by_zone[min(max(z - 2, 0), len(service.transit_days_by_zone) - 1)]
    if carrier.status is CarrierStatus.DEGRADED:
        transit += DEGRADED_DELAY_DAYS
    shipped = ship_date(node, now)
    ok, reason = availability(carrier, node.state, address.state)
    return ShipQuote(
        carrier_service_id=service.id,
        carrier_id=carrier.id,
        level=service.level,
        zone=z,
        weight_kg=weight_kg,
        cost=shipping_cost(rate, weight_kg),
        transit_days=transit,
        ship_date=shipped,
        eta=shipped + timedelta(days=transit),
        available=ok,
        reason=reason,
    )
