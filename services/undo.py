"""Undo a run: an exception run of kind ``undo`` whose plan is the compensating calls of what the
earlier run executed.

Undo is not a back door: the compensating calls go through the same graph and gateway as any plan
(simulated, judged by policy, approved by a person, executed once), and the undo run is itself
audited and can be undone. Only calls whose audit rows say they executed (not replayed) are undone.

What this module must never do: execute anything itself, or undo a run that is still in progress.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.undo import ExecutedCall, UndoPlanner, undo_triage
from core.errors import Conflict, NotFound
from graphs.exception import ExceptionRuns, RunResult
from graphs.runs import RunStore
from guardrails.audit import AuditTrail, EventType
from tools.base import WriteTool

FINISHED = frozenset({"completed", "partially_completed", "failed", "rejected", "nothing_to_do"})


def executed_writes(audit: AuditTrail, writes: dict[str, WriteTool[Any]], run_id: str) -> list[ExecutedCall]:
    """The write calls ``run_id`` executed, oldest first, each once (replays are not new effects)."""
    seen: set[str] = set()
    out: list[ExecutedCall] = []
    for row in audit.list(run_id=run_id, event_type=EventType.EXECUTED):
        if row.tool not in writes or not isinstance(row.result, dict) or row.result.get("replayed"):
            continue
        key = row.call_id or row.event_id
        if key in seen or not row.result.get("done"):
            continue
        seen.add(key)
        result = {k: v for k, v in row.result.items() if k != "replayed"}
        out.append(ExecutedCall(call_id=key, tool=row.tool, arguments=dict(row.arguments or {}), result=result))
    return out


def start_undo(runs: ExceptionRuns, store: RunStore, run_id: str) -> RunResult:
    """Start the undo run of ``run_id`` on ``runs``'s checkpointer and dependencies; it parks at the
    approval gate like any run whose calls policy wants a person for."""
    target = store.get(run_id=run_id)  # NotFound for an unknown run
    if target.status not in FINISHED and target.status != "awaiting_approval":
        raise Conflict(f"run {run_id} is {target.status}; undo it once it has stopped", run_id=run_id)
    deps = runs.deps
    executed = executed_writes(deps.gateway.guard.audit, deps.gateway.writes, run_id)
    if not executed:
        raise NotFound("executed change of run", run_id)
    triage = undo_triage(run_id, executed)
    undo_deps = dataclasses.replace(
        deps,
        planner=UndoPlanner(run_id=run_id, executed=executed, writes=deps.gateway.writes),
        triage_goal=lambda goal, env: triage,
    )
    return ExceptionRuns(undo_deps, runs.checkpointer).start(goal=f"undo {run_id}")
