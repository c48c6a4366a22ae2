"""Approval requests: every decision rule, expiry, supersession by edit, and one winner under races."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from core.clock import FixedClock
from core.db import Database
from core.errors import Conflict, NotFound, PolicyDenied, ValidationFailed
from guardrails.approvals import (
    ApprovalStatus,
    ApprovalStore,
    DecisionKind,
    args_hash,
    verify_binding,
)

ARGS: dict[str, Any] = {"order_ids": ["SO-1", "SO-2", "SO-3"], "to_node": "DC-ATL"}
PREVIEW: dict[str, Any] = {"cost_delta": "42.10", "late_orders_after": 0}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(db: Database, clock: FixedClock) -> ApprovalStore:
    return ApprovalStore(db, clock)


def _create(store: ApprovalStore, **kw: Any) -> str:
    params: dict[str, Any] = {
        "tool": "reroute_orders",
        "arguments": ARGS,
        "preview": PREVIEW,
        "requester_id": "run:r1",
        "run_id": "r1",
        "call_id": "c1",
        "items": ARGS["order_ids"],
        "required_roles": ["ops_lead"],
        "ttl": timedelta(hours=1),
    }
    params.update(kw)
    return store.create(**params).id


def test_create_binds_arguments_and_preview(store: ApprovalStore) -> None:
    req = store.get(_create(store))
    assert req.status == ApprovalStatus.PENDING
    assert req.args_hash == args_hash(ARGS)
    assert req.arguments == ARGS
    assert req.preview == PREVIEW
    assert req.expires_at - req.created_at == timedelta(hours=1)
    assert [r.id for r in store.list_pending()] == [req.id]
    assert store.list_pending(run_id="other") == []
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(ValidationFailed):
        _create(store, approvers_required=0)
    with pytest.raises(ValidationFailed):
        _create(store, items=["SO-1", "SO-1"])


def test_approve_then_binding_checks_exact_args_and_preview(store: ApprovalStore) -> None:
    rid = _create(store)
    req = store.decide(rid, "alice", ["ops_lead"], "approve", expected_args_hash=args_hash(ARGS))
    assert req.status == ApprovalStatus.APPROVED
    assert req.approved_items == ARGS["order_ids"]
    assert [d.approver_id for d in req.approvals] == ["alice"]
    assert verify_binding(req, {"to_node": "DC-ATL", "order_ids": ["SO-1", "SO-2", "SO-3"]}, PREVIEW)
    assert not verify_binding(req, {**ARGS, "to_node": "DC-DAL"}, PREVIEW)
    assert not verify_binding(req, ARGS, {**PREVIEW, "cost_delta": "0"})
    assert store.list_pending() == []
    with pytest.raises(Conflict, match="already approved"):
        store.decide(rid, "bob", ["ops_lead"], "reject", reason="too late")


def test_pending_request_does_not_bind(store: ApprovalStore) -> None:
    assert not verify_binding(store.get(_create(store)), ARGS, PREVIEW)


def test_stale_args_hash_is_refused(store: ApprovalStore) -> None:
    rid = _create(store)
    with pytest.raises(Conflict, match="other arguments"):
        store.decide(rid, "alice", ["ops_lead"], "approve", expected_args_hash=args_hash({"x": 1}))
    assert store.get(rid).status == ApprovalStatus.PENDING


def test_reject_needs_a_reason(store: ApprovalStore) -> None:
    rid = _create(store)
    with pytest.raises(ValidationFailed, match="reason"):
        store.decide(rid, "alice", ["ops_lead"], DecisionKind.REJECT, reason="  ")
    req = store.decide(rid, "alice", ["ops_lead"], DecisionKind.REJECT, reason="wrong node")
    assert req.status == ApprovalStatus.REJECTED
    assert req.decisions[0].reason == "wrong node"
    assert not verify_binding(req, ARGS, PREVIEW)


def test_subset_must_be_within_covered_items(store: ApprovalStore) -> None:
    rid = _create(store)
    with pytest.raises(ValidationFailed, match="SO-9"):
        store.decide(rid, "alice", ["ops_lead"], "approve", subset=["SO-1", "SO-9"])
    with pytest.raises(ValidationFailed):
        store.decide(rid, "alice", ["ops_lead"], "approve", subset=[])
    req = store.decide(rid, "alice", ["ops_lead"], "approve", subset=["SO-3", "SO-1"])
    assert req.status == ApprovalStatus.APPROVED
    assert req.approved_items == ["SO-1", "SO-3"]


def test_expired_request_cannot_be_approved_and_reads_as_expired(store: ApprovalStore, clock: FixedClock) -> None:
    rid = _create(store)
    clock.advance(timedelta(hours=1, seconds=1))
    assert store.get(rid).status == ApprovalStatus.EXPIRED
    assert store.list_pending() == []
    with pytest.raises(Conflict, match="expired"):
        store.decide(rid, "alice", ["ops_lead"], "approve")
    assert store.get(rid).status == ApprovalStatus.EXPIRED
    clock.advance(timedelta(days=-1))  # even if the clock goes back, the expiry was recorded
    assert store.get(rid).status == ApprovalStatus.EXPIRED


def test_requester_cannot_approve_own_request_unless_allowed(store: ApprovalStore) -> None:
    rid = _create(store, requester_id="carol")
    with pytest.raises(PolicyDenied, match="requested this call"):
        store.decide(rid, "carol", ["ops_lead"], "approve")
    assert store.get(rid).status == ApprovalStatus.PENDING
    allowed = _create(store, requester_id="carol", requester_may_approve=True)
    assert store.decide(allowed, "carol", ["ops_lead"], "approve").status == ApprovalStatus.APPROVED


def test_approver_without_required_role_is_refused(store: ApprovalStore) -> None:
    rid = _create(store, required_roles=["ops_lead", "finance"])
    with pytest.raises(PolicyDenied, match="needs one of the roles") as err:
        store.decide(rid, "dave", ["warehouse"], "approve")
    assert err.value.details["reasons"]
    assert store.decide(rid, "dave", ["warehouse", "finance"], "approve").status == ApprovalStatus.APPROVED


def test_two_approvers_required_means_two_distinct_people(store: ApprovalStore) -> None:
    rid = _create(store, approvers_required=2)
    first = store.decide(rid, "alice", ["ops_lead"], "approve", subset=["SO-1", "SO-2"])
    assert first.status == ApprovalStatus.PENDING
    with pytest.raises(Conflict, match="already decided"):
        store.decide(rid, "alice", ["ops_lead"], "approve")
    second = store.decide(rid, "bob", ["ops_lead"], "approve", subset=["SO-2", "SO-3"])
    assert second.status == ApprovalStatus.APPROVED
    assert second.approved_items == ["SO-2"]  # what both approved
    assert [d.approver_id for d in second.approvals] == ["alice", "bob"]


def test_edit_supersedes_with_a_new_pending_request(store: ApprovalStore) -> None:
    rid = _create(store)
    edited = {**ARGS, "order_ids": ["SO-1", "SO-2"]}
    with pytest.raises(ValidationFailed):
        store.decide(rid, "alice", ["ops_lead"], "edit")
    new = store.decide(rid, "alice", ["ops_lead"], "edit", edited_args=edited, edited_preview={"cost_delta": "30"})
    old = store.get(rid)
    assert old.status == ApprovalStatus.SUPERSEDED
    assert old.superseded_by_id == new.id
    assert old.decisions[0].edited_args == edited
    assert new.status == ApprovalStatus.PENDING
    assert new.supersedes_id == rid
    assert new.args_hash == args_hash(edited)
    assert new.edited_by == "alice"
    assert new.requester_id == old.requester_id
    with pytest.raises(Conflict, match="superseded"):
        store.decide(rid, "bob", ["ops_lead"], "approve")
    with pytest.raises(PolicyDenied, match="edited"):
        store.decide(new.id, "alice", ["ops_lead"], "approve")
    approved = store.decide(new.id, "bob", ["ops_lead"], "approve")
    assert verify_binding(approved, edited, {"cost_delta": "30"})
    assert not verify_binding(approved, ARGS, PREVIEW)


def test_unknown_decision_is_refused(store: ApprovalStore) -> None:
    with pytest.raises(ValidationFailed):
        store.decide(_create(store), "alice", ["ops_lead"], "maybe")


def _race(store: ApprovalStore, rid: str, threads: int) -> tuple[list[str], list[str], list[BaseException]]:
    barrier = threading.Barrier(threads)
    wins: list[str] = []
    conflicts: list[str] = []
    errors: list[BaseException] = []

    def work(who: str) -> None:
        try:
            barrier.wait()
            store.decide(rid, who, ["ops_lead"], "approve")
            wins.append(who)
        except Conflict:
            conflicts.append(who)
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(f"approver-{i}",)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return wins, conflicts, errors


def test_concurrent_approvals_exactly_one_wins(db: Database, clock: FixedClock) -> None:
    store = ApprovalStore(db, clock)
    threads = 6
    for _ in range(3):  # a few rounds: the race must be lost the same way every time
        rid = _create(store)
        wins, conflicts, errors = _race(store, rid, threads)
        assert not errors
        assert len(wins) == 1
        assert len(conflicts) == threads - 1
        req = store.get(rid)
        assert req.status == ApprovalStatus.APPROVED
        assert [d.approver_id for d in req.decisions] == wins


def test_concurrent_approvals_with_two_required_approve_once(db: Database, clock: FixedClock) -> None:
    store = ApprovalStore(db, clock)
    rid = _create(store, approvers_required=2)
    wins, _conflicts, errors = _race(store, rid, 4)
    assert not errors
    req = store.get(rid)
    assert req.status == ApprovalStatus.APPROVED
    assert len(req.approvals) == 2
    assert sorted(d.approver_id for d in req.approvals) == sorted(wins)
