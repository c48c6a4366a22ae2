"""Read tools: how an agent gathers facts. They change nothing, so policy allows them by default,
but they are still called through the gateway so every read is in the audit trail.

Results are bounded (``limit``) and summarised: an agent asking about 40,000 orders gets counts
and the first page, not 40,000 rows in its context.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, Field

from core.domain import (
    Carrier,
    CarrierService,
    InventoryPosition,
    NodeLoad,
    Order,
    OrderStatus,
    ServiceLevel,
    Shipment,
    TrackingEvent,
)
from tools.adapters.protocols import OrderFilter, RateQuote
from tools.base import ReadTool, ToolArgs, ToolEnv


class GetOrdersArgs(ToolArgs):
    order_ids: list[str] = Field(min_length=1, max_length=500)


class OrdersResult(BaseModel):
    total: int
    orders: list[Order]


class GetOrders(ReadTool[GetOrdersArgs, OrdersResult]):
    """Get orders by id, with their lines."""

    name: ClassVar[str] = "get_orders"
    args_model: ClassVar[type[ToolArgs]] = GetOrdersArgs

    def run(self, env: ToolEnv, args: GetOrdersArgs) -> OrdersResult:
        orders = env.adapters.oms.get_orders(args.order_ids)
        return OrdersResult(total=len(orders), orders=orders)


class SearchOrdersArgs(ToolArgs):
    node_ids: list[str] | None = Field(default=None, description="Fulfilment nodes, e.g. DC-NEWARK.")
    statuses: list[OrderStatus] | None = None
    customer_ids: list[str] | None = None
    service_levels: list[ServiceLevel] | None = None
    skus: list[str] | None = Field(default=None, description="Orders with a line of one of these SKUs.")
    carrier_service_ids: list[str] | None = Field(default=None, description="Orders booked on these services.")
    promised_on_or_before: date | None = Field(default=None, description="SLA window end (YYYY-MM-DD).")
    promised_on_or_after: date | None = None
    min_value: Decimal | None = Field(default=None, ge=0)
    max_value: Decimal | None = Field(default=None, ge=0)
    limit: int = Field(default=100, ge=1, le=100_000, description="Orders to return; the total is always counted.")
    with_lines: bool = False

    def to_filter(self) -> OrderFilter:
        return OrderFilter(
            node_ids=self.node_ids,
            statuses=self.statuses,
            customer_ids=self.customer_ids,
            service_levels=self.service_levels,
            skus=self.skus,
            carrier_service_ids=self.carrier_service_ids,
            promised_on_or_before=self.promised_on_or_before,
            promised_on_or_after=self.promised_on_or_after,
            min_value=self.min_value,
            max_value=self.max_value,
        )


class SearchResult(BaseModel):
    total: int
    by_status: dict[str, int]
    orders: list[Order]
    truncated: bool


class SearchOrders(ReadTool[SearchOrdersArgs, SearchResult]):
    """Find orders by node, status, customer, service level, SKU, promise-date window or value.
    Returns the total count, counts by status and up to `limit` orders (oldest first)."""

    name: ClassVar[str] = "search_orders"
    args_model: ClassVar[type[ToolArgs]] = SearchOrdersArgs

    def run(self, env: ToolEnv, args: SearchOrdersArgs) -> SearchResult:
        flt = args.to_filter()
        oms = env.adapters.oms
        by_status = {k.value: v for k, v in oms.count_by_status(flt).items()}
        total = sum(by_status.values())
        orders = oms.list_orders(flt, limit=args.limit, with_lines=args.with_lines)
        return SearchResult(total=total, by_status=by_status, orders=orders, truncated=total > len(orders))


class NodeLoadArgs(ToolArgs):
    node_ids: list[str] | None = Field(default=None, description="Nodes to report; default all.")


class NodeLoadResult(BaseModel):
    nodes: list[NodeLoad]


class GetNodeLoad(ReadTool[NodeLoadArgs, NodeLoadResult]):
    """Load of fulfilment nodes: status (open/congested/closed), daily capacity, backlog, backlog in
    days, open and unreleased orders."""

    name: ClassVar[str] = "get_node_load"
    args_model: ClassVar[type[ToolArgs]] = NodeLoadArgs

    def run(self, env: ToolEnv, args: NodeLoadArgs) -> NodeLoadResult:
        return NodeLoadResult(nodes=env.adapters.wms.node_load(args.node_ids))


class InventoryArgs(ToolArgs):
    skus: list[str] = Field(min_length=1, max_length=1000)
    node_ids: list[str] | None = None


class InventoryResult(BaseModel):
    atp: dict[str, dict[str, int]] = Field(description="sku -> node -> available to promise")
    positions: list[InventoryPosition]


class GetInventory(ReadTool[InventoryArgs, InventoryResult]):
    """On hand, reserved and available-to-promise (ATP) stock of SKUs across nodes."""

    name: ClassVar[str] = "get_inventory"
    args_model: ClassVar[type[ToolArgs]] = InventoryArgs

    def run(self, env: ToolEnv, args: InventoryArgs) -> InventoryResult:
        wms = env.adapters.wms
        return InventoryResult(
            atp=wms.atp(args.skus, args.node_ids), positions=wms.inventory(node_ids=args.node_ids, skus=args.skus)
        )


class CarrierStatusArgs(ToolArgs):
    carrier_ids: list[str] | None = None


class CarrierStatusResult(BaseModel):
    carriers: list[Carrier]
    services: list[CarrierService]


class GetCarrierStatus(ReadTool[CarrierStatusArgs, CarrierStatusResult]):
    """Carriers with status (operational/degraded/outage), outage states and on-time rate, and their services."""

    name: ClassVar[str] = "get_carrier_status"
    args_model: ClassVar[type[ToolArgs]] = CarrierStatusArgs

    def run(self, env: ToolEnv, args: CarrierStatusArgs) -> CarrierStatusResult:
        c = env.adapters.carriers
        carriers = [x for x in c.list_carriers() if not args.carrier_ids or x.id in args.carrier_ids]
        ids = {x.id for x in carriers}
        return CarrierStatusResult(carriers=carriers, services=[s for s in c.list_services() if s.carrier_id in ids])


class QuoteArgs(ToolArgs):
    order_id: str = Field(min_length=1)
    node_id: str | None = Field(default=None, description="Ship from this node; default the order's node.")


class QuoteResult(BaseModel):
    order_id: str
    node_id: str
    promised_date: date
    quotes: list[RateQuote]


class GetRateQuotes(ReadTool[QuoteArgs, QuoteResult]):
    """Rate quotes and ETA estimates of every carrier service for one order from a node, cheapest
    first; unavailable services (outage) are flagged with the reason."""

    name: ClassVar[str] = "get_rate_quotes"
    args_model: ClassVar[type[ToolArgs]] = QuoteArgs

    def run(self, env: ToolEnv, args: QuoteArgs) -> QuoteResult:
        order = env.adapters.oms.get_order(args.order_id)
        node_id = args.node_id or order.node_id
        if node_id is None:
            from core.errors import ValidationFailed

            raise ValidationFailed(f"order {order.id} has no node yet; name node_id")
        quotes = env.adapters.carriers.quotes(node_id=node_id, ship_to_id=order.ship_to_id, weight_kg=order.weight_kg)
        return QuoteResult(order_id=order.id, node_id=node_id, promised_date=order.promised_date, quotes=quotes)


class TrackingArgs(ToolArgs):
    order_ids: list[str] = Field(min_length=1, max_length=500)


class TrackingResult(BaseModel):
    shipments: list[Shipment]
    events: dict[str, list[TrackingEvent]]


class GetTracking(ReadTool[TrackingArgs, TrackingResult]):
    """Shipments of orders and their tracking events."""

    name: ClassVar[str] = "get_tracking"
    args_model: ClassVar[type[ToolArgs]] = TrackingArgs

    def run(self, env: ToolEnv, args: TrackingArgs) -> TrackingResult:
        shipments = env.adapters.carriers.shipments(args.order_ids)
        return TrackingResult(
            shipments=shipments, events={s.id: env.adapters.carriers.tracking(s.id) for s in shipments}
        )


READ_TOOLS: tuple[ReadTool[ToolArgs, BaseModel], ...] = (  # type: ignore[assignment]
    GetOrders(),
    SearchOrders(),
    GetNodeLoad(),
    GetInventory(),
    GetCarrierStatus(),
    GetRateQuotes(),
    GetTracking(),
)
