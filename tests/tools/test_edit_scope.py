"""An approver's edit shows what will really change (issue 15, problem 8).

An edit that added orders from another DC kept the original request's item list: the card and the
audit row said 12 orders while 17 moved."""

from __future__ import annotations

import pytest

from core.errors import PolicyDenied
from tests.tools.conftest import AGENT, APPROVER, APPROVER_2, Net


def test_an_edit_that_adds_orders_covers_exactly_the_orders_it_will_change(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:30]
    third = next(
        n.id
        for n in net.adapters.wms.list_nodes()
        if n.id.startswith("DC-") and n.id not in (src, dst) and net.movable(n.id)
    )
    extra = [o.id for o in net.movable(third)][:5]
    run = net.run()
    out = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="wide"
    )
    assert out.approval_id
    original = net.gateway.guard.approvals.get(out.approval_id)
    edited = net.gateway.edit(
        out.approval_id, {"order_ids": ids[:12] + extra, "to_node_id": dst}, editor=APPROVER, run=run
    )
    assert edited.approval_id
    assert edited.preview is not None
    req = net.gateway.guard.approvals.get(edited.approval_id)
    assert sorted(req.items) == sorted(edited.preview.affected)
    assert set(req.items) & set(extra), "the orders the edit added are on the card"
    assert not set(req.items) <= set(original.items)
    # Widening makes it the editor's own request: someone else decides it.
    assert req.requester_id == APPROVER.id
    with pytest.raises(PolicyDenied):
        net.gateway.decide(edited.approval_id, approver=APPROVER, decision="approve")
    net.gateway.decide(edited.approval_id, approver=APPROVER_2, decision="approve")
    done = net.gateway.execute_approved(edited.approval_id, actor=AGENT, run=run)
    assert done.result is not None
    assert set(done.result["done"]) <= set(req.items)


def test_a_narrowing_edit_lists_only_the_orders_left(net: Net) -> None:
    src = net.busiest_dc()
    dst = net.other_dc(src)
    ids = [o.id for o in net.movable(src)][:30]
    run = net.run()
    out = net.gateway.propose(
        "reroute_orders", {"order_ids": ids, "to_node_id": dst}, actor=AGENT, run=run, idempotency_key="narrow"
    )
    assert out.approval_id
    edited = net.gateway.edit(out.approval_id, {"order_ids": ids[:10], "to_node_id": dst}, editor=APPROVER, run=run)
    assert edited.approval_id
    req = net.gateway.guard.approvals.get(edited.approval_id)
    assert set(req.items) <= set(ids[:10])
    assert req.requester_id == "olivia"  # still the agent's request on olivia's behalf
