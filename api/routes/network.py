"""Read-only views of the network for viewers: nodes with their load, orders, one order.

These read the adapters directly, not through the gateway: they are a person's screens, not
agent tool calls, and carry no policy facts (the audit trail records decisions, not page views).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import Ctx, Viewer
from api.problems import PROBLEM_RESPONSES, problem_responses
from core.domain import Node, NodeLoad, NodeStatus, Order, OrderStatus, Shipment
from tools.adapters.protocols import OrderFilter

router = APIRouter(prefix="/v1", tags=["network"], responses=PROBLEM_RESPONSES)

Ident = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class NodeView(BaseModel):
    node: Node
    load: NodeLoad | None


class NodeList(BaseModel):
    nodes: list[NodeView]


class OrderPage(BaseModel):
    total: int = Field(description="Orders matching the filters (all pages).")
    limit: int
    offset: int
    orders: list[Order]


class OrderView(BaseModel):
    order: Order
    shipments: list[Shipment]


@router.get("/nodes", response_model=NodeList, summary="Fulfillment nodes with their load")
def list_nodes(
    ctx: Ctx,
    _user: Viewer,
    status: Annotated[list[NodeStatus] | None, Query(description="Only nodes in these statuses.")] = None,
) -> NodeList:
    wms = ctx.adapters.wms
    nodes = wms.list_nodes(statuses=status or None)
    loads = {ld.node_id: ld for ld in wms.node_load([n.id for n in nodes])} if nodes else {}
    return NodeList(nodes=[NodeView(node=n, load=loads.get(n.id)) for n in nodes])


@router.get("/orders", response_model=OrderPage, summary="Orders matching filters, oldest first")
def list_orders(
    ctx: Ctx,
    _user: Viewer,
    node: Annotated[list[Ident] | None, Query(description="Node id (repeatable).")] = None,
    status: Annotated[list[OrderStatus] | None, Query(description="Status (repeatable).")] = None,
    customer: Annotated[list[Ident] | None, Query(description="Customer id (repeatable).")] = None,
    promised_by: Annotated[date | None, Query(description="Promised on or before this date.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> OrderPage:
    flt = OrderFilter(
        node_ids=node or None,
        statuses=status or None,
        customer_ids=customer or None,
        promised_on_or_before=promised_by,
    )
    oms = ctx.adapters.oms
    return OrderPage(
        total=oms.count_orders(flt), limit=limit, offset=offset, orders=oms.list_orders(flt, limit=limit, offset=offset)
    )


@router.get(
    "/orders/{order_id}",
    response_model=OrderView,
    summary="One order with its lines and shipments",
    responses=problem_responses(404),
)
def get_order(
    ctx: Ctx, _user: Viewer, order_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
) -> OrderView:
    order = ctx.adapters.oms.get_order(order_id)
    return OrderView(order=order, shipments=ctx.adapters.carriers.shipments([order.id]))
