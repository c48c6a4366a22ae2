"""Order risk against the database: a customer's profile as it stood at a moment, and a new order's score.

:class:`core.risk.RiskScorer` judges one order against a customer profile; this module builds that
profile from the stored orders: the customer's last :data:`HISTORY_ORDERS` orders before the moment
(values, ship-tos, pace), the states of the account's registered addresses and its e-mail domain
(master data). Stored orders (``services.order_risk``) and orders about to be created (intake's
decision) are scored by the same code, so a held PO and ``orderops orders where`` tell one story.

What this module must never do: write anything, or let a later order change an earlier order's score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.engine import Database
from core.db.tables import AddressRow, CustomerRow, OrderRow
from core.risk import HOLD_THRESHOLD, OrderFacts, RiskScore, RiskScorer

HISTORY_ORDERS = 200
_EPOCH = datetime(2000, 1, 1)


def hours(at: datetime) -> float:
    """``at`` on the scorer's monotonic hour scale (naive times are UTC, as the database keeps them)."""
    naive = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
    return (naive - _EPOCH).total_seconds() / 3600.0


def profile_scorer(
    session: Session,
    customer: str,
    *,
    before: datetime,
    exclude_order: str | None = None,
    threshold: float = HOLD_THRESHOLD,
    with_domain: bool = False,
) -> RiskScorer:
    """A scorer that has seen the customer's orders placed before ``before`` (at most the last
    :data:`HISTORY_ORDERS`), and knows the account's states (and, ``with_domain``, its e-mail domain)."""
    naive = before.astimezone(UTC).replace(tzinfo=None) if before.tzinfo is not None else before
    states = set(session.scalars(select(AddressRow.state).where(AddressRow.customer_id == customer)))
    domains: set[str] = set()
    if with_domain:
        domain = session.scalar(select(CustomerRow.email_domain).where(CustomerRow.id == customer))
        domains = {domain.lower()} if domain else set()
    q = (
        select(OrderRow.ship_to_id, OrderRow.total_value, OrderRow.created_at, AddressRow.state)
        .join(AddressRow, AddressRow.id == OrderRow.ship_to_id)
        .where(OrderRow.customer_id == customer, OrderRow.created_at < naive)
        .order_by(OrderRow.created_at.desc())
        .limit(HISTORY_ORDERS)
    )
    if exclude_order is not None:
        q = q.where(OrderRow.id != exclude_order)
    scorer = RiskScorer(threshold)
    scorer.know(customer, ship_tos=set(), states=states, domains=domains)
    for p_ship, p_value, p_at, p_state in reversed(session.execute(q).all()):
        facts = OrderFacts(customer, p_ship, p_state, None, float(p_value), hours(p_at))
        scorer.score(facts)  # counts toward the pace the order is judged by
        scorer.observe(facts)
    return scorer


@dataclass(frozen=True)
class NewOrder:
    """An order about to be created: who, where to (None: the account's first address), what it is worth."""

    customer_id: str
    ship_to_id: str | None
    value: Decimal
    at: datetime
    email_domain: str | None = None


def score_new_order(db: Database, order: NewOrder, *, threshold: float = HOLD_THRESHOLD) -> RiskScore | None:
    """The risk of creating ``order`` now; None when its customer or ship-to is not in the database
    (the OMS will refuse it anyway, and that refusal is the clearer reason)."""
    with db.sessions() as session:
        q = select(AddressRow.id, AddressRow.state).where(AddressRow.customer_id == order.customer_id)
        if order.ship_to_id is not None:
            q = select(AddressRow.id, AddressRow.state).where(AddressRow.id == order.ship_to_id)
        row = session.execute(q.order_by(AddressRow.id).limit(1)).first()
        if row is None:
            return None
        ship_to, state = row
        scorer = profile_scorer(session, order.customer_id, before=order.at, threshold=threshold,
                                with_domain=order.email_domain is not None)  # fmt: skip
    domain = order.email_domain.lower() if order.email_domain else None
    return scorer.score(OrderFacts(order.customer_id, ship_to, state, domain, float(order.value), hours(order.at)))
