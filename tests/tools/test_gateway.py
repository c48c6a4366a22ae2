"""The tool gateway: policy decides, people approve, writes happen once, everything is recorded."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from core.domain import CarrierStatus, NodeStatus, OrderStatus
from core.errors import Conflict, PolicyDenied
from guardrails.audit import EventType
from guardrails.policy import PolicyEngine, parse_policy
from tests.tools.conftest import AGENT, APPROVER, APPROVER_2, VIEWER, Net, build_net


def test_denied_call_changes_nothing_and_is_recorded(net: Net) -> None:
    src = net.busiest_dc()
    closed = net.other_dc(src)
    net.adapters.wms.set_node_status(closed, NodeStatus.CLOSED)
    ids = [o.id for o in net.movable(src)[:5]]
    before = net.snapshot()
    out = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": closed}, actor=AGENT, run=net.run(), idempotency_key="k-deny"
    )
    assert out.status == "denied"
    assert any("closed" in r for r in out.reasons)
    assert net.snapshot() == before
    kinds = [r.event_type for r in net.gateway.guard.audit.list(call_id=out.call_id)]
    assert kinds == ["proposed", "denied"]


def test_malformed_arguments_fail_closed(net: Net) -> None:
    before = net.snapshot()
    run = net.run()
    for bad in (
        {"order_ids": [], "to_node_id": "DC-X"},
        {"order_ids": "ORD-1", "to_node_id": 3},
        {"order_ids": ["ORD-0000001"]},
        {"order_ids": ["ORD-0000001"], "to_node_id": "DC-X", "force": True},
    ):
        out = net.gateway.propose("reroute_orders", bad, actor=AGENT, run=run, idempotency_key="k")
        assert out.status == "denied"
        assert out.reasons[0].startswith("malformed arguments")
    unknown = net.gateway.propose("drop_database", {}, actor=AGENT, run=run, idempotency_key="k")
    assert unknown.status == "denied"
    missing = net.gateway.propose("hold_orders", {"order_ids": ["ORD-NOPE"]}, actor=AGENT, run=run, idempotency_key="k")
    assert missing.status == "denied"
    assert "ORD-NOPE" in missing.reasons[0]
    assert net.snapshot() == before


def test_small_allowed_write_executes_once_per_idempotency_key(net: Net) -> None:
    orders = net.small_safe_orders(2)
    ids = [o.id for o in orders]
    run = net.run()
    first = net.gateway.propose(
        "hold_orders", {"order_ids": ids, "reason": "check"}, actor=AGENT, run=run, idempotency_key="hold-1"
    )
    assert first.status == "executed", first.reasons
    held = net.adapters.oms.get_orders(ids)
    assert all(o.status is OrderStatus.HELD for o in held)
    after_first = net.snapshot()
    again = net.gateway.propose(
        "hold_orders", {"order_ids": ids, "reason": "check"}, actor=AGENT, run=run, idempotency_key="hold-1"
    )
    assert again.status == "replayed"
    assert again.result == first.result
    assert net.snapshot() == after_first


def test_write_needing_approval_waits_and_runs_only_as_approved(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:40]
    assert len(ids) > 25  # bulk: the default policy wants an approver
    before = net.snapshot()
    run = net.run()
    out = net.gateway.propose(
        "reroute_orders",
        {"order_ids": ids, "to_node_id": dst, "reason": "congestion"},
        actor=AGENT,
        run=run,
        idempotency_key="rr-1",
    )
    assert out.status == "awaiting_approval"
    assert out.preview is not None
    assert out.approval_id is not None
    assert net.snapshot() == before  # nothing happens while it waits
    with pytest.raises(Conflict, match="pending"):
        net.gateway.execute_approved(out.approval_id, actor=AGENT, run=run)

    # the requester (the person behind the agent) and a viewer cannot approve
    with pytest.raises(PolicyDenied):
        net.gateway.decide(out.approval_id, approver=VIEWER, decision="approve")
    olivia = AGENT.model_copy(
        update={"kind": "user", "id": "olivia", "roles": frozenset({"approver"}), "on_behalf_of": None}
    )
    with pytest.raises(PolicyDenied, match="may not approve"):
        net.gateway.decide(out.approval_id, approver=olivia, decision="approve")

    movable = out.preview.affected
    subset = movable[: len(movable) // 2]
    req = net.gateway.decide(out.approval_id, approver=APPROVER, decision="approve", subset=subset)
    assert req.status == "approved"
    done = net.gateway.execute_approved(out.approval_id, actor=AGENT, run=run)
    assert done.status == "executed"
    assert done.result is not None
    assert sorted(done.result["done"]) == sorted(subset)
    moved = {o.id: o.node_id for o in net.adapters.oms.get_orders(ids)}
    assert all(moved[i] == dst for i in subset)
    assert all(moved[i] == src for i in ids if i not in subset)
    trail = [r.event_type for r in net.gateway.guard.audit.list(call_id=out.call_id)]
    assert trail == ["proposed", "awaiting_approval", "approved", "executed"]
    executed = net.gateway.guard.audit.list(call_id=out.call_id, event_type=EventType.EXECUTED)[0]
    assert executed.approver == "amir"
    assert executed.policy_version == out.policy_version
    # executing the same approval again replays, it does not move anything twice
    snap = net.snapshot()
    assert net.gateway.execute_approved(out.approval_id, actor=AGENT, run=run).status == "replayed"
    assert net.snapshot() == snap


def test_rejected_and_expired_approvals_never_execute(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:30]
    run = net.run()
    before = net.snapshot()
    a = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="a"
    )
    b = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="b"
    )
    assert a.approval_id
    assert b.approval_id
    net.gateway.decide(a.approval_id, approver=APPROVER, decision="reject", reason="wrong DC")
    with pytest.raises(Conflict, match="rejected"):
        net.gateway.execute_approved(a.approval_id, actor=AGENT, run=run)
    net.clock.advance(timedelta(hours=5))
    with pytest.raises(Conflict, match="expired"):
        net.gateway.decide(b.approval_id, approver=APPROVER, decision="approve")
    with pytest.raises(Conflict):
        net.gateway.execute_approved(b.approval_id, actor=AGENT, run=run)
    assert net.snapshot() == before


def test_network_change_after_approval_stops_execution_and_asks_again(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:30]
    run = net.run()
    out = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="c"
    )
    assert out.approval_id
    net.gateway.decide(out.approval_id, approver=APPROVER, decision="approve")
    # the target DC fills up after the approval: its ship dates (and so the preview) change
    node = net.adapters.wms.get_node(dst)
    net.adapters.wms.set_backlog(dst, node.backlog + node.daily_capacity * 3)
    before = net.snapshot()
    again = net.gateway.execute_approved(out.approval_id, actor=AGENT, run=run)
    assert again.status == "awaiting_approval"
    assert again.approval_id != out.approval_id
    assert "network changed" in again.reasons[0]
    assert net.snapshot() == before


def test_editing_arguments_reruns_policy_and_simulation(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:30]
    run = net.run()
    out = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="d"
    )
    assert out.approval_id
    closed = next(n.id for n in net.adapters.wms.list_nodes() if n.id not in (src, dst) and n.id.startswith("DC-"))
    net.adapters.wms.set_node_status(closed, NodeStatus.CLOSED)
    denied = net.gateway.edit(out.approval_id, {"order_ids": ids, "to_node_id": closed}, editor=APPROVER, run=run)
    assert denied.status == "denied"
    assert net.gateway.guard.approvals.get(out.approval_id).status == "pending"  # the original stands
    edited = net.gateway.edit(out.approval_id, {"order_ids": ids[:10], "to_node_id": dst}, editor=APPROVER, run=run)
    assert edited.status == "awaiting_approval"
    assert edited.approval_id != out.approval_id
    assert edited.preview is not None
    assert len(edited.preview.items) == 10
    assert net.gateway.guard.approvals.get(out.approval_id).status == "superseded"
    with pytest.raises(PolicyDenied, match="edited"):  # the editor may not approve their own edit
        net.gateway.decide(edited.approval_id, approver=APPROVER, decision="approve")
    net.gateway.decide(edited.approval_id, approver=APPROVER_2, decision="approve")
    done = net.gateway.execute_approved(edited.approval_id, actor=AGENT, run=run)
    assert done.result is not None
    assert set(done.result["done"]) <= set(ids[:10])


def test_concurrent_execution_of_one_approval_happens_once(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:30]
    run = net.run()
    out = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="e"
    )
    assert out.approval_id
    net.gateway.decide(out.approval_id, approver=APPROVER, decision="approve")
    versions_before = {o.id: o.version for o in net.adapters.oms.get_orders(ids)}
    results: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        results.append(net.gateway.execute_approved(out.approval_id, actor=AGENT, run=net.run()).status)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["executed", "replayed"]
    after = {o.id: o.version for o in net.adapters.oms.get_orders(ids)}
    assert all(after[i] - versions_before[i] in (0, 1) for i in ids)
    assert len(net.gateway.guard.audit.list(call_id=out.call_id, event_type=EventType.EXECUTED)) == 2


def test_budget_per_run_denies_past_the_limit(sqlite_db: object) -> None:
    policy = PolicyEngine(
        parse_policy("""
version: "t"
defaults: {read: allow, write: require_approval, approval: {roles: [approver]}}
budgets: {max_tool_calls: 2}
rules:
  - id: allow-holds
    when: {tools: [hold_orders]}
    effect: allow
    reason: holds are fine in this test
""")
    )
    net = build_net(sqlite_db, policy)  # type: ignore[arg-type]
    orders = net.small_safe_orders(3)
    run = net.run()
    statuses = [
        net.gateway.propose("hold_orders", {"order_ids": [o.id]}, actor=AGENT, run=run, idempotency_key=f"h{i}").status
        for i, o in enumerate(orders)
    ]
    assert statuses == ["executed", "executed", "denied"]
    assert net.adapters.oms.get_order(orders[2].id).status is OrderStatus.CREATED


def test_reads_are_audited_and_bounded(net: Net) -> None:
    run = net.run()
    out = net.gateway.read("search_orders", {"node_ids": [net.busiest_dc()], "limit": 3}, actor=AGENT, run=run)
    assert out.status == "read"
    assert out.result is not None
    assert len(out.result["orders"]) <= 3
    assert out.result["total"] >= len(out.result["orders"])
    rows = net.gateway.guard.audit.list(call_id=out.call_id)
    assert [r.event_type for r in rows] == ["executed"]
    assert run.tool_calls == 1
    assert Decimal(0) == run.spend


def test_gateway_never_changes_orders_the_preview_skipped(net: Net) -> None:
    """A call is narrowed to the orders its simulation accepted, so policy and approvers judge
    exactly what changes (here: a carrier in outage can take none of them)."""
    net.adapters.carriers.set_carrier_status("RDG", CarrierStatus.OUTAGE)
    ids = [o.id for o in net.small_safe_orders(3)]
    net.adapters.oms.allocate(ids)
    before = net.snapshot()
    out = net.gateway.propose(
        "change_carrier",
        {"order_ids": ids, "carrier_service_id": "RDG-GROUND"},
        actor=AGENT,
        run=net.run(),
        idempotency_key="cc-outage",
    )
    assert out.preview is not None
    assert out.preview.affected == []
    if out.status == "executed":
        assert out.result is not None
        assert out.result["done"] == []
        assert set(out.result["skipped"]) >= set(ids)
    assert net.snapshot() == before
