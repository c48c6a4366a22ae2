"""Undo a run: an exception run of kind ``undo`` whose plan is the compensating calls of what the
earlier run executed.

Undo is not a back door: the compensating calls go through the same graph and gateway as any plan
(simulated, judged by policy, approved by a person, executed once), and the undo run is itself
audited and can be undone. Only calls whose audit rows say they executed (not replayed) are undone.

What this module must never do: execute anything itself, or undo a run that is still in progress.
"""

from __future__ import annotations

import dataclasses

from agents.undo import UndoPlanner, undo_triage
from core.errors import Conflict, NotFound
from graphs.exception import ExceptionRuns, RunResult
from graphs.runs import RunStore
from tools.executed import executed_calls

FINISHED = frozenset({"completed", "partially_completed", "failed", "rejected", "nothing_to_do"})


def start_undo(runs: ExceptionRuns, store: RunStore, run_id: str) -> RunResult:
    """Start the undo run of ``run_id`` on ``runs``'s checkpointer and dependencies; it parks at the
    approval gate like any run whose calls policy wants a person for."""
    target = store.get(run_id=run_id)  # NotFound for an unknown run
    if target.status not in FINISHED and target.status != "awaiting_approval":
        raise Conflict(f"run {run_id} is {target.status}; undo it once it has stopped", run_id=run_id)
    deps = runs.deps
    executed = executed_calls(deps.gateway.guard.audit, run_id, tools=deps.gateway.writes)
    if not executed:
        raise NotFound("executed change of run", run_id)
    triage = undo_triage(run_id, executed)
    undo_deps = dataclasses.replace(
        deps,
        planner=UndoPlanner(run_id=run_id, executed=executed, writes=deps.gateway.writes),
        triage_goal=lambda goal, env: triage,
    )
    return ExceptionRuns(undo_deps, runs.checkpointer).start(goal=f"undo {run_id}")
