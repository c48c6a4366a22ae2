"""Alternatives carry their CO2e: a reviewer sees what the chosen node saves or costs in carbon."""

from __future__ import annotations

from datetime import date

from agents.plan import Alternative
from agents.playbooks._common import merge_alternatives
from agents.sourcing import Reason, RouteDecision, decide_route
from core.domain import OrderStatus
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter


def test_each_alternative_carries_its_co2e(sqlite_net: Net) -> None:
    env = sqlite_net.gateway.env
    orders = sqlite_net.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=50)
    decisions = [decide_route(o.id, env) for o in orders]
    alts = [a for d in decisions for a in d.alternatives]
    assert alts
    assert all(a.co2e_kg is not None and a.co2e_kg > 0 for a in alts)
    # The greener tag and the number agree: an alternative tagged LOWER_CARBON emits no more
    # than the chosen option.
    for d in decisions:
        for a in d.alternatives:
            if Reason.LOWER_CARBON in a.reasons:
                assert d.co2e_kg is not None
                assert a.co2e_kg is not None
                assert a.co2e_kg <= d.co2e_kg + 1e-9


def _decision(order_id: str, *alts: Alternative) -> RouteDecision:
    return RouteDecision(
        order_id=order_id, current_node_id="DC-A", current_service_id=None, promised_date=date(2026, 1, 1),
        node_id="DC-B", alternatives=list(alts),
    )  # fmt: skip


def test_merged_alternatives_show_the_mean_co2e() -> None:
    a1 = Alternative(node_id="DC-C", score=10.0, co2e_kg=2.0)
    a2 = Alternative(node_id="DC-C", score=12.0, co2e_kg=4.0)
    unknown = Alternative(node_id="DC-D", score=11.0)
    merged = merge_alternatives([_decision("O1", a1, unknown), _decision("O2", a2)])
    by_node = {a.node_id: a for a in merged}
    assert by_node["DC-C"].co2e_kg == 3.0
    assert by_node["DC-D"].co2e_kg is None
