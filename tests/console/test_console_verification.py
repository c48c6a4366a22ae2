"""The console's run page shows how the run was verified, and what an approver left in place."""

from __future__ import annotations

from agents.playbooks.planner import PlaybookPlanner
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunDeps
from tests.console.conftest import RUN_ID, Console
from tests.graphs.support import APPROVER


def test_run_page_shows_verification_and_the_approvers_subset(console: Console) -> None:
    c = console.client("admin")
    assert 'data-testid="verification"' not in c.get(f"/console/runs/{RUN_ID}").text, "nothing verified yet"
    actx = console.api.actx
    decisions = []
    proposed = 0
    for approval_id in console.approval_ids():
        items = actx.gateway.guard.approvals.get(approval_id).items
        proposed += len(items)
        decisions.append({"approval_id": approval_id, "decision": "approve", "subset": items[:1]})
    deps = RunDeps(gateway=actx.gateway, planner=PlaybookPlanner(), runs=console.store, requested_by="olivia")
    with open_checkpointer(actx.db) as saver:
        done = ExceptionRuns(deps, saver).resume(RUN_ID, decisions=decisions, approver=APPROVER)
    assert done.status == "completed", done.report
    page = c.get(f"/console/runs/{RUN_ID}").text
    assert 'data-testid="verification">passed<' in page
    kept = len(decisions)
    assert f"approved {kept} of {proposed}; {proposed - kept} left in place by the approver" in page
