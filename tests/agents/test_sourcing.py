"""The sourcing scorer: reason codes, alternatives in score order, greedy ATP, weights from YAML."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, fields
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.sourcing import (
    Candidate,
    Reason,
    RouteDecision,
    Sourcer,
    SourcingWeights,
    _tags,
    decide_route,
    feasible_candidate,
    order_needs,
    p_on_time,
    rank_nodes,
    read_atp,
)
from core.domain import CarrierStatus, NodeStatus, OrderStatus
from core.errors import ConfigurationError, NotFound
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter
from tools.twin import TwinView


def _created(net: Net) -> list:  # type: ignore[type-arg]
    return net.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=500, with_lines=True)


def test_decide_route_reasons_and_alternatives(sqlite_net: Net) -> None:
    env = sqlite_net.gateway.env
    order = _created(sqlite_net)[0]
    d = decide_route(order.id, env)
    assert d.order_id == order.id
    assert d.node_id is not None
    assert d.carrier_service_id is not None
    assert Reason.BEST_SCORE in d.reasons
    assert (Reason.MEETS_PROMISE in d.reasons) == d.meets_promise
    assert d.alternatives, "other nodes/services were weighed"
    scores = [a.score for a in d.alternatives]
    assert scores == sorted(scores)
    assert d.score is not None
    assert d.score <= scores[0]
    assert all(any(r in a.reasons for r in (Reason.MEETS_PROMISE,)) or any(r.startswith("LATE_BY_") for r in a.reasons)
               for a in d.alternatives)  # fmt: skip
    with pytest.raises(NotFound):
        decide_route("ORD-NOPE", env)


def test_closed_node_and_outage_are_rejected_with_codes(sqlite_net: Net) -> None:
    env = sqlite_net.gateway.env
    order = _created(sqlite_net)[0]
    first = decide_route(order.id, env)
    assert first.node_id is not None
    sqlite_net.adapters.wms.set_node_status(first.node_id, NodeStatus.CLOSED)
    carrier = first.carrier_service_id.split("-")[0] if first.carrier_service_id else "RDG"
    sqlite_net.adapters.carriers.set_carrier_status(carrier, CarrierStatus.OUTAGE)
    d = decide_route(order.id, env)
    assert d.node_id != first.node_id
    assert any(Reason.NODE_CLOSED in v for k, v in d.rejected.items() if k.startswith(first.node_id))
    assert any(Reason.CARRIER_OUTAGE in v for k, v in d.rejected.items() if f"/{carrier}-" in k)
    assert d.carrier_service_id is None or not d.carrier_service_id.startswith(carrier + "-")


def test_rank_nodes_consumes_atp_greedily(sqlite_net: Net) -> None:
    env = sqlite_net.gateway.env
    order = _created(sqlite_net)[0]
    twin = order.model_copy(update={"id": "ORD-TWIN"})
    third = order.model_copy(update={"id": "ORD-THIRD"})
    view = TwinView.load(env.adapters, env.clock)
    view.prepare([order])
    nodes = sorted(n for n in view.nodes if n != order.node_id)[:2]
    need = order_needs(order)
    # Exactly one order's worth at each of two nodes: the third order finds nothing.
    atp = {sku: dict.fromkeys(nodes, qty) for sku, qty in need.items()}
    d1, d2, d3 = rank_nodes([order, twin, third], view, nodes, atp, SourcingWeights())
    assert {d1.node_id, d2.node_id} == set(nodes)
    assert d3.node_id is None
    assert all(Reason.NO_STOCK in v for v in d3.rejected.values())
    assert atp == {sku: dict.fromkeys(nodes, qty) for sku, qty in need.items()}, "the caller's ATP is not mutated"


def test_split_when_no_single_node_has_everything(sqlite_net: Net) -> None:
    env = sqlite_net.gateway.env
    order = next(o for o in _created(sqlite_net) if len({ln.sku for ln in o.lines}) >= 2)
    view = TwinView.load(env.adapters, env.clock)
    view.prepare([order])
    a, b = sorted(view.nodes)[:2]
    skus = sorted(order_needs(order))
    atp = {sku: ({a: 999} if i == 0 else {b: 999}) for i, sku in enumerate(skus)}
    d = Sourcer(view, atp).rank(order, [a, b], allow_split=True)
    assert d.is_split
    assert d.node_id is None
    assert set(d.split_legs) == {a, b}
    assert Reason.SPLIT in d.reasons


def test_on_time_probability_and_weights(tmp_path: Path) -> None:
    assert p_on_time(0.95, -1) == 0.0
    assert p_on_time(0.95, 0) == pytest.approx(0.95)
    assert p_on_time(0.95, 0) < p_on_time(0.95, 1) < p_on_time(0.95, 3) < 1.0
    path = tmp_path / "w.yaml"
    path.write_text("sourcing_weights:\n  late_day: 99\n  split: 3\n")
    w = SourcingWeights.load(path)
    assert (w.late_day, w.split, w.cost) == (99, 3, 1.0)
    assert SourcingWeights.load(None) == SourcingWeights()
    path.write_text("late_day: -1\n")
    with pytest.raises(ConfigurationError):
        SourcingWeights.from_yaml(path)
    path.write_text("nonsense: 1\n")
    with pytest.raises(ConfigurationError):
        SourcingWeights.from_yaml(path)


def test_co2e_estimate_follows_mode_distance_and_weight() -> None:
    from agents.sourcing import co2e_kg

    ground = co2e_kg(air=False, miles=1000, weight_kg=10)
    assert ground == pytest.approx(0.010 * 1609.344 * 1.2 * 0.073)
    assert co2e_kg(air=True, miles=1000, weight_kg=10) > 5 * ground
    assert co2e_kg(air=False, miles=2000, weight_kg=10) == pytest.approx(2 * ground)
    assert co2e_kg(air=False, miles=1000, weight_kg=20) == pytest.approx(2 * ground)
    assert co2e_kg(air=False, miles=0, weight_kg=10) == 0


def test_carbon_weight_prices_co2e_and_tags_the_greenest(sqlite_net: Net) -> None:
    env = sqlite_net.gateway.env
    order = _created(sqlite_net)[0]
    plain = decide_route(order.id, env)
    green = decide_route(order.id, env, SourcingWeights(carbon_per_kg=1000.0))
    assert plain.co2e_kg is not None
    assert green.co2e_kg is not None
    # A heavy price on carbon picks an option no dirtier, and says when it is the greenest.
    assert green.co2e_kg <= plain.co2e_kg + 1e-9
    assert Reason.LOWER_CARBON in green.reasons
    # The default weight leaves carbon out of the score: the same choice as before carbon existed.
    assert SourcingWeights().carbon_per_kg == 0


def _validated_then_copied(d: RouteDecision) -> RouteDecision:
    """``d`` rebuilt the way ``Sourcer.decide`` built decisions before it built them once without
    validation: a validated base (no choice yet), then a copy with the choice filled in."""
    base = RouteDecision(
        order_id=d.order_id,
        current_node_id=d.current_node_id,
        current_service_id=d.current_service_id,
        promised_date=d.promised_date,
        node_id=None,
        rejected=d.rejected,
    )
    if d.score is None:
        base.reasons = d.reasons
        return base
    chosen = {k: v for k, v in d.__dict__.items() if k not in base.model_fields_set - {"node_id"}}
    return base.model_copy(update=chosen)


def test_decisions_built_once_match_the_validated_build(sqlite_net: Net) -> None:
    """A decision is built without validation: its JSON, repr, fields set and values must be those
    of the validated build (field order, plain-str reason codes in rejected/alternatives)."""
    env = sqlite_net.gateway.env
    orders = _created(sqlite_net)
    order = orders[0]
    view = TwinView.load(env.adapters, env.clock)
    view.prepare(orders[:60])
    nodes = sorted(view.nodes)
    sqlite_net.adapters.wms.set_node_status(nodes[0], NodeStatus.CLOSED)
    view = TwinView.load(env.adapters, env.clock)
    view.prepare(orders[:60])
    decisions = [decide_route(order.id, env)]
    decisions += rank_nodes(orders[:60], view, nodes, {}, SourcingWeights())  # no stock anywhere: undecided
    decisions += rank_nodes(orders[:60], view, nodes, read_atp(env, orders[:60]), SourcingWeights())
    split = next(o for o in orders if len({ln.sku for ln in o.lines}) >= 2)
    a, b = nodes[1:3]
    atp = {sku: ({a: 999} if i == 0 else {b: 999}) for i, sku in enumerate(sorted(order_needs(split)))}
    decisions.append(Sourcer(view, atp).rank(split, [a, b], allow_split=True))
    kinds = {(d.score is None, d.is_split, bool(d.rejected)) for d in decisions}
    assert {(True, False, True), (False, False, True), (False, True, True)} <= kinds
    for d in decisions:
        ref = _validated_then_copied(d)
        assert d.model_dump_json() == ref.model_dump_json()
        assert repr(d) == repr(ref)
        assert d.model_fields_set == ref.model_fields_set
        assert d == ref
        assert all(type(r) is str for rs in d.rejected.values() for r in rs)
        assert all(type(r) is str for a in d.alternatives for r in a.reasons)
    d = decisions[0]
    d.reasons = [*d.reasons, "EXTRA"]  # still an ordinary model: assignable, copyable
    assert d.model_copy(update={"score": 1.0}).reasons[-1] == "EXTRA"


def test_feasible_candidate_equals_the_dataclass_build() -> None:
    """The batch paths build candidates without the frozen dataclass's __init__: same fields (a
    field added to Candidate must be added there too), equal, same hash and repr, still frozen."""
    cost, eta, reasons = Decimal("3.10"), date(2026, 1, 2), ("LATE_BY_1D",)
    fast = feasible_candidate("DC-A", "UPS-G", 12.5, cost, eta, 1, 0.9, 250.0, reasons, 0.4)
    ref = Candidate("DC-A", "UPS-G", True, 12.5, cost, eta, 1, 0.9, 250.0, reasons, 0.4)
    assert fast.__dict__ == ref.__dict__
    assert list(fast.__dict__) == [f.name for f in fields(Candidate)]
    assert fast == ref
    assert hash(fast) == hash(ref)
    assert repr(fast) == repr(ref)
    with pytest.raises(FrozenInstanceError):
        fast.score = 0.0  # type: ignore[misc]


def _old_tags(ranked: list[Candidate], c: Candidate) -> tuple[str, ...]:
    """The tags as the scorer gave them before :func:`agents.sourcing._tags` (three keyed mins)."""
    cheapest = min(ranked, key=lambda x: x.cost)
    fastest = min(ranked, key=lambda x: x.eta or date.max)
    nearest = min(ranked, key=lambda x: x.distance_mi if not x.split_legs else math.inf)
    greenest = min(x.co2e_kg for x in ranked)
    differs = greenest < max(x.co2e_kg for x in ranked) - 1e-9
    extra = []
    if c.cost == cheapest.cost:
        extra.append(Reason.CHEAPEST)
    if c.eta == fastest.eta:
        extra.append(Reason.FASTEST)
    if not c.split_legs and c.distance_mi == nearest.distance_mi:
        extra.append(Reason.NEAREST)
    if differs and c.co2e_kg <= greenest + 1e-9:
        extra.append(Reason.LOWER_CARBON)
    return tuple(extra)


_cands = st.lists(
    st.builds(
        Candidate,
        node_id=st.sampled_from(["A", "B", "C"]),
        service_id=st.none(),
        feasible=st.just(True),
        score=st.floats(0, 100),
        cost=st.integers(0, 5).map(Decimal),
        eta=st.none() | st.dates(date(2026, 1, 1), date(2026, 1, 4)),
        distance_mi=st.sampled_from([0.0, 10.0, 20.0]),
        co2e_kg=st.sampled_from([0.0, 1.0, 1.0 + 1e-12, 2.0]),
        split_legs=st.sampled_from([(), (("A", ("S1",)), ("B", ("S2",)))]),
    ),
    min_size=1,
    max_size=6,
)


@given(_cands)
def test_tags_match_the_keyed_mins(ranked: list[Candidate]) -> None:
    assert _tags(ranked, ranked) == [_old_tags(ranked, c) for c in ranked]
