"""Where is my order over HTTP: ``GET /v1/orders/where?q=ORD-123|PO`` (issue 18, item 7).

A viewer's read, like the other network views; the answer is :func:`services.wismo.where_is`'s,
the same the CLI (``orderops orders where``) and Slack (``/orderops where``) give. An unknown
reference is a 404 problem; nothing is written.

Its router is included before :mod:`api.routes.network`, whose ``/v1/orders/{order_id}`` would
otherwise take ``where`` for an order id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Ctx, Viewer
from api.problems import PROBLEM_RESPONSES, problem_responses
from services.wismo import Whereabouts, where_is

router = APIRouter(prefix="/v1", tags=["network"], responses=PROBLEM_RESPONSES)


class WhereAnswer(BaseModel):
    ref: str
    orders: list[Whereabouts]


@router.get(
    "/orders/where",
    response_model=WhereAnswer,
    summary="Where is my order: by order id or PO number",
    responses=problem_responses(404),
)
def get_where(
    ctx: Ctx,
    _user: Viewer,
    q: Annotated[
        str,
        Query(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$", description="Order id or PO number."),
    ],
) -> WhereAnswer:
    found = where_is(q, db=ctx.db, adapters=ctx.adapters, clock=ctx.twin_clock, audit=ctx.guard.audit)
    return WhereAnswer(ref=q, orders=found)
