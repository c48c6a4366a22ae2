"""Order risk on the twin: an ordinary order scores low; the same order grown far past its customer's
usual values (netgen's spread widely, so it takes a large factor), or shipped to another account's
address in a state the account has no site in, is held."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, update

from core.db import Database
from core.db.tables import AddressRow, OrderRow
from core.netgen import NetworkSpec, generate_network
from core.risk import RiskReason
from services.order_risk import score_orders

SPEC = NetworkSpec(seed=11, nodes=4, skus=60, customers=3, orders=600)


def _busiest_customers_last_order(db: Database) -> tuple[str, str]:
    with db.sessions() as s:
        customer = s.execute(
            select(OrderRow.customer_id).group_by(OrderRow.customer_id).order_by(func.count().desc()).limit(1)
        ).scalar_one()
        order = s.execute(
            select(OrderRow.id).where(OrderRow.customer_id == customer).order_by(OrderRow.created_at.desc()).limit(1)
        ).scalar_one()
    return customer, order


def test_an_ordinary_order_is_not_held_and_a_scaled_up_one_is(sqlite_db: Database) -> None:
    generate_network(sqlite_db, SPEC)
    _customer, oid = _busiest_customers_last_order(sqlite_db)
    before = score_orders(sqlite_db, [oid, "ORD-NOPE"])
    assert set(before) == {oid}
    assert not before[oid].hold
    with sqlite_db.engine.begin() as conn:
        value = conn.execute(select(OrderRow.total_value).where(OrderRow.id == oid)).scalar_one()
        conn.execute(update(OrderRow).where(OrderRow.id == oid).values(total_value=Decimal(value) * 2000))
    after = score_orders(sqlite_db, [oid])[oid]
    assert after.hold
    assert RiskReason.VALUE_FAR_ABOVE_HISTORY in {r for r, _ in after.reasons}


def test_a_ship_to_outside_the_accounts_states_is_a_reason(sqlite_db: Database) -> None:
    generate_network(sqlite_db, SPEC)
    customer, oid = _busiest_customers_last_order(sqlite_db)
    with sqlite_db.engine.begin() as conn:
        mine = set(conn.scalars(select(AddressRow.state).where(AddressRow.customer_id == customer)))
        elsewhere = conn.execute(
            select(AddressRow.id).where(AddressRow.customer_id != customer, AddressRow.state.not_in(mine)).limit(1)
        ).scalar_one()
        conn.execute(update(OrderRow).where(OrderRow.id == oid).values(ship_to_id=elsewhere))
    score = score_orders(sqlite_db, [oid])[oid]
    assert {RiskReason.NEW_SHIP_TO, RiskReason.ADDRESS_MISMATCH} <= {r for r, _ in score.reasons}
    assert score.hold
