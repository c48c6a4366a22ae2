"""A read-only view of the digital twin for pricing and dating many orders at once.

Simulations and the sourcing scorer ask "what would this order cost, and when would it arrive,
if it shipped from node N?" for thousands of orders. :class:`TwinView` loads the reference data
once (nodes, carriers, services, rate cards, customers) plus the orders' addresses and products in
batches, then answers from memory with :mod:`core.shipping` — the same arithmetic the carrier
adapter uses, so a preview cannot disagree with execution.

Nothing ships from a closed node, and nothing ships with a carrier on a lane it is down on: such a
fulfilment is *unavailable* (no ETA, so late), priced at what it would have cost. An incident the
systems do not show yet (an operator says "DC-X is closed" before anyone marks it) is laid over the
view with :meth:`TwinView.assume`, so "before" is the world with the node or lane down. The view
only reads: it never writes what it assumes back to the systems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from core import geo
from core.clock import Clock
from core.domain import (
    Address,
    Carrier,
    CarrierService,
    CarrierStatus,
    Customer,
    CustomerTier,
    Node,
    NodeStatus,
    Order,
    Product,
    ServiceLevel,
)
from core.errors import NotFound
from core.shipping import Rate, ShipQuote, quote, zone
from tools.adapters.protocols import Adapters


@dataclass(frozen=True)
class Fulfilment:
    """Cost and promise of shipping one order from one node. An unavailable one (its carrier is
    down on the lane, its node is closed) keeps its price but has no ETA: it does not arrive."""

    node_id: str
    quote: ShipQuote | None
    pick_pack: Decimal
    reason: str = ""
    node_closed: bool = False

    @property
    def available(self) -> bool:
        return self.quote is not None and self.quote.available and not self.node_closed

    @property
    def cost(self) -> Decimal:
        return (self.quote.cost if self.quote else Decimal(0)) + self.pick_pack

    @property
    def eta(self) -> date | None:
        return self.quote.eta if self.quote is not None and self.available else None


@dataclass
class TwinView:
    adapters: Adapters
    clock: Clock
    nodes: dict[str, Node] = field(default_factory=dict)
    carriers: dict[str, Carrier] = field(default_factory=dict)
    services: dict[str, CarrierService] = field(default_factory=dict)
    rates: dict[str, dict[int, Rate]] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    addresses: dict[str, Address] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    _zones: dict[tuple[str, str], int] = field(default_factory=dict)
    _miles: dict[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def load(cls, adapters: Adapters, clock: Clock) -> TwinView:
        view = cls(adapters=adapters, clock=clock)
        view.nodes = {n.id: n for n in adapters.wms.list_nodes()}
        view.carriers = {c.id: c for c in adapters.carriers.list_carriers()}
        view.services = {s.id: s for s in adapters.carriers.list_services()}
        view.rates = adapters.carriers.rate_cards()
        view.customers = {c.id: c for c in adapters.oms.list_customers()}
        return view

    def prepare(self, orders: Iterable[Order]) -> None:
        """Batch-load the addresses and products these orders need."""
        orders = list(orders)
        missing_addr = sorted({o.ship_to_id for o in orders} - self.addresses.keys())
        if missing_addr:
            self.addresses.update((a.id, a) for a in self.adapters.oms.get_addresses(missing_addr))
        missing_sku = sorted({ln.sku for o in orders for ln in o.lines} - self.products.keys())
        if missing_sku:
            self.products.update((p.sku, p) for p in self.adapters.oms.get_products(missing_sku))

    def tier(self, order: Order) -> CustomerTier:
        return self.customers[order.customer_id].tier

    def hazmat(self, order: Order) -> bool:
        return any(self.products[ln.sku].hazmat for ln in order.lines)

    def cold_chain(self, order: Order) -> bool:
        return any(self.products[ln.sku].cold_chain for ln in order.lines)

    def _services_for(self, level: ServiceLevel) -> list[CarrierService]:
        return [s for s in self.services.values() if s.level is level]

    def miles(self, node: Node, address: Address) -> float:
        """Great-circle miles from ``node`` to ``address``, computed once per pair (as the zone is:
        a node's and an address's coordinates never change; the scorer asks once per service)."""
        key = (node.id, address.id)
        d = self._miles.get(key)
        if d is None:
            d = self._miles[key] = geo.distance_miles(node.lat, node.lon, address.lat, address.lon)
        return d

    def _quote(self, order: Order, node: Node, service: CarrierService) -> ShipQuote | None:
        address = self.addresses[order.ship_to_id]
        key = (node.id, address.id)
        z = self._zones.get(key)
        if z is None:
            z = self._zones[key] = zone(node, address)
        rate = self.rates.get(service.id, {}).get(z)
        if rate is None:
            return None
        return quote(
            node=node,
            address=address,
            service=service,
            carrier=self.carriers[service.carrier_id],
            rate=rate,
            weight_kg=order.weight_kg,
            now=self.clock.now(),
            zone_hint=z,
        )

    def assume(
        self,
        *,
        closed_node_ids: Iterable[str] = (),
        carrier_outages: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Lay an incident over this view: these nodes are closed, these carriers are down in these
        states (none named: everywhere). An outage the systems already show is widened, never
        narrowed. Unknown ids raise NotFound: a preview must not rest on a node that is not there."""
        for node_id in closed_node_ids:
            if node_id not in self.nodes:
                raise NotFound("node", node_id)
            self.nodes[node_id] = self.nodes[node_id].model_copy(update={"status": NodeStatus.CLOSED})
        for carrier_id, states in (carrier_outages or {}).items():
            carrier = self.carriers.get(carrier_id)
            if carrier is None:
                raise NotFound("carrier", carrier_id)
            wanted = {s.upper() for s in states}
            if carrier.status is CarrierStatus.OUTAGE:
                # An empty list is "everywhere": either side's "everywhere" wins.
                wanted = set() if not wanted or not carrier.outage_states else wanted | set(carrier.outage_states)
            self.carriers[carrier_id] = carrier.model_copy(
                update={"status": CarrierStatus.OUTAGE, "outage_states": tuple(sorted(wanted))}
            )

    def fulfil(self, order: Order, node_id: str, *, service_id: str | None = None) -> Fulfilment:
        """How ``order`` would ship from ``node_id``: with ``service_id`` if given, else with its own
        carrier service if that one is available, else the cheapest available one of its level.
        From a closed node nothing is available (priced as if it were open)."""
        f = self._fulfil(order, node_id, service_id=service_id)
        if self.nodes[node_id].status is NodeStatus.CLOSED:
            return replace(f, reason=f"node {node_id} is closed", node_closed=True)
        return f

    def booked(self, order: Order, node_id: str) -> Fulfilment:
        """How ``order`` ships as it stands: from ``node_id`` with its own carrier service, even if
        that service cannot take it now (its carrier is down): that is the "before" a plan fixes,
        not something to paper over with another service. Orders without one: as :meth:`fulfil`."""
        own = order.carrier_service_id
        if own is not None and own in self.services:
            f = self.fulfil(order, node_id, service_id=own)
            if f.quote is not None:
                return f
        return self.fulfil(order, node_id)

    def _fulfil(self, order: Order, node_id: str, *, service_id: str | None = None) -> Fulfilment:
        node = self.nodes[node_id]
        if service_id is not None:
            q = self._quote(order, node, self.services[service_id])
            return Fulfilment(
                node_id,
                q,
                node.pick_pack_cost,
                "" if q and q.available else (q.reason if q else f"no rate for {service_id}"),
            )
        if order.carrier_service_id and order.carrier_service_id in self.services:
            q = self._quote(order, node, self.services[order.carrier_service_id])
            if q is not None and q.available:
                return Fulfilment(node_id, q, node.pick_pack_cost)
        best: ShipQuote | None = None
        reasons: list[str] = []
        for svc in self._services_for(order.service_level):
            q = self._quote(order, node, svc)
            if q is None:
                continue
            if not q.available:
                reasons.append(q.reason)
                continue
            if best is None or (q.cost, q.eta) < (best.cost, best.eta):
                best = q
        reason = "" if best else ("; ".join(dict.fromkeys(reasons)) or f"no {order.service_level.value} service")
        return Fulfilment(node_id, best, node.pick_pack_cost, reason)

    def is_late(self, order: Order, f: Fulfilment) -> bool:
        return f.eta is None or f.eta > order.promised_date


def order_value(orders: Sequence[Order]) -> Decimal:
    return sum((o.total_value for o in orders), Decimal(0))
