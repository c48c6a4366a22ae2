"""Playbooks carry the incident into their calls, a closure plan marks the node closed first, and
verification tells an approver's choice from a fault."""

from __future__ import annotations

from agents.playbooks import PlaybookPlanner
from agents.triage import triage_goal
from agents.verify import verify
from core.domain import CarrierStatus, NodeStatus
from tests.agents.conftest import AGENT, apply_plan
from tests.tools.conftest import APPROVER, Net
from tools.gateway import Outcome
from tools.write import ChangeCarrier, ChangeCarrierArgs, RerouteArgs, RerouteOrders


def test_closure_plan_marks_an_open_node_closed_first(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    triage = triage_goal(f"{src} is closed", net.gateway.env)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    first, *rest = plan.steps
    assert first.tool == "set_node_status"
    assert first.args == {
        "node_id": src,
        "status": "closed",
        "reason": f"{src} is closed: stop sourcing new orders there",
    }
    assert rest
    assert {s.tool for s in rest} == {"reroute_orders"}
    assert all(s.args["incident"] == {"closed_node_ids": [src]} for s in rest)
    preview = RerouteOrders().simulate(net.gateway.env, RerouteArgs.model_validate(rest[0].args))
    assert preview.late_before == len(preview.items)

    applied = apply_plan(net, plan)
    assert [o.status if o else None for o in applied.outcomes] == ["executed"] * len(plan.steps)
    assert net.adapters.wms.get_node(src).status is NodeStatus.CLOSED
    report = verify(plan, applied.outcomes, net.gateway.env, scope=triage.scope)
    assert report.passed, report.reasons
    assert [(c.node_id, c.ok) for c in report.nodes] == [(src, True)]
    assert report.stays
    assert set(report.stays) >= set(plan.not_planned) & set(report.stays)


def test_closure_plan_on_a_node_already_closed_does_not_ask_to_close_it(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    plan = PlaybookPlanner().plan(triage_goal(f"{src} is closed", net.gateway.env), net.gateway.env)
    assert plan.steps
    assert "set_node_status" not in {s.tool for s in plan.steps}


def test_outage_plan_previews_the_outage_the_systems_do_not_show_yet(sqlite_net: Net) -> None:
    net = sqlite_net
    states = ["GA", "TX", "NJ", "CA"]
    assert net.adapters.carriers.get_carrier("RDG").status is not CarrierStatus.OUTAGE
    plan = PlaybookPlanner().plan(triage_goal("carrier RDG outage in GA, TX, NJ, CA", net.gateway.env), net.gateway.env)
    assert plan.steps
    late_before = late_after = 0
    for step in plan.steps:
        assert step.args["incident"] == {"carrier_outages": {"RDG": sorted(states)}}
        preview = ChangeCarrier().simulate(net.gateway.env, ChangeCarrierArgs.model_validate(step.args))
        assert preview.late_before == len(preview.items), "on a down lane every order is late before the change"
        late_before += preview.late_before
        late_after += preview.late_after
    assert late_after < late_before


def test_orders_an_approver_left_out_are_not_failures(sqlite_net: Net) -> None:
    net = sqlite_net
    src = net.busiest_dc()
    net.adapters.wms.set_node_status(src, NodeStatus.CLOSED)
    triage = triage_goal(f"{src} is closed", net.gateway.env)
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    step = plan.steps[0]
    ids = step.args["order_ids"]
    assert len(ids) > 2
    run = net.run("run-subset")
    out = net.gateway.propose(step.tool, step.args, actor=AGENT, run=run, idempotency_key="s0")
    assert out.status == "awaiting_approval"
    assert out.approval_id is not None
    net.gateway.decide(out.approval_id, approver=APPROVER, decision="approve", subset=ids[:2])
    done = net.gateway.execute_approved(out.approval_id, actor=APPROVER, run=run)
    assert done.status == "executed"
    assert done.result is not None
    left_out = ids[2:]
    # The run graph hands verify what the approver left out; without it those orders read as faults.
    outcomes: list[Outcome | None] = [
        done.model_copy(update={"result": {**done.result, "left_out": left_out}}),
        *[None] * (len(plan.steps) - 1),
    ]
    single = plan.model_copy(update={"steps": plan.steps[:1]})
    report = verify(single, outcomes[:1], net.gateway.env, scope=triage.scope)
    assert not report.failed_orders
    assert set(report.left_by_approver) == set(left_out)
    assert report.orders_approved == 2
    assert all(report.stays[oid].startswith("left out of step 0") for oid in left_out)
    unaware = verify(single, [done], net.gateway.env, scope=triage.scope)
    assert len(unaware.failed_orders) == len(left_out), "without the subset they would be counted as failures"
