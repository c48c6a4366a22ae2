"""A write whose process is killed mid-call: the resumed call (another process) does it exactly once.

The worker process runs a real write tool through the gateway; the tool does its adapter effect and
then the process SIGKILLs itself - after the effect, before the idempotency key is completed, the
window a crash (OOM kill, a node lost) hits. The run resumes in this process with the same key and
arguments, as a recovered DBOS step would: it must neither wait forever on a claim nobody holds nor
do the effect a second time, and its stored result must be the one a crash-free call stores.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, datetime, time
from typing import Any

from core.clock import FixedClock
from core.db import Database, make_database
from core.db.tables import IdempotencyKeyRow
from core.domain import OrderStatus
from core.errors import InsufficientInventory
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from tests.tools.conftest import AGENT, SPEC, build_net
from tools.adapters.embedded import embedded_adapters
from tools.base import OrderSetArgs, ToolEnv, WriteResult, WriteTool
from tools.gateway import Guard, RunLedger, ToolGateway
from tools.write import WRITE_TOOLS, HoldOrders

KEY = "crash-hold-1"


class _HoldThenDie(HoldOrders):
    """``hold_orders`` whose process dies right after the orders are held."""

    def execute(self, env: ToolEnv, args: OrderSetArgs) -> WriteResult:
        result = super().execute(env, args)
        os.kill(os.getpid(), signal.SIGKILL)
        return result  # pragma: no cover - never reached


def _gateway(url: str, *, wait_s: float, crash: bool = False) -> ToolGateway:
    """What one worker process builds: its own engine on the same database."""
    db = make_database(url=url)
    clock = FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC))
    idem = IdempotencyStore(db, clock, wait_s=wait_s)
    guard = Guard(policy=PolicyEngine.from_path(None), audit=AuditTrail(db, Redactor(key=b"k" * 32), clock),
                  approvals=ApprovalStore(db, clock), idempotency=idem)  # fmt: skip
    writes: dict[str, WriteTool[Any]] = {t.name: t for t in WRITE_TOOLS}
    if crash:
        writes["hold_orders"] = _HoldThenDie()
    return ToolGateway(ToolEnv(embedded_adapters(db, clock), clock), guard, writes=writes)


def _worker(url: str, args: dict[str, Any]) -> None:
    gateway = _gateway(url, wait_s=5, crash=True)
    gateway.propose("hold_orders", args, actor=AGENT, run=RunLedger(run_id="run-1"), idempotency_key=KEY)


def _killed_mid_call(url: str, args: dict[str, Any]) -> None:
    proc = multiprocessing.get_context("fork").Process(target=_worker, args=(url, args))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == -signal.SIGKILL, proc.exitcode


def test_a_write_killed_mid_call_is_done_once_when_the_run_resumes(db: Database) -> None:
    net = build_net(db)
    ids = [o.id for o in net.small_safe_orders(2)]
    args = {"order_ids": ids, "reason": "check"}
    url = db.engine.url.render_as_string(hide_password=False)
    db.engine.dispose()  # no pooled connection may be shared with the child
    _killed_mid_call(url, args)

    resumed = _gateway(url, wait_s=1).propose(
        "hold_orders", args, actor=AGENT, run=RunLedger(run_id="run-1"), idempotency_key=KEY
    )
    assert resumed.status == "executed", resumed.reasons
    assert resumed.result is not None
    assert sorted(resumed.result["done"]) == sorted(ids)  # held by this call, not "already held"
    assert all(o.status is OrderStatus.HELD for o in net.adapters.oms.get_orders(ids))
    with db.begin() as s:
        row = s.get(IdempotencyKeyRow, KEY)
        assert row is not None
        assert row.status == "done"
    again = net.gateway.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key=KEY)
    assert again.status == "replayed"
    assert again.result == resumed.result


class _HoldThenFail(HoldOrders):
    """``hold_orders`` that fails after its adapter call has written."""

    def execute(self, env: ToolEnv, args: OrderSetArgs) -> WriteResult:
        super().execute(env, args)
        raise InsufficientInventory("a later step of the call failed after the hold")


def test_a_call_that_fails_after_writing_leaves_no_effect_and_can_run_again(db: Database) -> None:
    """The effect and the key are one transaction: a failure rolls back the adapter's writes with
    the claim, so the retry's hold is the only one (before, the hold stayed and the key was freed)."""
    net = build_net(db)
    ids = [o.id for o in net.small_safe_orders(2)]
    args = {"order_ids": ids, "reason": "check"}
    before = net.snapshot()
    failing = ToolGateway(
        net.gateway.env, net.gateway.guard, writes={**net.gateway.writes, "hold_orders": _HoldThenFail()}
    )
    out = failing.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key="fail-hold-1")
    assert out.status == "failed", out.reasons
    assert net.snapshot() == before
    retry = net.gateway.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key="fail-hold-1")
    assert retry.status == "executed", retry.reasons
    assert retry.result is not None
    assert sorted(retry.result["done"]) == sorted(ids)
