"""Domain model of the fulfillment network: pydantic schemas and the rules that need no database.

These are the shapes that cross layers (adapters return them, tools take and give them, the API
serialises them). The database tables live apart in :mod:`core.db.tables`. The order lifecycle is
defined here once; every status change in the project goes through :func:`check_transition`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, computed_field

from core.errors import InvalidTransition

PositiveQty = Annotated[int, Field(gt=0, description="Units in the SKU's base unit of measure; > 0.")]


class CustomerTier(StrEnum):
    PLATINUM = "platinum"
    GOLD = "gold"
    SILVER = "silver"
    STANDARD = "standard"


class NodeType(StrEnum):
    DC = "dc"
    STORE = "store"
    DROPSHIP = "dropship"


class NodeStatus(StrEnum):
    OPEN = "open"
    CONGESTED = "congested"
    CLOSED = "closed"


class CarrierStatus(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    OUTAGE = "outage"


class ServiceLevel(StrEnum):
    GROUND = "ground"
    TWO_DAY = "two_day"
    OVERNIGHT = "overnight"


class OrderStatus(StrEnum):
    CREATED = "created"
    ALLOCATED = "allocated"
    RELEASED = "released"
    PICKED = "picked"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    HELD = "held"
    CANCELLED = "cancelled"


class ShipmentStatus(StrEnum):
    PLANNED = "planned"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    CANCELLED = "cancelled"


# The lifecycle. ``held`` returns to the status the order was held from (checked separately).
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.ALLOCATED, OrderStatus.HELD, OrderStatus.CANCELLED}),
    OrderStatus.ALLOCATED: frozenset(
        {OrderStatus.RELEASED, OrderStatus.CREATED, OrderStatus.HELD, OrderStatus.CANCELLED}
    ),
    OrderStatus.RELEASED: frozenset({OrderStatus.PICKED, OrderStatus.HELD, OrderStatus.CANCELLED}),
    OrderStatus.PICKED: frozenset({OrderStatus.SHIPPED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.HELD: frozenset(
        {OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.CANCELLED}
    ),
    OrderStatus.CANCELLED: frozenset(),
}

# Orders in these statuses hold a reservation at their node.
RESERVING_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.PICKED}
)
# Orders that can still be moved to another node: not yet released to the warehouse floor.
REROUTABLE_STATUSES: frozenset[OrderStatus] = frozenset({OrderStatus.CREATED, OrderStatus.ALLOCATED})
OPEN_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.PICKED, OrderStatus.HELD}
)


def check_transition(
    order_id: str, current: OrderStatus, target: OrderStatus, held_from: OrderStatus | None = None
) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed.

    A held order may only go back to the status it was held from (or be cancelled): releasing a
    hold must not skip allocation.
    """
    allowed = ORDER_TRANSITIONS[current]
    if target not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none (final status)"
        raise InvalidTransition(
            f"order {order_id} cannot go from {current.value} to {target.value}; allowed: {names}",
            order_id=order_id,
            current=current.value,
            target=target.value,
        )
    if current is OrderStatus.HELD and target is not OrderStatus.CANCELLED and held_from not in (None, target):
        raise InvalidTransition(
            f"order {order_id} was held from {held_from.value if held_from else '?'}; "
            f"releasing the hold returns it there, not to {target.value}",
            order_id=order_id,
            current=current.value,
            target=target.value,
        )


class Schema(BaseModel):
    """Base for domain schemas: built from ORM rows by attribute, immutable once built."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class Address(Schema):
    id: str
    customer_id: str
    label: str
    name: str
    street: str
    city: str
    state: str
    postal_code: str
    country: str = "US"
    lat: float
    lon: float


class Customer(Schema):
    id: str
    name: str
    account_number: str
    tier: CustomerTier
    email: str
    email_domain: str
    edi_id: str | None = None
    gln: str | None = None
    price_list_id: str


class UnitOfMeasure(Schema):
    sku: str
    uom: str
    qty_in_base: int


class Product(Schema):
    sku: str
    name: str
    description: str
    weight_kg: float
    length_cm: float
    width_cm: float
    height_cm: float
    hazmat: bool
    cold_chain: bool
    base_uom: str = "EA"
    list_price: Decimal


class PriceListItem(Schema):
    price_list_id: str
    sku: str
    unit_price: Decimal


class Node(Schema):
    id: str
    name: str
    type: NodeType
    city: str
    state: str
    lat: float
    lon: float
    daily_capacity: int
    backlog: int
    cutoff_hour: int
    status: NodeStatus
    pick_pack_cost: Decimal

    @computed_field  # type: ignore[prop-decorator]
    @property
    def backlog_days(self) -> float:
        """How many days of work are queued: what pushes ship dates out."""
        return self.backlog / self.daily_capacity if self.daily_capacity else float("inf")


class InventoryPosition(Schema):
    node_id: str
    sku: str
    on_hand: int
    reserved: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def atp(self) -> int:
        """Available to promise: what can still be reserved."""
        return self.on_hand - self.reserved


class Carrier(Schema):
    id: str
    name: str
    status: CarrierStatus
    on_time_rate: float
    outage_states: tuple[str, ...] = ()


class CarrierService(Schema):
    id: str
    carrier_id: str
    level: ServiceLevel
    name: str
    transit_days_by_zone: tuple[int, ...]
    air: bool


class OrderLine(Schema):
    line_no: int
    sku: str
    quantity: int
    unit_price: Decimal


class Order(Schema):
    id: str
    customer_id: str
    external_ref: str | None
    ship_to_id: str
    status: OrderStatus
    held_from: OrderStatus | None = None
    node_id: str | None
    carrier_service_id: str | None
    service_level: ServiceLevel
    promised_date: date
    created_at: datetime
    total_value: Decimal
    total_units: int = 0
    weight_kg: float = 0.0
    version: int
    lines: tuple[OrderLine, ...] = ()


class OrderLineIn(BaseModel):
    """One requested line of a new order."""

    sku: str = Field(min_length=1)
    quantity: PositiveQty
    unit_price: Decimal | None = Field(default=None, ge=0, description="Default: the customer's price list.")


class OrderCreate(BaseModel):
    """A new order as the OMS accepts it."""

    customer_id: str = Field(min_length=1)
    ship_to_id: str | None = Field(default=None, description="Default: the customer's first address.")
    external_ref: str | None = None
    service_level: ServiceLevel = ServiceLevel.GROUND
    promised_date: date | None = None
    lines: list[OrderLineIn] = Field(min_length=1)


class Shipment(Schema):
    id: str
    order_id: str
    node_id: str
    carrier_service_id: str
    tracking_number: str
    status: ShipmentStatus
    ship_date: date
    eta: date


class TrackingEvent(Schema):
    shipment_id: str
    at: datetime
    status: ShipmentStatus
    location: str
    note: str = ""


class NodeLoad(Schema):
    """A node's load as an operator reads it on the network screen."""

    node_id: str
    status: NodeStatus
    daily_capacity: int
    backlog: int
    open_orders: int
    unreleased_orders: int
    backlog_days: float
    utilisation: float


class MoveResult(BaseModel):
    """Outcome of moving a batch of orders to another node."""

    moved: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict, description="order id -> reason it was not moved")
    units_moved: int = 0
