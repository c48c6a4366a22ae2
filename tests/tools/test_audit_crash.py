"""A write's effect and its EXECUTED audit event: a crash never leaves one without the other.

Undo (``tools.executed``), eval capture and an order's history find a run's effects only through
their EXECUTED rows, so an effect committed without its row is an effect nobody can see or undo,
and the trail stops being a record of every call. The windows tried here: the process killed right
after the effect's transaction committed (before anything else runs), the EXECUTED append itself
failing once, and that append succeeding inside the effect's transaction which then rolls back
(the anchor must not have signed the rolled-back row). Each time the call is then repeated with
the same idempotency key, as a resumed run does; in the end the orders are held once, the trail
has exactly one EXECUTED event for the effect, undo sees it, and the chain verifies.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from datetime import UTC, datetime, time
from typing import Any

import pytest

from core import changes
from core.clock import FixedClock
from core.db import Database, make_database
from core.domain import OrderStatus
from guardrails.anchor import AuditAnchor, CheckpointSigner, MemoryAnchorSink
from guardrails.audit import AuditEvent, AuditRecord, AuditTrail, EventType
from guardrails.idempotency import IdempotencyStore
from tests.tools.conftest import AGENT, SPEC, Net, build_net, net_on
from tools.executed import executed_calls
from tools.gateway import Guard, RunLedger, ToolGateway

KEY = "audit-crash-hold-1"


def _assert_recorded_once(net: Net, ids: list[str], trail: AuditTrail | None = None) -> None:
    """The effect happened once and the trail says so once, in a chain that verifies."""
    trail = trail or net.gateway.guard.audit
    assert all(o.status is OrderStatus.HELD for o in net.adapters.oms.get_orders(ids))
    executed = [e for e in trail.list(event_type=EventType.EXECUTED) if e.tool == "hold_orders"]
    assert len(executed) == 1, [e.result for e in executed]
    assert isinstance(executed[0].result, dict)
    assert executed[0].result["replayed"] is False
    assert sorted(executed[0].result["done"]) == sorted(ids)
    calls = executed_calls(trail, "run-1", {"hold_orders"})
    assert [sorted(c.result["done"]) for c in calls] == [sorted(ids)]  # undo would compensate it
    report = trail.verify()
    assert report.ok, report.problem
    again = net.gateway.propose(
        "hold_orders", {"order_ids": ids, "reason": "check"}, actor=AGENT, run=net.run(), idempotency_key=KEY
    )
    assert again.status == "replayed"
    assert again.result is not None
    assert sorted(again.result["done"]) == sorted(ids)


def _killed_right_after_commit(url: str, args: dict[str, Any]) -> None:
    """The child process: a gateway on its own engine whose process dies at the first statement
    after the effect's transaction commits (the change notice is only ever sent after it)."""

    def die(*_: object, **__: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    changes.publish = die  # type: ignore[assignment]  # a forked child: the parent keeps its own
    db = make_database(url=url)
    net = net_on(db, FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC)))
    net.gateway.propose("hold_orders", args, actor=AGENT, run=RunLedger(run_id="run-1"), idempotency_key=KEY)


def test_a_process_killed_right_after_the_effect_commits_leaves_its_executed_event(db: Database) -> None:
    net = build_net(db)
    ids = [o.id for o in net.small_safe_orders(2)]
    args = {"order_ids": ids, "reason": "check"}
    url = db.engine.url.render_as_string(hide_password=False)
    db.engine.dispose()  # no pooled connection may be shared with the child
    proc = multiprocessing.get_context("fork").Process(target=_killed_right_after_commit, args=(url, args))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == -signal.SIGKILL, proc.exitcode

    # the run resumes in this process with the same key: the first result is replayed
    resumed = net.gateway.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key=KEY)
    assert resumed.status == "replayed", resumed.reasons
    _assert_recorded_once(net, ids)


class _AuditFailsOnce(AuditTrail):
    """An audit trail whose first EXECUTED append fails: before storing the row, or (``after``)
    after storing it, as if the step after the append died."""

    def __init__(self, trail: AuditTrail, *, after: bool) -> None:
        super().__init__(trail.db, trail.redactor, trail.clock, trail=trail.trail, anchor=trail.anchor)
        self.after = after
        self.failed = False

    def append(self, event: AuditEvent, **kwargs: Any) -> AuditRecord:
        if event.event_type is not EventType.EXECUTED or self.failed:
            return super().append(event, **kwargs)
        self.failed = True
        if self.after:
            super().append(event, **kwargs)
        raise RuntimeError("the process died while recording the call")


def _net_failing_once(db: Database, *, after: bool, anchor: AuditAnchor | None = None) -> tuple[Net, ToolGateway]:
    net = build_net(db)
    guard = net.gateway.guard
    trail = AuditTrail(guard.audit.db, guard.audit.redactor, guard.audit.clock, anchor=anchor)
    net.gateway = ToolGateway(
        net.gateway.env,
        Guard(policy=guard.policy, audit=trail, approvals=guard.approvals, idempotency=guard.idempotency),
    )
    failing = ToolGateway(
        net.gateway.env,
        Guard(
            policy=guard.policy,
            audit=_AuditFailsOnce(trail, after=after),
            approvals=guard.approvals,
            idempotency=IdempotencyStore(db, net.clock, wait_s=1),
        ),
    )
    return net, failing


def _fail_then_retry(net: Net, failing: ToolGateway) -> list[str]:
    """One hold whose EXECUTED append fails, then the same call again under the same key; the held ids."""
    ids = [o.id for o in net.small_safe_orders(2)]
    args = {"order_ids": ids, "reason": "check"}
    with pytest.raises(RuntimeError):
        failing.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key=KEY)
    retry = failing.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key=KEY)
    assert retry.status in ("executed", "replayed"), retry.reasons
    return ids


def test_an_executed_event_that_cannot_be_written_leaves_no_unrecorded_effect(db: Database) -> None:
    net, failing = _net_failing_once(db, after=False)
    _assert_recorded_once(net, _fail_then_retry(net, failing))


def test_an_anchor_never_signs_an_executed_event_that_rolled_back(db: Database) -> None:
    """Anchored at every append: a checkpoint of a row that later rolls back would name a seq that
    another row takes, and the trail would no longer verify against its anchor."""
    anchor = AuditAnchor(CheckpointSigner.generate("inst-test"), MemoryAnchorSink(), every=1, interval_s=None)
    net, failing = _net_failing_once(db, after=True, anchor=anchor)
    ids = _fail_then_retry(net, failing)
    trail = net.gateway.guard.audit
    _assert_recorded_once(net, ids, trail)
    report = trail.verify(anchor=anchor)
    assert report.ok, report.problem
    assert report.last_anchored_seq == report.head_seq


def test_two_callers_racing_one_key_record_one_effect(net: Net) -> None:
    """The loser of the key's race returns the winner's result; only the winner's event records an
    effect (the loser's, if it reached the key, is marked replayed and undo skips it)."""
    ids = [o.id for o in net.small_safe_orders(2)]
    args = {"order_ids": ids, "reason": "check"}
    statuses: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        out = net.gateway.propose("hold_orders", args, actor=AGENT, run=net.run(), idempotency_key=KEY)
        statuses.append(out.status)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["executed", "replayed"]
    trail = net.gateway.guard.audit
    effects = [
        e
        for e in trail.list(event_type=EventType.EXECUTED)
        if e.tool == "hold_orders" and isinstance(e.result, dict) and not e.result["replayed"]
    ]
    assert len(effects) == 1
    assert len(executed_calls(trail, "run-1", {"hold_orders"})) == 1
    report = trail.verify()
    assert report.ok, report.problem
