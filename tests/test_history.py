"""The history generator: seeded, on the twin's own ids, with its incidents really in the series."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from core.db import Database
from core.db.tables import InventoryRow, NodeRow, ProductRow
from core.errors import ValidationFailed
from core.history import IncidentKind, RiskCase, generate_history
from core.netgen import NetworkSpec, generate_network

SMALL = NetworkSpec(seed=7, nodes=4, skus=40, customers=5, orders=300)


def test_same_seed_same_history_other_seed_other_history() -> None:
    a, b, c = generate_history(3, 60, SMALL), generate_history(3, 60, SMALL), generate_history(4, 60, SMALL)
    assert np.array_equal(a.demand, b.demand)
    assert a.incidents == b.incidents
    assert a.orders == b.orders
    assert not np.array_equal(a.demand, c.demand)


def test_ids_and_stock_plan_are_the_twins(sqlite_db: Database) -> None:
    generate_network(sqlite_db, SMALL)
    h = generate_history(1, 60, SMALL)
    with sqlite_db.engine.connect() as conn:
        nodes = set(conn.scalars(select(NodeRow.id)))
        skus = set(conn.scalars(select(ProductRow.sku)))
        stocked = {(r[0], r[1]) for r in conn.execute(select(InventoryRow.node_id, InventoryRow.sku))}
    assert set(h.nodes) == nodes
    assert set(h.skus) == skus
    assert {(h.nodes[n], h.skus[s]) for n, s in zip(*np.nonzero(h.stocked), strict=True)} == stocked
    assert h.dates[-1] < SMALL.business_date


def test_incidents_show_in_their_series() -> None:
    h = generate_history(5, 180)
    kinds = {i.kind for i in h.incidents}
    assert kinds == set(IncidentKind)
    for inc in h.incidents:
        span = slice(inc.start_day, inc.end_day + 1)
        before = slice(inc.start_day - 14, inc.start_day)
        if inc.kind is IncidentKind.NODE_CONGESTION:
            k = h.node_index(inc.node or "")
            assert h.node_capacity[span, k].mean() < 0.75 * h.node_capacity[before, k].mean()
        elif inc.kind is IncidentKind.CARRIER_OUTAGE:
            k = h.lane_index(inc.carrier or "", inc.region or "")
            assert h.lane_on_time_rate[span, k].mean() < h.lane_on_time_rate[before, k].mean() - 0.1
        elif inc.kind is IncidentKind.DEMAND_SPIKE:
            s = h.sku_index(inc.sku or "")
            assert h.demand[span, :, s].sum(axis=1).mean() > 1.8 * h.demand[before, :, s].sum(axis=1).mean()
        elif inc.kind is IncidentKind.SUPPLIER_DELAY:
            k = h.node_index(inc.node or "")
            assert h.inbound_overdue[span, k].max() > h.inbound_overdue[before, k].max()
        else:
            k = h.node_index(inc.node or "")
            assert h.shrink[inc.end_day, k] > h.shrink[before, k].max()


def test_clean_history_has_no_incidents_and_weekly_demand() -> None:
    h = generate_history(2, 91, incidents=False, risky_orders=False)
    assert h.incidents == ()
    assert not any(o.risk_case for o in h.orders)
    total = h.demand.sum(axis=(1, 2))
    weekday = np.array([d.weekday() for d in h.dates])
    assert total[weekday == 0].mean() > 2 * total[weekday == 6].mean()


def test_risky_orders_are_injected_with_their_case() -> None:
    h = generate_history(2, 120)
    cases = {o.risk_case for o in h.orders if o.risk_case}
    assert cases == set(RiskCase)


@pytest.mark.parametrize("days", [0, 10, 5000])
def test_bad_length_is_a_validation_error(days: int) -> None:
    with pytest.raises(ValidationFailed):
        generate_history(1, days)
