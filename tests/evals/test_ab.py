"""The A/B replay detects a known difference between two sourcing configurations."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.sourcing import SourcingWeights
from api.cli_eval import eval_app
from core.db import Database
from core.netgen import NetworkSpec
from evals.ab import ABReport, ab_replay, render_ab
from evals.env import CaseEnv, fresh_database
from tools.adapters.protocols import OrderFilter

SPEC = NetworkSpec(seed=7, nodes=5, skus=40, customers=6, orders=400)
IGNORES_EVERYTHING = SourcingWeights(cost=0, late_day=0, miss_risk=0, distance_per_1000mi=0, congested=0, split=0)


def test_a_config_that_ignores_cost_costs_more(tmp_path: Path) -> None:
    db = fresh_database(tmp_path, SPEC, "ab")
    try:
        env = CaseEnv.build(db, SPEC, None)
        before = env.adapters.oms.list_orders(OrderFilter(), limit=1000)
        r = ab_replay(env.adapters, env.clock, SourcingWeights(), IGNORES_EVERYTHING, resamples=300, seed=3)
        again = ab_replay(env.adapters, env.clock, SourcingWeights(), IGNORES_EVERYTHING, resamples=300, seed=3)
        after = env.adapters.oms.list_orders(OrderFilter(), limit=1000)
    finally:
        db.dispose()
    assert r == again  # seeded
    assert [o.model_dump() for o in before] == [o.model_dump() for o in after]  # no writes
    assert r.b.cost_to_serve.mean > r.a.cost_to_serve.mean
    assert r.diff["cost_to_serve"].low > 0  # the paired interval excludes zero
    assert not r.a.on_time_rate.overlaps(r.b.on_time_rate)  # and on-time drops with non-overlapping CIs
    same = ab_replay_same(tmp_path)
    assert not same.significant("cost_to_serve")
    assert "cost_to_serve" in render_ab(r)


def ab_replay_same(tmp_path: Path) -> ABReport:
    db = fresh_database(tmp_path, SPEC, "ab2")
    try:
        env = CaseEnv.build(db, SPEC, None)
        return ab_replay(env.adapters, env.clock, SourcingWeights(), SourcingWeights(), resamples=200)
    finally:
        db.dispose()


def test_ab_cli_reads_weight_files(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("sourcing_weights: {cost: 1.0}\n")
    b.write_text("cost: 0\nlate_day: 0\nmiss_risk: 0\ndistance_per_1000mi: 0\ncongested: 0\nsplit: 0\n")
    out = CliRunner().invoke(eval_app, ["ab", "--a", str(a), "--b", str(b), "--orders", "300", "--resamples", "100",
                                        "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert '"cost_to_serve"' in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("cost: -1\n")
    refused = CliRunner().invoke(eval_app, ["ab", "--a", str(bad)])
    assert refused.exit_code == 3


CARBON_WEIGHTED = SourcingWeights(carbon_per_kg=5.0)


def test_a_carbon_weighted_profile_emits_less_and_says_by_how_much(tmp_path: Path) -> None:
    """Default sourcing against a carbon-weighted one on the embedded network: the paired interval
    of CO2e per order lies below zero, and the report gives every metric's interval."""
    db = fresh_database(tmp_path, SPEC, "ab-carbon")
    try:
        env = CaseEnv.build(db, SPEC, None)
        r = ab_replay(env.adapters, env.clock, SourcingWeights(), CARBON_WEIGHTED, resamples=300, seed=5)
    finally:
        db.dispose()
    d = r.diff["co2e_per_order"]
    assert d.low <= d.mean <= d.high
    assert d.high < 0  # B (carbon-weighted) emits less per order, and the interval excludes zero
    assert r.b.co2e_per_order.mean < r.a.co2e_per_order.mean
    assert r.a.co2e_per_order.mean > 0
    assert all(r.diff[m].low <= r.diff[m].high for m in ("cost_to_serve", "on_time_rate", "split_rate"))
    assert "co2e_per_order" in render_ab(r)


def test_vectorised_replay_decides_as_the_scalar_scorer(tmp_path: Path) -> None:
    """The numpy replay makes the scalar loop's decisions, order by order, in both arms; with
    stock tight enough that later orders lose their best node and some must split."""
    from evals.ab import decide_all, decide_arms, replay_orders, stock_on_hand
    from tools.twin import TwinView

    spec = NetworkSpec(seed=5, nodes=5, skus=30, customers=8, orders=600)
    db = fresh_database(tmp_path, spec, "abv")
    try:
        env = CaseEnv.build(db, spec, None)
        orders = replay_orders(env.adapters, env.clock.today())
        view = TwinView.load(env.adapters, env.clock)
        view.prepare(orders)
        stock = stock_on_hand(env.adapters)
    finally:
        db.dispose()
    # Halve the stock so the running ATP decides where orders go.
    stock = {sku: {n: q // 2 for n, q in by_node.items()} for sku, by_node in stock.items()}
    arms = [SourcingWeights(), SourcingWeights(carbon_per_kg=5.0, late_day=10.0)]
    # Arms re-weighing one snapshot decide as arms scored from scratch.
    assert decide_arms(orders, view, stock, arms) == [decide_all(orders, view, stock, w) for w in arms]
    for weights in arms:
        fast = decide_all(orders, view, stock, weights)
        slow = decide_all(orders, view, stock, weights, vectorised=False)
        assert len(fast) == len(slow) == len(orders)
        assert [(f.served, f.on_time, f.split) for f in fast] == [(s.served, s.on_time, s.split) for s in slow]
        assert [f.cost for f in fast] == [s.cost for s in slow]
        assert [f.co2e_kg for f in fast] == pytest.approx([s.co2e_kg for s in slow], abs=1.01e-3)
    assert any(s.split for s in slow)  # the split path was exercised
    # ... and orders no split can serve (a SKU short everywhere: refused without the split's search).
    assert any(not s.served for s in slow)


def test_bulk_read_gives_the_adapters_replay_orders(tmp_path: Path) -> None:
    """The replay's two-query read of the orders is field for field the OMS adapter's orders reset
    as the replay resets them (types included: the reprs name enums and Decimals), also with a
    limit; and the replay decides the same from either."""
    from evals.ab import read_replay_orders, replay_orders

    db = fresh_database(tmp_path, SPEC, "abr")
    try:
        env = CaseEnv.build(db, SPEC, None)
        today = env.clock.today()
        for limit in (None, 1, 37):
            slow, fast = replay_orders(env.adapters, today, limit=limit), read_replay_orders(db, today, limit=limit)
            assert fast == slow
            assert [repr(o) for o in fast] == [repr(o) for o in slow]
        assert len(slow) == 37
        assert slow[0].status == "created"
        assert slow[0].node_id is None
        weights = SourcingWeights(), CARBON_WEIGHTED
        via_db = ab_replay(env.adapters, env.clock, *weights, db=db, resamples=200, seed=3)
        via_oms = ab_replay(env.adapters, env.clock, *weights, resamples=200, seed=3)
    finally:
        db.dispose()
    assert via_db.model_dump_json() == via_oms.model_dump_json()


def test_bulk_read_matches_the_adapters_on_each_backend(db: Database) -> None:
    """PostgreSQL hands back its own types (aware or naive times, Decimals): the bulk read still
    gives the adapter's orders, field for field."""
    from core.clock import FixedClock
    from core.netgen import generate_network
    from evals.ab import read_replay_orders, replay_orders
    from tools.adapters.embedded import embedded_adapters

    spec = NetworkSpec(seed=11, nodes=4, skus=30, customers=5, orders=150)
    generate_network(db, spec)
    clock = FixedClock(datetime.combine(spec.business_date, time(9, 0), tzinfo=UTC))
    adapters = embedded_adapters(db, clock)
    slow, fast = replay_orders(adapters, clock.today()), read_replay_orders(db, clock.today())
    assert len(fast) == 150
    assert [repr(o) for o in fast] == [repr(o) for o in slow]
