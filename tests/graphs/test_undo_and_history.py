"""`runs undo` and `orders history` (issue 15, problem 10): an executed run is put back by its
tools' compensating calls, through approval, exactly once; an order's history names every change
with its run, approver and reason."""

from __future__ import annotations

from typing import Any

import pytest

from agents.playbooks import PlaybookPlanner
from core.errors import NotFound
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns
from graphs.runs import RunStore
from services.history import order_history
from services.undo import start_undo
from tests.graphs.support import APPROVER, congestion_alert, deps_for
from tests.tools.conftest import Net

Congested = tuple[Net, str, str]


def approve_all(result: Any) -> list[dict[str, Any]]:
    return [{"approval_id": a["approval_id"], "decision": "approve"} for a in result.approvals]


def nodes_of(net: Net, ids: list[str]) -> dict[str, str | None]:
    return {o.id: o.node_id for o in net.adapters.oms.get_orders(ids)}


def test_undo_restores_every_moved_order_through_approval_and_history_tells_the_story(
    congested: Congested,
) -> None:
    net, node, _ = congested
    deps = deps_for(net, PlaybookPlanner())
    store = RunStore(net.db, net.clock)
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps, saver)
        first = runs.start(alert=congestion_alert(node), run_id="run-u")
        assert first.waiting
        done = runs.resume("run-u", decisions=approve_all(first), approver=APPROVER)
        assert done.status in ("completed", "partially_completed"), done.report
        moved = sorted(oid for oid, what in done.report["orders"].items() if what.endswith(": done"))
        assert moved
        assert set(nodes_of(net, moved).values()) != {node}

        undo = start_undo(runs, store, "run-u")
        assert undo.waiting, "an undo of a bulk reroute needs a person like the reroute did"
        assert all(v != node for v in nodes_of(net, moved).values()), "nothing moves before approval"
        undone = runs.resume(undo.run_id, decisions=approve_all(undo), approver=APPROVER)
        assert undone.status == "completed", undone.report
    assert set(nodes_of(net, moved).values()) == {node}

    history = order_history(net.gateway.guard.audit, moved[0])
    assert [c.run_id for c in history.changes] == ["run-u", undo.run_id]
    there, back = history.changes
    assert there.change == f"{node} -> {there.change.split(' -> ')[1]}"
    assert back.change == f"{there.change.split(' -> ')[1]} -> {node}"
    assert there.approver == APPROVER["id"]
    assert back.reason == "undo reroute"


def test_undoing_a_run_that_changed_nothing_is_a_clear_error(congested: Congested) -> None:
    net, _, _ = congested
    deps = deps_for(net, PlaybookPlanner())
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps, saver)
        with pytest.raises(NotFound):
            start_undo(runs, RunStore(net.db, net.clock), "run-that-never-was")


def test_undoing_a_closure_reopens_the_node_first_then_moves_the_orders_back(congested: Congested) -> None:
    net, node, _ = congested
    from agents.plan import Alert, ExceptionKind
    from core.domain import NodeStatus

    deps = deps_for(net, PlaybookPlanner())
    store = RunStore(net.db, net.clock)
    closure = Alert(id=f"closed-{node}", kind=ExceptionKind.NODE_CLOSURE, labels={"node": node}, text="")
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps, saver)
        first = runs.start(alert=closure, run_id="run-c")
        done = runs.resume("run-c", decisions=approve_all(first), approver=APPROVER)
        assert done.status in ("completed", "partially_completed"), done.report
        assert net.adapters.wms.get_node(node).status is NodeStatus.CLOSED
        moved = sorted(
            o for o, what in done.report["orders"].items() if what.endswith(": done") and o.startswith("ORD-")
        )
        assert moved

        reopen = start_undo(runs, store, "run-c")
        assert [a["tool"] for a in reopen.approvals] == ["set_node_status"]
        reopened = runs.resume(reopen.run_id, decisions=approve_all(reopen), approver=APPROVER)
        assert reopened.status == "completed", reopened.report
        assert net.adapters.wms.get_node(node).status is not NodeStatus.CLOSED
        assert set(nodes_of(net, moved).values()) != {node}, "orders move only in the second undo"

        back = start_undo(runs, store, "run-c")
        assert back.approvals
        assert "set_node_status" not in {a["tool"] for a in back.approvals}
        finished = runs.resume(back.run_id, decisions=approve_all(back), approver=APPROVER)
        assert finished.status == "completed", finished.report
    assert set(nodes_of(net, moved).values()) == {node}
