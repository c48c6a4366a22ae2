"""The contracts of the systems OrderOps acts on. Batch-first: every read and write that can
concern many orders takes and returns sets, so an agent never needs one call per order.

Error contract (every implementation, checked by the conformance suite in tests/adapters):

* unknown ids -> :class:`core.errors.NotFound`;
* bad arguments (empty batch, quantity <= 0, unknown status) -> :class:`core.errors.ValidationFailed`;
* illegal lifecycle change -> :class:`core.errors.InvalidTransition`;
* not enough stock -> :class:`core.errors.InsufficientInventory`.

A call that raises changes nothing. Batch writes that can partly succeed (moving 500 orders of
which 3 cannot be served) do not raise for the failing members: they return them in ``skipped``
with a reason, and apply the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.domain import (
    Address,
    Carrier,
    CarrierService,
    CarrierStatus,
    Customer,
    CustomerTier,
    InventoryPosition,
    MoveResult,
    Node,
    NodeLoad,
    NodeStatus,
    Order,
    OrderCreate,
    OrderStatus,
    Product,
    ServiceLevel,
    Shipment,
    TrackingEvent,
)
from core.shipping import Rate


@dataclass(frozen=True)
class OrderFilter:
    """Selection of orders; every field narrows (AND). Empty filter = all orders."""

    order_ids: Sequence[str] | None = None
    node_ids: Sequence[str] | None = None
    statuses: Sequence[OrderStatus] | None = None
    customer_ids: Sequence[str] | None = None
    carrier_service_ids: Sequence[str] | None = None
    service_levels: Sequence[ServiceLevel] | None = None
    promised_on_or_before: date | None = None
    promised_on_or_after: date | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    skus: Sequence[str] | None = field(default=None)
    """Orders with at least one line of one of these SKUs."""


class BatchResult(BaseModel):
    """Outcome of a batch write: which members changed and why the others did not."""

    done: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict, description="id -> reason")


class RateQuote(BaseModel):
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


class NewAddress(BaseModel):
    """A ship-to address to create, located by the caller (``lat``/``lon`` feed zones and ETAs)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=32)
    label: str = Field(default="Ship-to", max_length=64)
    name: str = Field(max_length=200)
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    state: str = Field(min_length=2, max_length=2)
    postal_code: str = Field(min_length=3, max_length=10)
    country: str = Field(default="US", min_length=2, max_length=2)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class NewCustomer(BaseModel):
    """A customer to create with its ship-to addresses and its part numbers (their part -> our SKU)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    account_number: str = Field(min_length=1, max_length=32)
    tier: CustomerTier = CustomerTier.STANDARD
    email: str = Field(default="", max_length=200)
    email_domain: str = Field(default="", max_length=200)
    """Empty: no domain identifies the customer (a free-mail sender is known by its address only)."""
    edi_id: str | None = Field(default=None, max_length=32)
    gln: str | None = Field(default=None, max_length=13)
    price_list_id: str | None = Field(default=None, max_length=32)
    """None: the tier's list (``PL-<TIER>``)."""
    addresses: list[NewAddress] = Field(default_factory=list, max_length=20)
    part_numbers: dict[str, str] = Field(default_factory=dict, max_length=500)
    created_by: str = Field(default="", max_length=128)


class OMS(Protocol):
    """Orders, customers, catalogue and prices."""

    def get_order(self, order_id: str) -> Order: ...
    def get_orders(self, order_ids: Sequence[str]) -> list[Order]:
        """Orders in the given order; raises NotFound naming the first unknown id."""
        ...

    def list_orders(
        self, flt: OrderFilter, *, limit: int = 1000, offset: int = 0, with_lines: bool = False
    ) -> list[Order]:
        """Orders matching ``flt``, oldest first (by id). ``with_lines`` loads the lines too."""
        ...

    def count_orders(self, flt: OrderFilter) -> int: ...
    def count_by_status(self, flt: OrderFilter) -> dict[OrderStatus, int]: ...

    def create_order(self, order: OrderCreate, *, order_id: str | None = None) -> Order:
        """Create an order in status ``created`` (not allocated). Prices default to the price list."""
        ...

    def allocate(self, order_ids: Sequence[str], node_id: str | None = None) -> BatchResult:
        """Reserve stock for ``created`` orders at ``node_id`` (or at their assigned node) -> ``allocated``."""
        ...

    def move_orders(self, order_ids: Sequence[str], to_node_id: str) -> MoveResult:
        """Reroute unreleased orders to another node: release their reservations where they were,
        reserve at the target. An order the target cannot serve in full is skipped with a reason."""
        ...

    def split_order(self, order_id: str, line_nos: Sequence[int], to_node_id: str) -> Order:
        """Move some lines of an unreleased order into a new order shipped from another node (stock
        re-reserved there for an allocated order); returns the new order. All lines = use move_orders."""
        ...

    def transition(self, order_ids: Sequence[str], target: OrderStatus) -> BatchResult:
        """Lifecycle changes (release, pick, ship, deliver, hold, unhold, cancel) on a batch.
        Cancelling frees reservations; shipping consumes them (on hand and reserved both drop)."""
        ...

    def set_carrier_service(self, order_ids: Sequence[str], carrier_service_id: str) -> BatchResult: ...

    def get_customer(self, customer_id: str) -> Customer: ...
    def list_customers(self) -> list[Customer]: ...
    def addresses(self, customer_id: str) -> list[Address]: ...
    def get_address(self, address_id: str) -> Address: ...
    def get_addresses(self, address_ids: Sequence[str]) -> list[Address]:
        """Addresses in the given order (batch read for simulations); NotFound on an unknown id."""
        ...

    def get_product(self, sku: str) -> Product: ...
    def get_products(self, skus: Sequence[str]) -> list[Product]: ...
    def search_products(self, text: str, *, limit: int = 10) -> list[Product]: ...
    def list_products(self, *, after: str | None = None, limit: int = 5000) -> list[Product]:
        """The catalogue by SKU, one page at a time: up to ``limit`` products whose SKU sorts after
        ``after`` (keyset paging, so a matcher can load 20,000 SKUs without one huge read)."""
        ...

    def create_customer(self, new: NewCustomer, *, customer_id: str) -> Customer:
        """Create a customer, its addresses and its part numbers in one transaction. Conflict when the
        id, account number, EDI id, GLN or an address id is taken; NotFound for an unknown SKU or price
        list; nothing is written when it raises."""
        ...

    def prices(self, customer_id: str, skus: Sequence[str]) -> dict[str, Decimal]:
        """The customer's contract price per SKU (its price list, else the list price)."""
        ...

    def uom_factor(self, sku: str, uom: str) -> int:
        """Base units in one ``uom`` of ``sku`` (1 for the base uom); NotFound if unknown."""
        ...


class WMS(Protocol):
    """Fulfillment nodes and their inventory."""

    def get_node(self, node_id: str) -> Node: ...
    def list_nodes(self, *, statuses: Sequence[NodeStatus] | None = None) -> list[Node]: ...
    def node_load(self, node_ids: Sequence[str] | None = None) -> list[NodeLoad]: ...
    def set_node_status(self, node_id: str, status: NodeStatus) -> Node: ...
    def set_backlog(self, node_id: str, backlog: int) -> Node: ...
    def set_daily_capacity(self, node_id: str, daily_capacity: int) -> Node: ...

    def inventory(
        self, *, node_ids: Sequence[str] | None = None, skus: Sequence[str] | None = None
    ) -> list[InventoryPosition]: ...

    def atp(self, skus: Sequence[str], node_ids: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """Available to promise: ``{sku: {node_id: atp}}``, only nodes that stock the SKU."""
        ...

    def adjust_on_hand(self, node_id: str, sku: str, delta: int) -> InventoryPosition:
        """Receive (delta > 0) or write off (delta < 0) stock; never below the reserved quantity."""
        ...

    def transfer_on_hand(self, from_node_id: str, to_node_id: str, sku: str, units: int) -> list[InventoryPosition]:
        """Move ``units`` of stock between nodes in one transaction (both legs or neither); never
        below the source's reserved quantity. Returns the source's and destination's positions."""
        ...


class Carriers(Protocol):
    """Carriers, their services, rates, ETAs and shipments."""

    def list_carriers(self) -> list[Carrier]: ...
    def get_carrier(self, carrier_id: str) -> Carrier: ...
    def list_services(
        self, *, carrier_id: str | None = None, level: ServiceLevel | None = None
    ) -> list[CarrierService]: ...
    def get_service(self, carrier_service_id: str) -> CarrierService: ...
    def rate_cards(self) -> dict[str, dict[int, Rate]]:
        """``{carrier_service_id: {zone: Rate}}`` for every service: the whole tariff in one read."""
        ...

    def set_carrier_status(
        self, carrier_id: str, status: CarrierStatus, *, outage_states: Sequence[str] = ()
    ) -> Carrier: ...

    def quote(self, carrier_service_id: str, *, node_id: str, ship_to_id: str, weight_kg: float) -> RateQuote:
        """Cost, zone, ship date (node backlog pushes it) and ETA (carrier outage delays it)."""
        ...

    def quotes(self, *, node_id: str, ship_to_id: str, weight_kg: float) -> list[RateQuote]:
        """Quotes of every service, cheapest first; unavailable ones flagged with a reason."""
        ...

    def create_shipments(self, order_ids: Sequence[str]) -> list[Shipment]:
        """A shipment for each order from its node with its carrier service (idempotent per order)."""
        ...

    def shipments(self, order_ids: Sequence[str]) -> list[Shipment]: ...
    def tracking(self, shipment_id: str) -> list[TrackingEvent]: ...


class Notification(BaseModel):
    """A message to one customer about some of their orders."""

    customer_id: str
    order_ids: list[str]
    subject: str = Field(max_length=300)
    body: str = Field(max_length=5000)
    channel: str = "email"


class Notifier(Protocol):
    """Customer communication: queue messages for delivery (email, EDI, portal)."""

    def queue(self, notifications: Sequence[Notification], *, key: str) -> list[str]:
        """Queue messages; returns their ids. The same ``key`` again queues nothing new."""
        ...

    def queued(self, *, customer_id: str | None = None, limit: int = 100) -> list[dict[str, object]]: ...


@dataclass(frozen=True)
class Adapters:
    """The systems OrderOps acts on, as one value to inject."""

    oms: OMS
    wms: WMS
    carriers: Carriers
    notifier: Notifier
