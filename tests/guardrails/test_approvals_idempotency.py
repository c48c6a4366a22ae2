"""Idempotency keys: a repeated call replays the first result and never runs twice."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from core.db import Database
from core.errors import Conflict, ValidationFailed
from guardrails.idempotency import IdempotencyStore


def test_replay_returns_the_first_result_without_calling_again(db: Database) -> None:
    store = IdempotencyStore(db)
    calls: list[int] = []

    def fn() -> dict[str, object]:
        calls.append(1)
        return {"refund_id": f"R-{len(calls)}", "amount": Decimal("12.50")}

    first = store.run_once("k1", "refund", "h1", fn)
    again = store.run_once("k1", "refund", "h1", fn)
    assert first == ({"refund_id": "R-1", "amount": "12.50"}, False)
    assert again == ({"refund_id": "R-1", "amount": "12.50"}, True)
    assert len(calls) == 1
    assert store.run_once("k2", "refund", "h1", fn) == ({"refund_id": "R-2", "amount": "12.50"}, False)


def test_same_key_with_other_arguments_or_tool_is_a_conflict(db: Database) -> None:
    store = IdempotencyStore(db)
    store.run_once("k", "refund", "h1", lambda: 1)
    with pytest.raises(Conflict):
        store.run_once("k", "refund", "h2", lambda: 2)
    with pytest.raises(Conflict):
        store.run_once("k", "cancel", "h1", lambda: 3)
    with pytest.raises(ValidationFailed):
        store.run_once("", "refund", "h1", lambda: 4)


def test_a_failed_call_releases_the_key(db: Database) -> None:
    store = IdempotencyStore(db)

    def boom() -> int:
        raise RuntimeError("carrier down")

    with pytest.raises(RuntimeError):
        store.run_once("k", "book_label", "h", boom)
    assert store.run_once("k", "book_label", "h", lambda: "LBL-1") == ("LBL-1", False)


def test_a_pending_claim_is_never_run_twice(db: Database) -> None:
    """A claim left pending (its process died) makes repeats wait, then Conflict - not re-run."""
    store = IdempotencyStore(db, wait_s=0.0, sleep=lambda _s: None)
    assert store._claim("k", "refund", "h")  # a process claimed the key and died mid-call
    with pytest.raises(Conflict, match="in progress"):
        store.run_once("k", "refund", "h", lambda: pytest.fail("must not run"))
    assert store.release("k")
    assert store.run_once("k", "refund", "h", lambda: 7) == (7, False)


def test_concurrent_callers_run_fn_exactly_once(db: Database) -> None:
    store = IdempotencyStore(db, poll_s=0.005)
    threads = 8
    barrier = threading.Barrier(threads)
    calls: list[int] = []
    lock = threading.Lock()
    results: list[tuple[object, bool]] = []
    errors: list[BaseException] = []

    def fn() -> dict[str, int]:
        with lock:
            calls.append(1)
        return {"label": 1}

    def work() -> None:
        try:
            barrier.wait()
            out = store.run_once("one-key", "book_label", "h", fn)
            with lock:
                results.append(out)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert len(calls) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * (threads - 1)
    assert {str(result) for result, _ in results} == {"{'label': 1}"}
