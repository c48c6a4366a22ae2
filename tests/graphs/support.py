"""Helpers for the graph tests: a congested generated network, run dependencies, crash injection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.plan import Alert, ExceptionKind, Plan, PlannedCall, Triage
from core.domain import REROUTABLE_STATUSES, NodeStatus
from graphs.exception import Budgets, RunDeps
from graphs.runs import RunStore
from guardrails.calls import Actor
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter
from tools.base import ToolEnv
from tools.gateway import Outcome, Proposer, RunLedger, ToolGateway
from tools.write import RerouteArgs, RerouteOrders

APPROVER = {"id": "amir", "roles": ["approver"]}


class SimulatedCrash(RuntimeError):
    """Stands for the process dying at a chosen point."""


def congest(net: Net) -> tuple[str, str]:
    """Congest the busiest DC; returns (congested node, nearest other open DC)."""
    node = net.busiest_dc()
    target = net.other_dc(node)
    wms = net.adapters.wms
    wms.set_node_status(node, NodeStatus.CONGESTED)
    wms.set_backlog(node, wms.get_node(node).daily_capacity * 3)
    return node, target


def congestion_alert(node: str, text: str = "") -> Alert:
    return Alert(id=f"alert-{node}", kind=ExceptionKind.NODE_CONGESTION, labels={"node": node}, text=text)


@dataclass
class SplitReroutePlanner:
    """Test planner: move the congested node's movable orders to ``target`` in ``parts`` calls, each
    big enough to need approval (several steps make a mid-execution crash observable). Orders the
    target cannot take are left out with a reason, so verification can pass."""

    target: str
    parts: int = 2
    name: str = "test-split"

    def plan(self, triage: Triage, env: ToolEnv) -> Plan:
        node = triage.scope.node_ids[0]
        orders = env.adapters.oms.list_orders(
            OrderFilter(node_ids=[node], statuses=sorted(REROUTABLE_STATUSES)), limit=10_000
        )
        tool = RerouteOrders()
        preview = tool.simulate(env, RerouteArgs(order_ids=[o.id for o in orders], to_node_id=self.target))
        ids = preview.affected
        size = -(-len(ids) // self.parts)
        steps = [
            PlannedCall(
                tool="reroute_orders",
                args={"order_ids": ids[i : i + size], "to_node_id": self.target, "reason": f"{node} congested"},
                reason=f"part {i // size + 1} of the reroute away from {node}",
            )
            for i in range(0, len(ids), size)
        ]
        return Plan(
            kind=triage.kind,
            summary=f"reroute {len(ids)} orders",
            steps=steps,
            not_planned=dict(preview.skipped),
            planner=f"test:{self.name}",
        )


@dataclass
class FixedPlanner:
    """Test planner returning the given calls."""

    calls: list[PlannedCall]
    name: str = "test-fixed"

    def plan(self, triage: Triage, env: ToolEnv) -> Plan:
        return Plan(kind=triage.kind, summary="fixed", steps=self.calls, planner=f"test:{self.name}")


class CrashingGateway(ToolGateway):
    """A gateway whose ``execute_approved`` dies before (``before_call`` = n) or after
    (``after_call`` = n) its n-th call (1-based), like a process killed at that moment."""

    def __init__(self, base: ToolGateway, *, before_call: int | None = None, after_call: int | None = None) -> None:
        super().__init__(env=base.env, guard=base.guard, reads=base.reads, writes=base.writes)
        self.before_call = before_call
        self.after_call = after_call
        self.calls = 0

    def execute_approved(
        self, approval_id: str, *, actor: Actor, run: RunLedger, proposer: Proposer = Proposer()
    ) -> Outcome:
        self.calls += 1
        if self.before_call == self.calls:
            raise SimulatedCrash(f"crash before execute_approved #{self.calls}")
        outcome = super().execute_approved(approval_id, actor=actor, run=run, proposer=proposer)
        if self.after_call == self.calls:
            raise SimulatedCrash(f"crash after execute_approved #{self.calls}")
        return outcome


def deps_for(net: Net, planner: Any, *, gateway: ToolGateway | None = None, **kw: Any) -> RunDeps:
    from agents.triage import triage_alert, triage_goal

    return RunDeps(
        gateway=gateway or net.gateway,
        planner=planner,
        triage_alert=triage_alert,
        triage_goal=triage_goal,
        runs=RunStore(net.db, net.clock),
        budgets=kw.pop("budgets", Budgets()),
        **kw,
    )
