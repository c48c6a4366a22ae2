"""Sourcing profiles, the decision snapshot and log, and a live A/B test on the embedded network (issue 14)."""

from __future__ import annotations

import math

import pytest

from agents.sourcing import RouteDecision, SourcingWeights
from core.db import Database
from core.domain import NodeStatus, Order, OrderStatus
from core.errors import Conflict, ValidationFailed
from services.decisions import DecisionService, decisions_since
from services.experiments import ExperimentStore, arm_for, live_report
from services.profiles import BUILTIN_DEFAULT, ProfileConstraints, ProfileStore
from tests.tools.conftest import Net, build_net
from tools.adapters.protocols import Adapters, OrderFilter
from tools.twin import TwinView

CARBON = SourcingWeights(carbon_per_kg=25.0, distance_per_1000mi=5.0)


class Tick:
    """A monotonic clock the test moves by hand (the snapshot's staleness bound is in its seconds)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def service(net: Net, tick: Tick | None = None, staleness: float = 0.25) -> DecisionService:
    return DecisionService.build(
        net.db, net.adapters, net.clock, max_staleness_s=staleness, batch=1, monotonic=tick or Tick()
    )


def created_orders(net: Net, n: int) -> list[Order]:
    found = net.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=n, with_lines=True)
    assert len(found) >= min(n, 50), "the generated network holds created orders"
    return found


def test_profiles_are_versioned_activated_and_rolled_back(db: Database) -> None:
    store = ProfileStore(db)
    assert store.active().profile == BUILTIN_DEFAULT
    with pytest.raises(ValidationFailed):
        store.rollback(by="ada")
    v1 = store.create("carbon", CARBON, note="first", by="ada")
    v2 = store.create("carbon", CARBON.model_copy(update={"carbon_per_kg": 50.0}), by="ada")
    strict = store.create("strict", SourcingWeights(), ProfileConstraints(allow_split=False), by="ada")
    assert (v1.version, v2.version, strict.version) == (1, 2, 1)
    assert store.get("carbon").weights.carbon_per_kg == 50.0  # newest by default
    assert store.get("carbon", 1).weights.carbon_per_kg == 25.0  # versions are never edited
    assert store.active().profile.label == "default@v0"  # creating activates nothing

    assert store.activate("carbon", 1, by="ada").profile.label == "carbon@v1"
    assert store.activate("carbon", by="ada").profile.label == "carbon@v2"
    assert store.activate("strict", by="ada").profile.constraints.allow_split is False
    # each rollback walks back one activation
    assert store.rollback(by="ada").profile.label == "carbon@v2"
    assert store.rollback(by="ada").profile.label == "carbon@v1"
    back = store.rollback(by="bob")
    assert back.profile == BUILTIN_DEFAULT
    assert back.action == "rollback"
    assert back.by == "bob"
    assert [p.label for p in store.list()] == ["default@v0", "carbon@v1", "carbon@v2", "strict@v1"]
    with pytest.raises(ValidationFailed):
        store.create("Bad Name", CARBON, by="ada")


def test_the_split_is_deterministic_by_order_and_balanced() -> None:
    ids = [f"ORD-{i:06d}" for i in range(4000)]
    first = [arm_for("exp_1", i, 0.5) for i in ids]
    assert first == [arm_for("exp_1", i, 0.5) for i in reversed(ids)][::-1]  # arrival order does not matter
    share = first.count("B") / len(first)
    assert 0.46 < share < 0.54
    assert first != [arm_for("exp_2", i, 0.5) for i in ids]  # another experiment, another split
    assert [arm_for("exp_1", i, 0.2) for i in ids].count("B") < first.count("B")


def test_each_decision_is_logged_with_its_profile_and_arm(db: Database) -> None:
    net = build_net(db)
    svc = service(net)
    orders = created_orders(net, 40)
    d0 = svc.decide(orders[0].id)
    assert (d0.profile_name, d0.profile_version, d0.arm, d0.experiment_id) == ("default", 0, None, None)
    profiles = ProfileStore(db, net.clock)
    carbon = profiles.create("carbon", CARBON, by="ada")
    exp = ExperimentStore(db, net.clock).start("carbon-vs-default", BUILTIN_DEFAULT, carbon, by="ada")
    with pytest.raises(Conflict):
        ExperimentStore(db, net.clock).start("second", BUILTIN_DEFAULT, carbon, by="ada")
    svc.cache.invalidate()
    seen = {svc.decide(o.id).arm for o in orders}
    assert seen == {"A", "B"}
    again = svc.decide(orders[1].id)
    assert again.arm == arm_for(exp.id, orders[1].id, 0.5)
    assert again.profile_name == ("carbon" if again.arm == "B" else "default")
    rows = decisions_since(db, order_id=orders[1].id)
    assert rows[-1]["id"] == again.decision_id
    assert rows[-1]["arm"] == again.arm
    assert rows[-1]["experiment_id"] == exp.id
    assert rows[-1]["profile_name"] == again.profile_name
    assert rows[-1]["profile_version"] == again.profile_version
    assert rows[-1]["inputs_hash"] == again.inputs_hash
    assert len(again.inputs_hash) == 64
    assert len(decisions_since(db)) == 1 + len(orders) + 1
    ExperimentStore(db, net.clock).stop()
    svc.cache.invalidate()
    after = svc.decide(orders[1].id)
    assert (after.arm, after.experiment_id, after.profile_name) == (None, None, "default")


def test_a_profile_s_constraints_bound_its_decisions(sqlite_db: Database) -> None:
    net = build_net(sqlite_db)
    tick = Tick()
    svc = service(net, tick)
    order = created_orders(net, 10)[0]
    free = svc.decide(order.id)
    assert free.node_id is not None
    other = next(n.id for n in net.adapters.wms.list_nodes() if n.id != free.node_id)
    profiles = ProfileStore(sqlite_db, net.clock)
    profiles.create("only-one", SourcingWeights(), ProfileConstraints(nodes=(other,), allow_split=False), by="ada")
    profiles.activate("only-one", by="ada")
    tick.t += 1.0
    bound = svc.decide(order.id)
    assert bound.profile_name == "only-one"
    assert bound.node_id in (other, None)
    assert not bound.split_legs
    assert all(key.split("/")[0] == other for key in [*bound.rejected, *(a.node_id for a in bound.alternatives)])


def test_a_decision_after_a_network_change_reflects_it_within_the_staleness_bound(sqlite_db: Database) -> None:
    net = build_net(sqlite_db)
    tick = Tick()
    svc = service(net, tick, staleness=0.25)
    order = created_orders(net, 10)[0]
    first = svc.decide(order.id)
    assert first.node_id is not None
    assert svc.cache.loads == 1
    net.adapters.wms.set_node_status(first.node_id, NodeStatus.CLOSED)
    tick.t += 0.1  # within the bound: the snapshot is not checked again
    assert svc.decide(order.id).node_id == first.node_id
    assert svc.cache.loads == 1
    tick.t += 0.2  # past the bound: checked, changed, rebuilt
    after = svc.decide(order.id)
    assert svc.cache.loads == 2
    assert after.node_id != first.node_id
    assert "NODE_CLOSED" in after.rejected.get(f"{first.node_id}/{first.carrier_service_id}", [])
    tick.t += 1.0  # past the bound again, nothing changed: checked, not rebuilt
    svc.decide(order.id)
    assert svc.cache.loads == 2


def test_activating_a_profile_reaches_the_next_decision_after_the_bound(sqlite_db: Database) -> None:
    net = build_net(sqlite_db)
    tick = Tick()
    svc = service(net, tick)
    order = created_orders(net, 10)[0]
    assert svc.decide(order.id).profile_name == "default"
    profiles = ProfileStore(sqlite_db, net.clock)
    profiles.create("carbon", CARBON, by="ada")
    profiles.activate("carbon", by="ada")
    tick.t += 1.0
    d = svc.decide(order.id)
    assert (d.profile_name, d.profile_version) == ("carbon", 1)
    profiles.rollback(by="ada")
    tick.t += 1.0
    assert svc.decide(order.id).profile_name == "default"


def execute(net: Net, view: TwinView, order: Order, d: RouteDecision) -> bool:
    """Carry out a decision the way operations would: move the order, or split it across the
    decision's nodes; give each part a service, allocate, ship. Returns False for what this helper
    cannot execute (no answer, a move the OMS skipped)."""
    if d.split_legs:
        parts = split(net, view, order, d.split_legs)
    elif d.node_id is not None and d.carrier_service_id is not None:
        parts = move(net.adapters, order, d.node_id, d.carrier_service_id)
    else:
        return False
    if not parts:
        return False
    oms = net.adapters.oms
    created = [o.id for o in oms.get_orders(parts) if o.status is OrderStatus.CREATED]
    if created:
        oms.allocate(created)
    net.adapters.carriers.create_shipments(parts)
    return True


def move(adapters: Adapters, order: Order, node_id: str, service_id: str) -> list[str]:
    """A whole-node decision: the order moved to its node with its service (none if not moved)."""
    oms = adapters.oms
    if order.node_id != node_id and order.id in oms.move_orders([order.id], node_id).skipped:
        return []
    oms.set_carrier_service([order.id], service_id)
    return [order.id]


def split(net: Net, view: TwinView, order: Order, legs: dict[str, list[str]]) -> list[str]:
    """A split decision, through the gateway's ``split_shipment`` write tool as production executes it:
    the order stays at (or moves to) one leg's node and each other leg's lines become a child
    ``<order>-S<n>`` at that leg's node; each part ships with its own service if that node can use it,
    else the cheapest of its level (:meth:`TwinView.fulfil`). The parent and its children, or none."""
    oms = net.adapters.oms
    stay = order.node_id if order.node_id in legs else next(iter(legs))
    if order.node_id != stay and order.id in oms.move_orders([order.id], stay).skipped:
        return []
    tool = net.gateway.writes["split_shipment"]
    parts = [order.id]
    for node_id, skus in legs.items():
        if node_id == stay:
            continue
        lines = [ln.line_no for ln in order.lines if ln.sku in skus]
        args = {"order_id": order.id, "line_nos": lines, "to_node_id": node_id, "reason": "A/B split"}
        parts.append(str(tool.execute(net.gateway.env, tool.args_model.model_validate(args)).done[-1]))
    shipping = oms.get_orders(parts)
    view.prepare(shipping)
    for part in shipping:
        assert part.node_id is not None
        f = view.fulfil(part, part.node_id)
        assert f.quote is not None, f"{part.id} cannot ship from {part.node_id}: {f.reason}"
        oms.set_carrier_service([part.id], f.quote.carrier_service_id)
    return parts


def test_live_ab_between_the_default_and_a_carbon_weighted_profile_reports_intervals(sqlite_db: Database) -> None:
    net = build_net(sqlite_db)
    profiles = ProfileStore(sqlite_db, net.clock)
    carbon = profiles.create("carbon", CARBON, note="carbon-weighted", by="ada")
    experiments = ExperimentStore(sqlite_db, net.clock)
    exp = experiments.start("carbon-vs-default", BUILTIN_DEFAULT, carbon, mde_usd=2.0, by="ada")
    svc = service(net)
    orders = created_orders(net, 120)
    view = TwinView.load(net.adapters, net.clock)
    executed, splits = 0, 0
    for order in orders:
        d = svc.decide(order.id)
        done = execute(net, view, order, d)
        executed += done
        splits += done and d.is_split
    assert executed >= 60
    assert splits >= 1, "the split metric is measured on executed splits, not only whole-node moves"

    report = live_report(sqlite_db, net.adapters, net.clock, experiments.stop(exp.id), resamples=500)
    a, b = report.arms
    assert (a.profile, b.profile) == ("default@v0", "carbon@v1")
    assert a.decided + b.decided == len(orders)
    assert a.measured > 10
    assert b.measured > 10
    assert a.measured + b.measured == executed
    # each executed split shipped more than once (parent and child): the split metric counts exactly those
    assert sum(arm.means["split"].mean * arm.measured for arm in report.arms) == pytest.approx(splits)
    for arm in report.arms:
        for est in arm.means.values():
            assert est.low <= est.mean <= est.high
    for metric in ("cost_to_serve", "on_time", "split", "co2e_kg"):
        est = report.difference[metric]
        assert all(math.isfinite(x) for x in (est.mean, est.low, est.high))
        assert est.low <= est.mean <= est.high
    # the interval on the difference is the difference of the arms' own means
    assert report.difference["co2e_kg"].mean == pytest.approx(b.means["co2e_kg"].mean - a.means["co2e_kg"].mean)
    assert report.horizon_per_arm >= 2
    assert report.verdict
    assert report.reached == (min(a.measured, b.measured) >= report.horizon_per_arm)


def test_a_full_batch_is_written_by_the_flusher_not_by_the_request_that_filled_it(sqlite_db: Database) -> None:
    """The API answers on its event loop; a request that wrote the batch itself waited there for
    SQLite's write lock (held by the other server process) and held up every request behind it.
    With the flusher running, the request only hands the batch over; past BACKLOG_BATCHES batches
    (the flusher stuck) it writes them itself, so memory stays bounded."""
    import threading
    import time

    from services.decisions import BACKLOG_BATCHES, DecisionLog

    log = DecisionLog(sqlite_db, batch=2, max_delay_s=30.0)
    writers: list[tuple[str, int]] = []
    log._write = lambda rows: writers.append((threading.current_thread().name, len(rows)))  # type: ignore[method-assign]
    log.start_flusher()
    log.add({"id": "a"})
    log.add({"id": "b"})  # the batch is full: handed over, not written here
    deadline = time.monotonic() + 10
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writers == [("decision-log", 2)]

    log = DecisionLog(sqlite_db, batch=2, max_delay_s=30.0)  # no flusher of its own
    log._write = lambda rows: writers.append((threading.current_thread().name, len(rows)))  # type: ignore[method-assign]
    stuck = threading.Event()
    log._flusher = threading.Thread(target=stuck.wait, daemon=True)  # alive, never flushes
    log._flusher.start()
    try:
        for i in range(BACKLOG_BATCHES * 2 - 1):
            log.add({"id": f"r{i}"})
        assert log.pending == BACKLOG_BATCHES * 2 - 1
        assert len(writers) == 1
        log.add({"id": "last"})  # the backlog is full: this request writes it
        assert writers[-1] == (threading.current_thread().name, BACKLOG_BATCHES * 2)
        assert log.pending == 0
    finally:
        stuck.set()
