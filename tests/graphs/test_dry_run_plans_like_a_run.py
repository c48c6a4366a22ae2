"""`orderops run --dry-run` plans through the run's own planning step: the allow-list and the
incident the run knows are applied, so the dry run previews what the approver will see — also
for a planner (a model, say) that did not say the DC is closed."""

from __future__ import annotations

from agents.plan import PlannedCall
from agents.triage import triage_goal
from api.cli_runs import dry_run
from core.db import Database
from graphs.exception import make_plan, preview_numbers, simulate_call
from tests.graphs.support import FixedPlanner, deps_for
from tests.tools.conftest import Net, build_net


def test_dry_run_applies_the_incident_and_the_allow_list(sqlite_db: Database) -> None:
    net: Net = build_net(sqlite_db)
    node = net.busiest_dc()
    target = net.other_dc(node)
    ids = [o.id for o in net.movable(node)][:30]
    planner = FixedPlanner(
        [
            PlannedCall(tool="reroute_orders", args={"order_ids": ids, "to_node_id": target}, reason="move"),
            PlannedCall(tool="cancel_orders", args={"order_ids": ids[:1]}, reason="not allowed"),
        ]
    )
    deps = deps_for(net, planner)
    triage = triage_goal(f"{node} is closed", deps.env)
    report = dry_run(deps, triage)
    plan, notes = make_plan(deps, triage)
    assert [c.tool for c in plan.steps] == ["reroute_orders"]
    assert "incident" in plan.steps[0].args  # the run knows the node is closed
    simulated = simulate_call(deps, plan.steps[0])
    assert not isinstance(simulated, str)
    assert [s["tool"] for s in report["steps"]] == ["reroute_orders"]
    assert report["steps"][0]["preview"] == preview_numbers(simulated[2])
    assert report["notes"] == notes
    assert any("cancel_orders" in n for n in notes)
    # the closed node's orders are late in the "before" world: the preview says so
    assert report["steps"][0]["preview"]["late_before"] > 0
