"""``ExceptionRuns.continue_run``: a parked run carried on from decisions recorded elsewhere (the HTTP
API calls ``ToolGateway.decide``; the graph only reads the approval store), on SQLite and PostgreSQL:
full and partial approval, rejection, expiry, edits, repeated and concurrent continuation."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from core.errors import NotFound
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunResult
from graphs.runs import RunStore
from guardrails.calls import Actor
from tests.graphs.support import SplitReroutePlanner, congestion_alert, deps_for
from tests.graphs.test_exception_graph import assert_exactly_once, executed_per_call, versions
from tests.tools.conftest import Net
from tools.gateway import RunLedger

Congested = tuple[Net, str, str]
API_APPROVER = Actor(kind="user", id="ana", roles=frozenset({"approver"}))
EDITOR = Actor(kind="user", id="ed", roles=frozenset({"approver"}))


def start_parked(net: Net, node: str, target: str, run_id: str) -> RunResult:
    with open_checkpointer(net.db) as saver:
        started = ExceptionRuns(deps_for(net, SplitReroutePlanner(target)), saver).start(
            alert=congestion_alert(node), run_id=run_id
        )
    assert started.waiting
    assert len(started.approvals) == 2
    return started


def decide(net: Net, approval_id: str, decision: Any, reason: str | None = None) -> None:
    """As ``POST /v1/approvals/{id}`` does: straight through the gateway, no graph involved."""
    net.gateway.decide(approval_id, approver=API_APPROVER, decision=decision, reason=reason)


def continue_in_new_process(net: Net, target: str, run_id: str, **kw: Any) -> RunResult:
    with open_checkpointer(net.db) as saver:
        return ExceptionRuns(deps_for(net, SplitReroutePlanner(target)), saver, **kw).continue_run(run_id)


def checkpoint_id(net: Net, target: str, run_id: str) -> str:
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, SplitReroutePlanner(target)), saver)
        config = runs.graph.get_state({"configurable": {"thread_id": f"exception:{run_id}"}}).config
    return str(config["configurable"]["checkpoint_id"])


def test_approved_elsewhere_then_continue_completes_once(congested: Congested) -> None:
    net, node, target = congested
    before = versions(net)
    started = start_parked(net, node, target, "run-api-1")
    for a in started.approvals:
        decide(net, a["approval_id"], "approve")
    done = continue_in_new_process(net, target, "run-api-1")
    assert done.status == "completed", done.report
    report = done.report
    assert report is not None
    assert {s["status"] for s in report["steps"]} == {"executed"}
    # The decisions were read from the approval store, not made by the graph.
    assert [(d["approver"], d["decision"], d["via"]) for d in report["decisions"]] == [
        ("ana", "approve", "approval store")
    ] * 2
    assert RunStore(net.db, net.clock).get(run_id="run-api-1").status == "completed"
    assert_exactly_once(net, "run-api-1", before, report)

    # Again, from yet another process: nothing more happens.
    again = continue_in_new_process(net, target, "run-api-1")
    assert again.status == "completed"
    assert again.report == report
    assert_exactly_once(net, "run-api-1", before, report)


def test_one_approved_one_pending_executes_one_and_parks_on_the_other(congested: Congested) -> None:
    net, node, target = congested
    before = versions(net)
    started = start_parked(net, node, target, "run-api-2")
    first, second = (a["approval_id"] for a in started.approvals)
    decide(net, first, "approve")
    waiting = continue_in_new_process(net, target, "run-api-2")
    assert waiting.waiting
    assert [a["approval_id"] for a in waiting.approvals] == [second]
    assert RunStore(net.db, net.clock).get(run_id="run-api-2").status == "awaiting_approval"
    moved = net.gateway.guard.approvals.get(first).items
    untouched = net.gateway.guard.approvals.get(second).items
    after = versions(net)
    assert all(after[o] == before[o] + 1 for o in moved)
    assert all(after[o] == before[o] for o in untouched)

    # Still pending: continuing changes nothing, not even the checkpoint.
    cp = checkpoint_id(net, target, "run-api-2")
    same = continue_in_new_process(net, target, "run-api-2")
    assert same == waiting
    assert checkpoint_id(net, target, "run-api-2") == cp

    decide(net, second, "approve")
    done = continue_in_new_process(net, target, "run-api-2")
    assert done.status == "completed", done.report
    assert done.report is not None
    assert [s["status"] for s in done.report["steps"]] == ["executed", "executed"]
    assert_exactly_once(net, "run-api-2", before, done.report)


def test_rejected_elsewhere(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    before = net.snapshot()
    started = start_parked(net, node, target, "run-api-3")
    for a in started.approvals:
        decide(net, a["approval_id"], "reject", reason="not during peak")
    done = continue_in_new_process(net, target, "run-api-3")
    assert done.status == "rejected"
    assert done.report is not None
    assert [(s["status"], s["reasons"]) for s in done.report["steps"]] == [("rejected", ["not during peak"])] * 2
    assert net.snapshot() == before


def test_one_approved_one_rejected_is_partially_completed(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    started = start_parked(net, node, target, "run-api-4")
    first, second = (a["approval_id"] for a in started.approvals)
    decide(net, first, "approve")
    decide(net, second, "reject", reason="keep these where they are")
    done = continue_in_new_process(net, target, "run-api-4")
    assert done.status == "partially_completed"
    assert done.report is not None
    assert [s["status"] for s in done.report["steps"]] == ["executed", "rejected"]


def test_expired_approvals_are_recorded_as_expired(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    before = net.snapshot()
    start_parked(net, node, target, "run-api-5")
    net.clock.advance(timedelta(days=2))
    done = continue_in_new_process(net, target, "run-api-5")
    assert done.status == "failed"
    assert done.report is not None
    assert {s["status"] for s in done.report["steps"]} == {"expired"}
    assert net.snapshot() == before


def test_an_edited_request_is_followed_to_its_successor(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    started = start_parked(net, node, target, "run-api-6")
    first = started.approvals[0]["approval_id"]
    req = net.gateway.guard.approvals.get(first)
    args = dict(req.arguments)  # type: ignore[arg-type]
    args["order_ids"] = list(args["order_ids"])[:-1]
    edited = net.gateway.edit(first, args, editor=EDITOR, run=RunLedger(run_id="run-api-6"))
    assert edited.approval_id is not None
    assert edited.approval_id != first
    waiting = continue_in_new_process(net, target, "run-api-6")
    assert waiting.waiting
    assert [a["approval_id"] for a in waiting.approvals] == [edited.approval_id, started.approvals[1]["approval_id"]]
    decide(net, edited.approval_id, "approve")
    decide(net, started.approvals[1]["approval_id"], "approve")
    done = continue_in_new_process(net, target, "run-api-6")
    assert done.report is not None
    assert [s["status"] for s in done.report["steps"]] == ["executed", "executed"]
    # Verification compares with the plan as first made, so the order edited out shows up there.
    assert done.status == "partially_completed"
    assert done.report["verification"]["orders_failed"][0]["order_id"] == req.items[-1]
    assert done.report["steps"][0]["approval_id"] == edited.approval_id
    assert done.report["steps"][0]["done"] == len(args["order_ids"])


def test_a_run_claimed_by_another_process_is_left_to_it_until_its_lease_runs_out(
    sqlite_congested: Congested,
) -> None:
    net, node, target = sqlite_congested
    before = versions(net)
    started = start_parked(net, node, target, "run-api-7")
    for a in started.approvals:
        decide(net, a["approval_id"], "approve")
    store = RunStore(net.db, net.clock)
    assert store.claim(run_id="run-api-7")  # another process took it ... and died
    assert not store.claim(run_id="run-api-7")
    left = continue_in_new_process(net, target, "run-api-7", lease_s=60)
    assert left.waiting
    assert versions(net) == before
    net.clock.advance(timedelta(seconds=61))
    done = continue_in_new_process(net, target, "run-api-7", lease_s=60)
    assert done.status == "completed", done.report
    assert done.report is not None
    assert_exactly_once(net, "run-api-7", before, done.report)


def test_concurrent_continuations_execute_once(congested: Congested) -> None:
    net, node, target = congested
    before = versions(net)
    started = start_parked(net, node, target, "run-api-8")
    for a in started.approvals:
        decide(net, a["approval_id"], "approve")
    barrier = threading.Barrier(2)
    results: list[RunResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with open_checkpointer(net.db) as saver:
                runs = ExceptionRuns(deps_for(net, SplitReroutePlanner(target)), saver)
                barrier.wait(timeout=30)
                results.append(runs.continue_run("run-api-8"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 2
    final = continue_in_new_process(net, target, "run-api-8")
    assert final.status == "completed", final.report
    assert final.report is not None
    assert_exactly_once(net, "run-api-8", before, final.report)
    assert set(executed_per_call(net, "run-api-8").values()) == {1}
    # The graph's own bookkeeping counts each decision and each step once.
    assert len(final.report["decisions"]) == 2
    assert RunStore(net.db, net.clock).get(run_id="run-api-8").report == final.report


def test_continue_on_an_unknown_run_is_not_found(sqlite_congested: Congested) -> None:
    net, _, target = sqlite_congested
    with pytest.raises(NotFound):
        continue_in_new_process(net, target, "nope")
