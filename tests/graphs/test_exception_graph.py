"""The exception graph end to end on durable checkpoints, on SQLite and PostgreSQL: approval gates,
resume from a new graph instance, crashes at every point, exactly-once effects, final statuses."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from agents.plan import PlannedCall
from agents.playbooks import PlaybookPlanner
from graphs.checkpoints import open_checkpointer
from graphs.exception import Budgets, ExceptionRuns, RunDeps
from graphs.runs import RunStore
from guardrails.approvals import ApprovalStatus
from guardrails.audit import EventType
from guardrails.calls import Actor
from tests.graphs.support import (
    APPROVER,
    CrashingGateway,
    FixedPlanner,
    SimulatedCrash,
    SplitReroutePlanner,
    congestion_alert,
    deps_for,
)
from tests.tools.conftest import Net
from tools.gateway import Outcome, Proposer, RunLedger, ToolGateway

Congested = tuple[Net, str, str]


def approve_all(result: Any) -> list[dict[str, Any]]:
    return [{"approval_id": a["approval_id"], "decision": "approve"} for a in result.approvals]


def versions(net: Net) -> dict[str, int]:
    orders, _ = net.snapshot()
    return {str(r[0]): int(r[4]) for r in orders}  # type: ignore[call-overload]


def executed_per_call(net: Net, run_id: str, tool: str = "reroute_orders") -> Counter[str]:
    events = net.gateway.guard.audit.list(run_id=run_id, event_type=EventType.EXECUTED)
    return Counter(e.call_id or "" for e in events if e.tool == tool)


def assert_exactly_once(net: Net, run_id: str, before: dict[str, int], report: dict[str, Any]) -> None:
    """Every order the run moved has its version bumped exactly once; nothing else changed; one
    ``executed`` audit event per executed step."""
    after = versions(net)
    moved = {oid for oid, what in report["orders"].items() if what.endswith(": done")}
    assert moved
    assert {oid for oid in after if after[oid] != before[oid]} == moved
    assert all(after[oid] == before[oid] + 1 for oid in moved)
    done_steps = [s for s in report["steps"] if s["status"] in ("executed", "replayed")]
    per_call = executed_per_call(net, run_id)
    assert len(per_call) == len(done_steps)
    assert set(per_call.values()) == {1}


def test_congestion_run_parks_for_approval_and_a_new_instance_resumes_it(congested: Congested) -> None:
    net, node, _ = congested
    deps = deps_for(net, PlaybookPlanner())
    before = versions(net)
    with open_checkpointer(net.db) as saver:
        first = ExceptionRuns(deps, saver).start(alert=congestion_alert(node), run_id="run-a")
    assert first.waiting
    assert first.approvals, "a 3-day backlog reroute must need approval"
    card = first.approvals[0]
    assert card["preview"]["affected"] > 25
    assert {"summary", "cost_delta", "late_before", "late_after"} <= set(card["preview"])
    assert card["reasons"]
    assert card["required_roles"] == ["approver"]
    store = RunStore(net.db, net.clock)
    assert store.get(run_id="run-a").status == "awaiting_approval"
    # Nothing that waits for approval has run.
    pending_orders = {oid for a in first.approvals for oid in net.gateway.guard.approvals.get(a["approval_id"]).items}
    assert all(versions(net)[o] == before[o] for o in pending_orders)

    # "Another process": a new checkpointer connection and a new graph instance.
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, PlaybookPlanner()), saver)
        assert runs.result("run-a").waiting
        done = runs.resume("run-a", decisions=approve_all(first), approver=APPROVER)
    assert done.status == "completed", done.report
    report = done.report
    assert report is not None
    typed = done.typed_report
    assert typed is not None
    assert typed.as_dict() == report  # the typed view holds every key the report has
    assert typed.verification is not None
    assert typed.verification.passed is True
    assert {s.status for s in typed.steps} <= {"executed", "replayed"}
    assert [d.approver for d in typed.decisions] == ["amir"] * len(first.approvals)
    assert typed.approval is not None
    assert typed.approval.approved == sum(s.done for s in typed.steps)
    assert store.get(run_id="run-a").status == "completed"
    assert store.get(run_id="run-a").report == report
    assert store.get(run_id="run-a").typed_report == typed  # the runs index reads back the same, typed
    assert_exactly_once(net, "run-a", before, report)
    assert net.gateway.guard.audit.verify().ok


def test_crash_after_approval_before_execution_loses_nothing(congested: Congested) -> None:
    net, node, target = congested
    planner = SplitReroutePlanner(target)
    before = versions(net)
    with open_checkpointer(net.db) as saver:
        started = ExceptionRuns(deps_for(net, planner), saver).start(alert=congestion_alert(node), run_id="run-b")
    assert len(started.approvals) == 2
    crashing = CrashingGateway(net.gateway, before_call=1)
    with open_checkpointer(net.db) as saver, pytest.raises(SimulatedCrash):
        ExceptionRuns(deps_for(net, planner, gateway=crashing), saver).resume(
            "run-b", decisions=approve_all(started), approver=APPROVER
        )
    # The approvals are recorded (in the approval store), nothing executed yet.
    for a in started.approvals:
        assert net.gateway.guard.approvals.get(a["approval_id"]).status == ApprovalStatus.APPROVED
    assert versions(net) == before
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, planner), saver)
        assert runs.result("run-b").status == "running"
        done = runs.proceed("run-b")
    assert done.status == "completed", done.report
    assert done.report is not None
    assert_exactly_once(net, "run-b", before, done.report)


def test_crash_mid_execution_replays_the_done_step_and_runs_the_rest_once(congested: Congested) -> None:
    net, node, target = congested
    planner = SplitReroutePlanner(target)
    before = versions(net)
    with open_checkpointer(net.db) as saver:
        started = ExceptionRuns(deps_for(net, planner), saver).start(alert=congestion_alert(node), run_id="run-c")
    crashing = CrashingGateway(net.gateway, after_call=1)
    with open_checkpointer(net.db) as saver, pytest.raises(SimulatedCrash):
        ExceptionRuns(deps_for(net, planner, gateway=crashing), saver).resume(
            "run-c", decisions=approve_all(started), approver=APPROVER
        )
    # The first step's effect happened before the crash.
    first_ids = net.gateway.guard.approvals.get(started.approvals[0]["approval_id"]).items
    assert all(versions(net)[o] == before[o] + 1 for o in first_ids)
    with open_checkpointer(net.db) as saver:
        done = ExceptionRuns(deps_for(net, planner), saver).proceed("run-c")
    assert done.status == "completed", done.report
    assert done.report is not None
    assert [s["status"] for s in done.report["steps"]] == ["replayed", "executed"]
    assert_exactly_once(net, "run-c", before, done.report)
    notes = net.gateway.guard.audit.list(run_id="run-c", event_type=EventType.NOTE)
    assert any("already executed" in " ".join(n.reasons) for n in notes)
    # Resuming a finished run changes nothing.
    with open_checkpointer(net.db) as saver:
        again = ExceptionRuns(deps_for(net, planner), saver).proceed("run-c")
    assert again.status == "completed"
    assert_exactly_once(net, "run-c", before, done.report)


class CrashAfterFirstProposal(ToolGateway):
    def __init__(self, base: ToolGateway) -> None:
        super().__init__(env=base.env, guard=base.guard, reads=base.reads, writes=base.writes)
        self.calls = 0

    def propose(
        self,
        name: str,
        raw_args: Any,
        *,
        actor: Actor,
        run: RunLedger,
        idempotency_key: str,
        proposer: Proposer = Proposer(),
    ) -> Outcome:
        self.calls += 1
        outcome = super().propose(
            name, raw_args, actor=actor, run=run, idempotency_key=idempotency_key, proposer=proposer
        )
        if self.calls == 1:
            raise SimulatedCrash("crash after the first proposal")
        return outcome


def test_crash_while_proposing_does_not_ask_twice(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    planner = SplitReroutePlanner(target)
    with open_checkpointer(net.db) as saver, pytest.raises(SimulatedCrash):
        ExceptionRuns(deps_for(net, planner, gateway=CrashAfterFirstProposal(net.gateway)), saver).start(
            alert=congestion_alert(node), run_id="run-d"
        )
    assert len(net.gateway.guard.approvals.list_pending(run_id="run-d")) == 1
    with open_checkpointer(net.db) as saver:
        waiting = ExceptionRuns(deps_for(net, planner), saver).proceed("run-d")
    assert waiting.waiting
    assert len(waiting.approvals) == 2
    assert len(net.gateway.guard.approvals.list_pending(run_id="run-d")) == 2


def test_rejected_run_changes_nothing(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    before = net.snapshot()
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, SplitReroutePlanner(target)), saver)
        started = runs.start(alert=congestion_alert(node), run_id="run-e")
        decisions = [
            {"approval_id": a["approval_id"], "decision": "reject", "reason": "not today"} for a in started.approvals
        ]
        done = runs.resume("run-e", decisions=decisions, approver=APPROVER)
    assert done.status == "rejected"
    assert done.report is not None
    assert {s["status"] for s in done.report["steps"]} == {"rejected"}
    assert net.snapshot() == before


def test_approver_without_the_role_leaves_the_run_waiting(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    before = net.snapshot()
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, SplitReroutePlanner(target)), saver)
        started = runs.start(alert=congestion_alert(node), run_id="run-f")
        again = runs.resume("run-f", decisions=approve_all(started), approver={"id": "vic", "roles": ["viewer"]})
    assert again.waiting
    assert {a["approval_id"] for a in again.approvals} == {a["approval_id"] for a in started.approvals}
    assert net.snapshot() == before


def test_step_budget_stops_the_run_before_anything_is_proposed(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    before = net.snapshot()
    deps = deps_for(net, SplitReroutePlanner(target, parts=3), budgets=Budgets(max_steps=2))
    with open_checkpointer(net.db) as saver:
        done = ExceptionRuns(deps, saver).start(alert=congestion_alert(node), run_id="run-g")
    assert done.status == "failed"
    typed = done.typed_report
    assert typed is not None
    assert typed.stop is not None
    assert "budget allows 2" in typed.stop
    assert typed.as_dict() == done.report
    assert net.snapshot() == before
    assert not net.gateway.guard.approvals.list_pending(run_id="run-g")


def test_cancel_is_not_on_the_allow_list(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    victims = [o.id for o in net.small_safe_orders(2)]
    planner = FixedPlanner([PlannedCall(tool="cancel_orders", args={"order_ids": victims}, reason="injected")])
    before = net.snapshot()
    with open_checkpointer(net.db) as saver:
        done = ExceptionRuns(deps_for(net, planner), saver).start(alert=congestion_alert(node), run_id="run-h")
    assert done.status == "nothing_to_do"
    assert done.report is not None
    assert any("cancel_orders" in n and "allow-list" in n for n in done.report["notes"])
    assert net.snapshot() == before


def test_goal_the_grammar_does_not_understand_is_nothing_to_do(sqlite_congested: Congested) -> None:
    net, _, _ = sqlite_congested
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, PlaybookPlanner()), saver)
        done = runs.start(goal="please make everything better", run_id="run-i")
        assert done.status == "nothing_to_do"
        with pytest.raises(Exception, match="already exists"):
            runs.start(goal="again", run_id="run-i")
    assert RunStore(net.db, net.clock).list()[0].id == "run-i"


def test_run_deps_reach_nodes_through_the_runtime_context(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    deps = deps_for(net, SplitReroutePlanner(target))
    assert isinstance(deps, RunDeps)
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps, saver)
        runs.start(alert=congestion_alert(node), run_id="run-j")
        state = runs.state("run-j")
    # Small state: ids, plan, decisions, not tables or live objects.
    assert set(state) <= {
        "run_id", "source", "alert", "goal", "triage", "facts", "plan", "steps", "pending_decisions", "approver",
        "decisions", "notes", "ledger", "active_s", "verification", "stop", "status", "report",
    }  # fmt: skip
    assert all(isinstance(s["key"], str) and s["key"].startswith("run:run-j:step:") for s in state["steps"])
