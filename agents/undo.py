"""The undo planner: put back what an earlier run changed, by its tools' own compensating calls.

It plans only. The compensating calls are ordinary write calls: the run that carries them out
simulates them, policy judges them and a person approves them like any other, and each executes
once under its step's idempotency key. What cannot be undone (a cancel, a notification) is listed
with the reason instead of being guessed at.

What this module must never do: read or write the network itself, or plan a call no tool names as
its compensation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.plan import ExceptionKind, Plan, PlannedCall, Scope, Triage
from tools.base import ToolEnv, WriteResult, WriteTool
from tools.executed import ExecutedCall


def undo_triage(run_id: str, executed: Sequence[ExecutedCall]) -> Triage:
    """The triage of an undo: its scope is the orders the run changed, nothing else."""
    nodes = sorted({str(n) for c in executed if c.tool == "set_node_status" for n in c.result.get("done", [])})
    orders = sorted({str(o) for c in executed if c.tool != "set_node_status" for o in c.result.get("done", [])})
    return Triage(
        kind=ExceptionKind.UNDO,
        scope=Scope(order_ids=orders, node_ids=nodes),
        summary=f"undo of run {run_id}: {len(executed)} executed call(s), {len(orders)} order(s)",
        source="goal",
        quoted_text=f"undo {run_id}",
    )


@dataclass
class UndoPlanner:
    """Plans the compensating calls of ``executed``, newest first (so chained moves unwind in order)."""

    run_id: str
    executed: Sequence[ExecutedCall]
    writes: Mapping[str, WriteTool[Any]]
    name: str = "undo"

    def plan(self, triage: Triage, env: ToolEnv) -> Plan:
        steps: list[PlannedCall] = []
        not_planned: dict[str, str] = {}
        for call in reversed(self.executed):
            tool = self.writes.get(call.tool)
            result = WriteResult.model_validate(dict(call.result))
            comps = []
            if tool is not None:
                comps = tool.compensations(tool.args_model.model_validate(dict(call.arguments)), result)
            if not comps:
                for oid in result.done:
                    not_planned.setdefault(oid, f"{call.tool} has no compensating call; it cannot be undone")
            reason = f"undo {call.tool} of run {self.run_id} ({call.call_id})"
            steps.extend(PlannedCall(tool=c.tool, args=c.args, reason=reason) for c in comps)
        steps = self._node_status_first(steps, env, not_planned)
        return Plan(
            kind=ExceptionKind.UNDO,
            summary=f"undo run {self.run_id}: {len(steps)} compensating call(s)"
            + (f", {len(not_planned)} left for now (see why)" if not_planned else ""),
            steps=steps,
            not_planned=not_planned,
            planner="undo:compensation",
        )

    @staticmethod
    def _node_status_first(steps: list[PlannedCall], env: ToolEnv, not_planned: dict[str, str]) -> list[PlannedCall]:
        """Reopen before moving back. Every step is simulated on today's network before anyone
        approves, so a reroute back to a node the run closed would preview as "cannot move". While a
        node must change status first, this undo does only that; orders wait for the next undo,
        which finds the node open. A status already back where the undo would put it is skipped."""
        wms = env.adapters.wms
        status_steps = [
            s
            for s in steps
            if s.tool == "set_node_status" and wms.get_node(str(s.args["node_id"])).status != s.args["status"]
        ]
        if not status_steps:
            return [s for s in steps if s.tool != "set_node_status"]
        nodes = ", ".join(sorted({str(s.args["node_id"]) for s in status_steps}))
        for s in steps:
            if s.tool != "set_node_status":
                for oid in s.args.get("order_ids", []):
                    not_planned.setdefault(
                        str(oid), f"waits until {nodes} changes status back: run the undo again once this one is done"
                    )
        return status_steps
