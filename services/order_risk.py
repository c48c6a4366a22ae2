"""Order risk on the twin: an order scored against its customer's earlier orders (issue 18, item 5).

:class:`core.risk.RiskScorer` judges one order against a customer profile; this module builds that
profile from the database as it stood when the order was created: the customer's last
:data:`HISTORY_ORDERS` orders before it (values, ship-tos, pace) and the states of the account's
registered addresses (master data). An order placed from another contact domain than the account's
is only known at intake, so a stored order is judged without that reason.

What this module must never do: write anything, or let a later order change an earlier order's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from core.db import Database
from core.db.tables import AddressRow, OrderRow
from core.risk import OrderFacts, RiskScore, RiskScorer

HISTORY_ORDERS = 200
_EPOCH = datetime(2000, 1, 1)


def _hours(at: datetime) -> float:
    return (at.replace(tzinfo=None) - _EPOCH).total_seconds() / 3600.0


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
            states = set(session.scalars(select(AddressRow.state).where(AddressRow.customer_id == customer)))
            prior = session.execute(
                select(OrderRow.ship_to_id, OrderRow.total_value, OrderRow.created_at, AddressRow.state)
                .join(AddressRow, AddressRow.id == OrderRow.ship_to_id)
                .where(OrderRow.customer_id == customer, OrderRow.created_at < created, OrderRow.id != oid)
                .order_by(OrderRow.created_at.desc())
                .limit(HISTORY_ORDERS)
            ).all()
            scorer = RiskScorer()
            scorer.know(customer, ship_tos=set(), states=states, domains=set())
            for p_ship, p_value, p_at, p_state in reversed(prior):
                facts = OrderFacts(customer, p_ship, p_state, None, float(p_value), _hours(p_at))
                scorer.score(facts)  # counts toward the pace the order is judged by
                scorer.observe(facts)
            out[oid] = scorer.score(OrderFacts(customer, ship_to, state, None, float(value), _hours(created)))
    return out
