"""Closure runs mark the node closed and account for every order that stays; an approver's subset
is their choice, not a verification failure."""

from __future__ import annotations

from typing import Any

from agents.plan import PlannedCall
from agents.playbooks import PlaybookPlanner
from core.db import Database
from core.domain import NodeStatus, OrderStatus
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunResult
from graphs.runs import RunStore
from guardrails.calls import Actor
from tests.graphs.support import APPROVER, FixedPlanner, congestion_alert, deps_for
from tests.tools.conftest import Net, build_net
from tools.adapters.protocols import OrderFilter

Congested = tuple[Net, str, str]
OPEN = [OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED, OrderStatus.PICKED, OrderStatus.HELD]


def _versions(net: Net) -> dict[str, int]:
    orders, _ = net.snapshot()
    return {str(r[0]): int(str(r[4])) for r in orders}


def _start(net: Net, run_id: str, **kw: Any) -> RunResult:
    with open_checkpointer(net.db) as saver:
        return ExceptionRuns(deps_for(net, PlaybookPlanner()), saver).start(run_id=run_id, **kw)


def _resume(net: Net, run_id: str, decisions: list[dict[str, Any]]) -> RunResult:
    with open_checkpointer(net.db) as saver:
        return ExceptionRuns(deps_for(net, PlaybookPlanner()), saver).resume(
            run_id, decisions=decisions, approver=APPROVER
        )


def test_closure_run_closes_the_node_and_lists_every_order_that_stays(sqlite_db: Database) -> None:
    net = build_net(sqlite_db)
    src = net.busiest_dc()
    assert net.adapters.wms.get_node(src).status is NodeStatus.OPEN, "the operator reports it; nobody marked it"
    first = _start(net, "run-close", goal=f"{src} is closed")
    assert first.waiting
    tools = [a["tool"] for a in first.approvals]
    assert tools[0] == "set_node_status", "the node is marked closed first, so sourcing stops sending orders there"
    assert first.approvals[0]["step"] == 0
    reroutes = [a for a in first.approvals if a["tool"] == "reroute_orders"]
    assert reroutes
    for card in reroutes:
        p = card["preview"]
        # "Before" is the world with the node closed: every order there is late, and the plan helps.
        assert p["late_before"] == p["affected"] + p["skipped"]
        assert p["late_after"] <= p["late_before"]
    assert sum(c["preview"]["late_after"] for c in reroutes) < sum(c["preview"]["late_before"] for c in reroutes)
    assert net.adapters.wms.get_node(src).status is NodeStatus.OPEN, "nothing changes before approval"

    done = _resume(
        net, "run-close", [{"approval_id": a["approval_id"], "decision": "approve"} for a in first.approvals]
    )
    assert done.status == "completed", done.report
    assert net.adapters.wms.get_node(src).status is NodeStatus.CLOSED
    report = done.report
    assert report is not None
    verification = report["verification"]
    assert verification["passed"] is True, verification["reasons"]
    assert verification["nodes"] == [{"node_id": src, "step": 0, "ok": True, "expected": "closed", "actual": "closed"}]
    still = net.adapters.oms.list_orders(OrderFilter(node_ids=[src], statuses=OPEN), limit=10_000)
    assert still, "orders already in work stay at the node"
    assert set(report["stays"]) == {o.id for o in still}
    assert all(why and why != "no reason in the plan" for why in report["stays"].values())
    by_status = {o.id: o.status for o in still}
    for oid, why in report["stays"].items():
        if by_status[oid] in (OrderStatus.RELEASED, OrderStatus.PICKED):
            assert why.startswith(f"already {by_status[oid].value}")
    assert RunStore(net.db, net.clock).get(run_id="run-close").report == report


def test_subset_approval_completes_and_says_what_the_approver_left(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    before = _versions(net)
    first = _start(net, "run-subset", alert=congestion_alert(node))
    assert first.waiting
    approvals = net.gateway.guard.approvals
    decisions = []
    kept: list[str] = []
    proposed = 0
    for card in first.approvals:
        items = approvals.get(card["approval_id"]).items
        proposed += len(items)
        kept += items[:1]
        decisions.append({"approval_id": card["approval_id"], "decision": "approve", "subset": items[:1]})
    assert proposed > len(kept), "the approver leaves most of the orders where they are"

    done = _resume(net, "run-subset", decisions)
    assert done.status == "completed", done.report
    report = done.report
    assert report is not None
    assert report["verification"]["passed"] is True, report["verification"]["reasons"]
    assert report["verification"]["left_by_approver"] == proposed - len(kept)
    left = proposed - len(kept)
    assert report["approval"] == {
        "proposed": proposed,
        "approved": len(kept),
        "left_in_place": left,
        "summary": f"approved {len(kept)} of {proposed}; {left} left in place by the approver",
    }
    after = _versions(net)
    changed = {oid for oid in after if after[oid] != before[oid]}
    assert changed == set(kept)
    left_ids = [oid for oid, why in report["orders"].items() if why.endswith("left in place by the approver")]
    assert len(left_ids) == left
    assert not set(left_ids) & changed


def test_a_closure_run_prices_any_planners_reroute_in_the_closed_world(sqlite_db: Database) -> None:
    net = build_net(sqlite_db)
    src = net.busiest_dc()
    ids = [o.id for o in net.movable(src)][:30]
    call = PlannedCall(
        tool="reroute_orders",
        args={"order_ids": ids, "to_node_id": net.other_dc(src)},  # a planner that did not say "closed"
        reason="move them",
    )
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, FixedPlanner([call])), saver)
        first = runs.start(goal=f"{src} is closed", run_id="run-any-planner")
        plan = runs.state("run-any-planner")["plan"]
    assert plan is not None
    assert plan["steps"][0]["args"]["incident"] == {"closed_node_ids": [src]}
    assert first.waiting
    [card] = first.approvals
    assert card["preview"]["late_before"] == len(ids), "nothing ships from the closed node"


def test_subset_decided_elsewhere_is_read_from_the_approval_store(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    first = _start(net, "run-elsewhere", alert=congestion_alert(node))
    assert first.waiting
    gw = net.gateway
    approver = Actor(kind="user", id="amir", roles=frozenset({"approver"}))
    proposed = kept = 0
    for card in first.approvals:
        items = gw.guard.approvals.get(card["approval_id"]).items
        proposed += len(items)
        kept += len(items[:2])
        gw.decide(card["approval_id"], approver=approver, decision="approve", subset=items[:2])  # API, Slack, console
    with open_checkpointer(net.db) as saver:
        done = ExceptionRuns(deps_for(net, PlaybookPlanner()), saver).continue_run("run-elsewhere")
    assert done.status == "completed", done.report
    assert done.report is not None
    assert done.report["approval"]["summary"] == (
        f"approved {kept} of {proposed}; {proposed - kept} left in place by the approver"
    )
