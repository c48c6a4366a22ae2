"""The embedded carriers: services, rate cards, ETAs and shipments, on the project's database.

Reference implementation of :class:`tools.adapters.protocols.Carriers`. Quotes follow how parcel
carriers price and promise: the zone comes from the distance between node and ship-to, the price
from the service's rate card for that zone, the ship date from the node's backlog and cutoff, the
ETA from the service's transit table, and a carrier outage or degradation in the affected states
makes the quote unavailable or a day later. Nothing here calls out; tracking numbers are derived
from the order so that replays produce the same ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from core import shipping
from core.clock import Clock
from core.db import Database
from core.db.tables import RateCardRow
from core.domain import (
    RESERVING_STATUSES,
    Carrier,
    CarrierService,
    CarrierStatus,
    OrderStatus,
    ServiceLevel,
    Shipment,
    ShipmentStatus,
    TrackingEvent,
)
from core.errors import NotFound, ValidationFailed
from core.geo import zone_between
from core.shipping import Rate
from tools.adapters.embedded._common import (
    address_from_row,
    addresses_t,
    carrier_from_row,
    carriers_t,
    chunks,
    in_values,
    node_from_row,
    nodes_t,
    orders_t,
    service_from_row,
    services_t,
    shipment_from_row,
    shipments_t,
    to_db_time,
    tracking_from_row,
    tracking_t,
    unique_ids,
)
from tools.adapters.protocols import RateQuote

rates_t = cast(Table, RateCardRow.__table__)
_NO_RATE = Rate(base=Decimal(0), per_kg=Decimal(0))

# An order may get a label once stock is reserved for it, and keeps it after it shipped.
SHIPPABLE: frozenset[OrderStatus] = RESERVING_STATUSES | {OrderStatus.SHIPPED, OrderStatus.DELIVERED}


class EmbeddedCarriers:
    """Carriers on :class:`core.db.Database`; ``clock`` sets today and the cutoff check."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # --- carriers and services ------------------------------------------------------------------

    def list_carriers(self) -> list[Carrier]:
        with self.db.connect() as conn:
            return [carrier_from_row(r) for r in conn.execute(select(carriers_t).order_by(carriers_t.c.id))]

    def get_carrier(self, carrier_id: str) -> Carrier:
        with self.db.connect() as conn:
            return carrier_from_row(self._one(conn, carriers_t, carrier_id, "carrier"))

    def list_services(
        self, *, carrier_id: str | None = None, level: ServiceLevel | None = None
    ) -> list[CarrierService]:
        stmt = select(services_t).order_by(services_t.c.id)
        with self.db.connect() as conn:
            if carrier_id is not None:
                self._one(conn, carriers_t, carrier_id, "carrier")
                stmt = stmt.where(services_t.c.carrier_id == carrier_id)
            if level is not None:
                stmt = stmt.where(services_t.c.level == ServiceLevel(level).value)
            return [service_from_row(r) for r in conn.execute(stmt)]

    def get_service(self, carrier_service_id: str) -> CarrierService:
        with self.db.connect() as conn:
            return service_from_row(self._one(conn, services_t, carrier_service_id, "carrier service"))

    def rate_cards(self) -> dict[str, dict[int, Rate]]:
        """``{carrier_service_id: {zone: Rate}}`` for every service: the whole tariff in one read."""
        out: dict[str, dict[int, Rate]] = {}
        with self.db.connect() as conn:
            for r in conn.execute(select(rates_t).order_by(rates_t.c.carrier_service_id, rates_t.c.zone)):
                out.setdefault(r.carrier_service_id, {})[int(r.zone)] = Rate(
                    base=Decimal(r.base), per_kg=Decimal(r.per_kg)
                )
        return out

    def set_carrier_status(
        self, carrier_id: str, status: CarrierStatus, *, outage_states: Sequence[str] = ()
    ) -> Carrier:
        """Set a carrier's status; ``outage_states`` scopes an outage or degradation (empty = everywhere).
        Back to operational clears the scope."""
        try:
            status = CarrierStatus(status)
        except ValueError:
            raise ValidationFailed(f"unknown carrier status {status!r}") from None
        if isinstance(outage_states, str):
            raise ValidationFailed("outage_states must be a list of state codes, not one string")
        states = sorted({s.strip().upper() for s in outage_states if s.strip()})
        if any(len(s) != 2 for s in states):
            raise ValidationFailed(f"outage_states must be 2-letter state codes (got {states})")
        if status is CarrierStatus.OPERATIONAL:
            states = []
        with self.db.begin() as session:
            conn = session.connection()
            self._one(conn, carriers_t, carrier_id, "carrier")
            values = {"status": status.value, "outage_states": states}
            conn.execute(update(carriers_t).where(carriers_t.c.id == carrier_id).values(**values))
            return carrier_from_row(self._one(conn, carriers_t, carrier_id, "carrier"))

    # --- quotes ---------------------------------------------------------------------------------

    def quote(self, carrier_service_id: str, *, node_id: str, ship_to_id: str, weight_kg: float) -> RateQuote:
        """Cost, zone, ship date (node backlog pushes it) and ETA (carrier outage delays it)."""
        _check_weight(weight_kg)
        with self.db.connect() as conn:
            service = self._one(conn, services_t, carrier_service_id, "carrier service")
            node = self._one(conn, nodes_t, node_id, "node")
            address = self._one(conn, addresses_t, ship_to_id, "address")
            carrier = self._one(conn, carriers_t, service.carrier_id, "carrier")
            zone = zone_between(node.lat, node.lon, address.lat, address.lon)
            rate = conn.execute(
                select(rates_t).where(rates_t.c.carrier_service_id == carrier_service_id, rates_t.c.zone == zone)
            ).first()
        return self._quote(service, carrier, node, address, zone, rate, weight_kg)

    def quotes(self, *, node_id: str, ship_to_id: str, weight_kg: float) -> list[RateQuote]:
        """Quotes of every service, cheapest first; unavailable ones flagged with a reason."""
        _check_weight(weight_kg)
        with self.db.connect() as conn:
            node = self._one(conn, nodes_t, node_id, "node")
            address = self._one(conn, addresses_t, ship_to_id, "address")
            zone = zone_between(node.lat, node.lon, address.lat, address.lon)
            carriers = {r.id: r for r in conn.execute(select(carriers_t))}
            services = conn.execute(select(services_t).order_by(services_t.c.id)).all()
            rates = {r.carrier_service_id: r for r in conn.execute(select(rates_t).where(rates_t.c.zone == zone))}
        out = [
            self._quote(s, carriers[s.carrier_id], node, address, zone, rates.get(s.id), weight_kg) for s in services
        ]
        return sorted(out, key=lambda q: (q.cost, q.carrier_service_id))

    # --- shipments ------------------------------------------------------------------------------

    def create_shipments(self, order_ids: Sequence[str]) -> list[Shipment]:
        """A shipment for each order from its node with its carrier service (idempotent per order).

        Raises (and creates none) if an order has no node or no carrier service, holds no stock
        yet, or its carrier cannot serve the lane right now.
        """
        ids = unique_ids(order_ids)
        with self.db.begin() as session:
            conn = session.connection()
            orders = self._orders(conn, ids)
            existing = self._existing(conn, ids)
            todo = [orders[i] for i in ids if i not in existing]
            new_rows: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            if todo:
                nodes = {r.id: r for r in conn.execute(select(nodes_t))}
                carriers = {r.id: r for r in conn.execute(select(carriers_t))}
                services = {r.id: r for r in conn.execute(select(services_t))}
                addr_ids = list({o.ship_to_id for o in todo})
                addr_stmt = select(addresses_t).where(in_values(conn, addresses_t.c.id, addr_ids))
                addresses = {r.id: r for r in conn.execute(addr_stmt)}
                rates = {(r.carrier_service_id, r.zone): r for r in conn.execute(select(rates_t))}
                for order in todo:
                    if OrderStatus(order.status) not in SHIPPABLE:
                        raise ValidationFailed(
                            f"order {order.id} is {order.status}; a shipment needs an allocated order",
                            order_id=order.id,
                        )
                    if order.node_id is None or order.carrier_service_id is None:
                        raise ValidationFailed(
                            f"order {order.id} needs a node and a carrier service before it can ship",
                            order_id=order.id,
                        )
                    service = services[order.carrier_service_id]
                    node, address = nodes[order.node_id], addresses[order.ship_to_id]
                    zone = zone_between(node.lat, node.lon, address.lat, address.lon)
                    rate = rates.get((service.id, zone))
                    q = self._quote(service, carriers[service.carrier_id], node, address, zone, rate, order.weight_kg)
                    if not q.available:
                        raise ValidationFailed(
                            f"order {order.id} cannot ship with {service.id}: {q.reason}", order_id=order.id
                        )
                    sid = "SHP-" + hashlib.sha256(order.id.encode()).hexdigest()[:16].upper()
                    new_rows.append(
                        {
                            "id": sid,
                            "order_id": order.id,
                            "node_id": node.id,
                            "carrier_service_id": service.id,
                            "tracking_number": _tracking_number(service.carrier_id, order.id),
                            "status": ShipmentStatus.PLANNED.value,
                            "ship_date": q.ship_date,
                            "eta": q.eta,
                        }
                    )
                    events.append(
                        {
                            "shipment_id": sid,
                            "at": to_db_time(self.clock.now()),
                            "status": ShipmentStatus.PLANNED.value,
                            "location": f"{node.city}, {node.state}",
                            "note": f"label created for {service.name}",
                        }
                    )
                conn.execute(insert(shipments_t), new_rows)
                conn.execute(insert(tracking_t), events)
            created = {r["order_id"]: r for r in new_rows}
        return [existing[i] if i in existing else Shipment.model_validate(created[i]) for i in ids]

    def shipments(self, order_ids: Sequence[str]) -> list[Shipment]:
        """Shipments of the given orders (orders without one are absent), in the orders' order."""
        ids = list(dict.fromkeys(order_ids))
        if not ids:
            return []
        with self.db.connect() as conn:
            self._orders(conn, ids)
            stmt = select(shipments_t).where(in_values(conn, shipments_t.c.order_id, ids)).order_by(shipments_t.c.id)
            rows = conn.execute(stmt).all()
        rank = {oid: n for n, oid in enumerate(ids)}
        return [shipment_from_row(r) for r in sorted(rows, key=lambda r: rank[r.order_id])]

    def tracking(self, shipment_id: str) -> list[TrackingEvent]:
        with self.db.connect() as conn:
            self._one(conn, shipments_t, shipment_id, "shipment")
            stmt = (
                select(tracking_t)
                .where(tracking_t.c.shipment_id == shipment_id)
                .order_by(tracking_t.c.at, tracking_t.c.id)
            )
            return [tracking_from_row(r) for r in conn.execute(stmt)]

    # --- internals ------------------------------------------------------------------------------

    def _quote(
        self, service: Any, carrier: Any, node: Any, address: Any, zone: int, rate: Any, weight_kg: float
    ) -> RateQuote:
        """One service on one lane, priced and dated by :func:`core.shipping.quote` (the arithmetic the
        tool layer's previews use too, so a preview and its execution agree). ``rate`` None: the
        service has no price in that zone, so it cannot be booked there."""
        q = shipping.quote(
            node=node_from_row(node),
            address=address_from_row(address),
            service=service_from_row(service),
            carrier=carrier_from_row(carrier),
            rate=Rate(base=Decimal(rate.base), per_kg=Decimal(rate.per_kg)) if rate is not None else _NO_RATE,
            weight_kg=weight_kg,
            now=self.clock.now(),
        )
        reasons = [q.reason] if q.reason else []
        if rate is None:
            reasons.append(f"no rate card for {service.id} in zone {zone}")
        return RateQuote(
            carrier_service_id=q.carrier_service_id,
            carrier_id=q.carrier_id,
            level=q.level,
            zone=q.zone,
            weight_kg=q.weight_kg,
            cost=q.cost,
            transit_days=q.transit_days,
            ship_date=q.ship_date,
            eta=q.eta,
            available=q.available and rate is not None,
            reason="; ".join(reasons),
        )

    @staticmethod
    def _one(conn: Connection, table: Any, ident: str, kind: str) -> Any:
        row = conn.execute(select(table).where(table.c.id == ident)).first()
        if row is None:
            raise NotFound(kind, ident)
        return row

    @staticmethod
    def _orders(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for part in chunks(ids):
            found.update((r.id, r) for r in conn.execute(select(orders_t).where(in_values(conn, orders_t.c.id, part))))
        for oid in ids:
            if oid not in found:
                raise NotFound("order", oid)
        return found

    @staticmethod
    def _existing(conn: Connection, ids: Sequence[str]) -> dict[str, Shipment]:
        """The live (not cancelled) shipment of each order that has one."""
        out: dict[str, Shipment] = {}
        for part in chunks(ids):
            stmt = (
                select(shipments_t)
                .where(
                    in_values(conn, shipments_t.c.order_id, part),
                    shipments_t.c.status != ShipmentStatus.CANCELLED.value,
                )
                .order_by(shipments_t.c.id)
            )
            for r in conn.execute(stmt):
                out.setdefault(r.order_id, shipment_from_row(r))
        return out


def _check_weight(weight_kg: float) -> None:
    if not weight_kg > 0 or math.isinf(weight_kg):
        raise ValidationFailed(f"weight_kg must be a positive number (got {weight_kg})")


def _tracking_number(carrier_id: str, order_id: str) -> str:
    """Deterministic per (carrier, order): replays and retries print the same label."""
    digest = int(hashlib.sha256(f"{carrier_id}:{order_id}".encode()).hexdigest()[:16], 16)
    prefix = "".join(ch for ch in carrier_id.upper() if ch.isalnum())[:4] or "TRK"
    return f"{prefix}{digest % 10**16:016d}"
