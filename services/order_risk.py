"""Order risk on the twin: an order scored against its customer's earlier orders (issue 18, item 5).

:class:`core.risk.RiskScorer` judges one order against a customer profile; the profile is built from
the database as it stood when the order was created (:func:`core.db.order_risk.profile_scorer`, the
same code intake's decision scores a new PO with): the customer's last orders before it (values,
ship-tos, pace) and the states of the account's registered addresses (master data). An order placed
from another contact domain than the account's is only known at intake, so a stored order is judged
without that reason.

What this module must never do: write anything, or let a later order change an earlier order's score.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from core.db import Database
from core.db.order_risk import HISTORY_ORDERS, hours, profile_scorer
from core.db.tables import AddressRow, OrderRow
from core.risk import OrderFacts, RiskScore

__all__ = ["HISTORY_ORDERS", "score_orders"]


def score_orders(db: Database, order_ids: Sequence[str]) -> dict[str, RiskScore]:
    """The risk score of each order in ``order_ids`` that exists (others are left out)."""
    out: dict[str, RiskScore] = {}
    with db.sessions() as session:
        orders = session.execute(
            select(OrderRow.id, OrderRow.customer_id, OrderRow.ship_to_id, OrderRow.total_value, OrderRow.created_at,
                   AddressRow.state)
            .join(AddressRow, AddressRow.id == OrderRow.ship_to_id)
            .where(OrderRow.id.in_(list(order_ids)))
        ).all()  # fmt: skip
        for oid, customer, ship_to, value, created, state in orders:
            scorer = profile_scorer(session, customer, before=created, exclude_order=oid)
            out[oid] = scorer.score(OrderFacts(customer, ship_to, state, None, float(value), hours(created)))
    return out
