"""Scenario helpers: a generated network with the full gateway, and a plan applied through it the
way a person would (propose each step; approve what waits for approval; execute it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agents.plan import Plan
from core.db import Database
from guardrails.calls import Actor
from tests.tools.conftest import APPROVER, Net, build_net
from tools.gateway import Outcome

AGENT = Actor(kind="agent", id="run-agents", roles=frozenset(), on_behalf_of="olivia")


@dataclass
class Applied:
    outcomes: list[Outcome | None] = field(default_factory=list)
    first_status: list[str] = field(default_factory=list)


def apply_plan(net: Net, plan: Plan, *, run_id: str = "run-agents", approver: Actor = APPROVER) -> Applied:
    """Each step in turn: propose; if parked, approve as ``approver`` and execute the approval."""
    run = net.run(run_id)
    applied = Applied()
    for i, step in enumerate(plan.steps):
        out = net.gateway.propose(step.tool, step.args, actor=AGENT, run=run, idempotency_key=f"{run_id}:{i}")
        applied.first_status.append(out.status)
        if out.status == "awaiting_approval":
            assert out.approval_id is not None
            net.gateway.decide(out.approval_id, approver=approver, decision="approve", reason="looks right")
            out = net.gateway.execute_approved(out.approval_id, actor=approver, run=run)
        applied.outcomes.append(out)
    return applied


@pytest.fixture
def sqlite_net(sqlite_db: Database) -> Net:
    return build_net(sqlite_db)


@pytest.fixture
def net(db: Database) -> Net:
    return build_net(db)
