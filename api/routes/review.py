"""The intake review queue over HTTP: the items, one item, and creating a new buyer's customer.

Thin: every action is a :class:`intake.review.ReviewQueue` method, the one the CLI
(``orderops review ...``) and the console call, so the same gateway, policy, roles and audit apply.
Creating a customer needs the operator or approver role to ask; policy (rule ``new-customer``)
then wants an approver — a caller holding that role completes it in the same request, anyone else
leaves the item ``awaiting_approval`` for one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role
from api.bootstrap import AppContext, make_document_store
from api.deps import Ctx, Viewer, require
from api.inputs import Text
from api.problems import PROBLEM_RESPONSES, problem_responses
from intake.pipeline import IntakeDeps
from intake.review import ReviewItem, ReviewQueue, ReviewStatus

router = APIRouter(prefix="/v1/review", tags=["review"], responses=PROBLEM_RESPONSES)

ItemId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Reviewer = Annotated[Principal, require(Role.OPERATOR, Role.APPROVER)]


def _queue(ctx: AppContext) -> ReviewQueue:
    deps = IntakeDeps(db=ctx.db, clock=ctx.clock, documents=make_document_store(ctx), gateway=ctx.gateway)
    return deps.review_queue()


class ReviewSummary(BaseModel):
    id: str
    kind: str
    status: str
    customer_id: str | None
    po_number: str | None
    reasons: list[str]
    new_customer_id: str | None = Field(description="The customer a new-customer item proposes to create.")


class ReviewList(BaseModel):
    items: list[ReviewSummary]


class NewCustomerIn(BaseModel):
    """Changes to the proposed customer before it is created (none: create it as proposed)."""

    model_config = ConfigDict(extra="forbid")

    edits: dict[Annotated[Text, Field(max_length=120)], Annotated[Text, Field(max_length=300)]] = Field(
        default_factory=dict,
        max_length=100,
        description="FIELD -> VALUE: name, account_number, email, email_domain, edi_id, gln, tier, price_list_id, "
        "ship_to.<street|city|state|postal_code|name|label>, parts.<their part number> (SKU; empty drops it).",
    )


@router.get("", response_model=ReviewList, summary="Review items, oldest first")
def list_items(
    ctx: Ctx,
    _user: Viewer,
    status: Annotated[ReviewStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReviewList:
    items = _queue(ctx).list(status, limit=limit)
    return ReviewList(
        items=[
            ReviewSummary(
                id=i.id,
                kind=i.kind,
                status=i.status,
                customer_id=i.customer_id,
                po_number=i.po_number,
                reasons=i.reasons,
                new_customer_id=i.validated.new_customer.customer_id
                if i.validated.new_customer is not None and i.validated.customer_id is None
                else None,
            )
            for i in items
        ]
    )


@router.get("/{item_id}", response_model=ReviewItem, summary="One review item", responses=problem_responses(404))
def get_item(ctx: Ctx, _user: Viewer, item_id: ItemId) -> ReviewItem:
    """The order as extracted (with source pointers), as validated (confidences, findings), the reasons
    it is here and, for a new buyer, the customer it proposes (``validated.new_customer``)."""
    return _queue(ctx).get(item_id)


@router.post(
    "/{item_id}/customer",
    response_model=ReviewItem,
    summary="Create a new buyer's customer, ship-to and part cross-references",
    responses=problem_responses(404, 409),
)
def create_customer(ctx: Ctx, user: Reviewer, item_id: ItemId, body: NewCustomerIn) -> ReviewItem:
    """One ``create_customer`` call through the tool gateway (policy, approval, audit), then the PO is
    validated again: a clean PO becomes an order (``status`` ``approved``); one that still has doubts
    stays ``open``; ``awaiting_approval`` when policy wants an approver the caller is not."""
    return _queue(ctx).create_customer(item_id, user.actor(), edits=body.edits)
