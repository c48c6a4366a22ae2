"""The audit trail: chaining, listing, export, and that every kind of tampering is caught."""

from __future__ import annotations

import io
import itertools
import json
import random
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from core.clock import FixedClock
from core.db import Database
from core.db.tables import AuditEventRow
from guardrails.audit import GENESIS_HASH, AuditEvent, AuditTrail, EventType, compute_row_hash
from guardrails.redaction import Redactor

N = 8


@pytest.fixture
def trail(db: Database) -> AuditTrail:
    return AuditTrail(db, Redactor(key=b"test-key"), FixedClock())


def _fill(trail: AuditTrail, n: int = N) -> None:
    clock = trail.clock
    assert isinstance(clock, FixedClock)
    kinds = [EventType.PROPOSED, EventType.AWAITING_APPROVAL, EventType.APPROVED, EventType.EXECUTED]
    for i in range(n):
        trail.append(
            AuditEvent(
                event_type=kinds[i % len(kinds)],
                run_id=f"run-{i % 2}",
                call_id=f"call-{i // 4}",
                tool="reroute_orders",
                arguments={"order_ids": [f"SO-{i}", f"SO-{i + 1}"], "node_id": "DC-ATL", "qty": i},
                result={"moved": i} if i % 4 == 3 else None,
                preview={"cost_delta": "12.50", "orders": i},
                actor=f"run:run-{i % 2}",
                approver="ops-lead" if i % 4 == 2 else None,
                policy_version="p-1",
                reasons=[f"reason {i}"],
                model="gpt-test",
                prompt_version="planner@3",
                duration_ms=10 * i,
            )
        )
        clock.advance(timedelta(seconds=1))


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(AuditEventRow.__table__).order_by(AuditEventRow.seq))]


def _values(row: AuditEventRow) -> dict[str, Any]:
    return {c.name: getattr(row, c.key) for c in AuditEventRow.__table__.columns}


def _update(db: Database, seq: int, /, **values: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(AuditEventRow).where(AuditEventRow.seq == seq).values(**values))


def test_untouched_trail_verifies_and_chains(trail: AuditTrail) -> None:
    assert trail.verify().ok  # empty trail
    _fill(trail)
    report = trail.verify()
    assert report.ok, report.problem
    assert (report.rows_checked, report.head_seq) == (N, N)
    records = trail.list()
    assert [r.seq for r in records] == list(range(1, N + 1))
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(records))
    assert trail.head() == (N, records[-1].row_hash)
    assert [r.seq for r in trail.list(run_id="run-1")] == [2, 4, 6, 8]
    assert [r.event_type for r in trail.list(call_id="call-0")] == [
        "proposed",
        "awaiting_approval",
        "approved",
        "executed",
    ]
    assert [r.seq for r in trail.list(event_type=EventType.EXECUTED)] == [4, 8]
    assert records[2].at - records[1].at == timedelta(seconds=1)


def test_trails_are_independent(db: Database) -> None:
    main, other = AuditTrail(db), AuditTrail(db, trail="other")
    main.append(AuditEvent(event_type=EventType.NOTE, reasons=["a"]))
    rec = other.append(AuditEvent(event_type=EventType.NOTE, reasons=["b"]))
    assert (rec.seq, rec.prev_hash) == (1, GENESIS_HASH)
    assert main.verify().ok
    assert other.verify().ok


# --- tampering ----------------------------------------------------------------------------------

EDITS: dict[str, Any] = {
    "event_id": "forged-id",
    "at": None,  # shifted by a second below
    "run_id": "run-x",
    "call_id": "call-x",
    "event_type": "executed_x",
    "tool": "refund",
    "arguments": {"order_ids": ["SO-999"]},
    "result": {"moved": 1000},
    "preview": {"cost_delta": "0.00"},
    "actor": "someone-else",
    "approver": "nobody",
    "policy_version": "p-0",
    "reasons": ["forged"],
    "model": "other-model",
    "prompt_version": "planner@0",
    "duration_ms": 123456,
    "prev_hash": "f" * 64,
    "row_hash": "e" * 64,
}


def test_editing_any_column_of_a_row_is_detected(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    original = {r["seq"]: r for r in _rows(db)}
    rng = random.Random(7)
    for column, value in EDITS.items():
        seq = rng.randint(1, N)
        new = original[seq][column] + timedelta(seconds=1) if column == "at" else value
        _update(db, seq, **{column: new})
        report = trail.verify()
        assert not report.ok, column
        assert (report.kind, report.first_bad_seq) == ("edited", seq), (column, report)
        _update(db, seq, **{column: original[seq][column]})
        assert trail.verify().ok, column


def test_renumbering_a_row_is_an_edit_and_moving_it_off_the_trail_a_deletion(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    _update(db, 3, seq=999)
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "edited", 3)
    assert "999" in (report.problem or "")
    _update(db, 999, seq=3)
    assert trail.verify().ok
    _update(db, 5, trail="elsewhere")
    report = trail.verify()
    assert (report.kind, report.first_bad_seq) == ("deleted", 5)


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_deleting_a_row_is_detected(db: Database, trail: AuditTrail, which: str) -> None:
    _fill(trail)
    seq = {"first": 1, "middle": N // 2, "last": N}[which]
    with db.engine.begin() as conn:
        conn.execute(delete(AuditEventRow).where(AuditEventRow.seq == seq))
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "deleted", seq), report


def test_inserting_a_forged_row_with_a_recomputed_hash_is_detected(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    k = 4
    rows = {r["seq"]: r for r in _rows(db)}
    with db.engine.begin() as conn:
        for seq in range(N, k - 1, -1):  # make room at k, as a forger would
            conn.execute(update(AuditEventRow).where(AuditEventRow.seq == seq).values(seq=seq + 1))
        forged = AuditEventRow(**{**rows[k], "event_id": "forged", "tool": "refund"})
        forged.prev_hash = rows[k - 1]["row_hash"]
        forged.row_hash = compute_row_hash(forged)
        conn.execute(insert(AuditEventRow).values(**_values(forged)))
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "inserted", k), report


def test_a_row_appended_behind_the_heads_back_is_detected(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    last = _rows(db)[-1]
    forged = AuditEventRow(**{**last, "seq": N + 1, "event_id": "forged", "prev_hash": last["row_hash"]})
    forged.row_hash = compute_row_hash(forged)
    with db.engine.begin() as conn:
        conn.execute(insert(AuditEventRow).values(**_values(forged)))
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "inserted", N + 1), report


@pytest.mark.parametrize(("a", "b"), [(2, 6), (4, 5)])
def test_swapping_two_rows_is_detected_as_reordering(db: Database, trail: AuditTrail, a: int, b: int) -> None:
    _fill(trail)
    _update(db, a, seq=-1)
    _update(db, b, seq=a)
    _update(db, -1, seq=b)
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "reordered", a), report


# --- export, redaction, concurrency -------------------------------------------------------------


def test_export_writes_valid_jsonl(tmp_path: Path, trail: AuditTrail) -> None:
    _fill(trail)
    path = tmp_path / "audit.jsonl"
    assert trail.export_jsonl(path) == N
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, N + 1))
    assert lines[-1]["row_hash"] == trail.head()[1]
    assert {"prev_hash", "row_hash", "arguments", "event_type", "at"} <= set(lines[0])
    buf = io.StringIO()
    assert trail.export_jsonl(buf, run_id="run-0") == N // 2
    assert {json.loads(line)["run_id"] for line in buf.getvalue().splitlines()} == {"run-0"}


def test_personal_data_never_reaches_the_trail(db: Database, trail: AuditTrail) -> None:
    rec = trail.append(
        AuditEvent(
            event_type=EventType.PROPOSED,
            tool="update_address",
            arguments={
                "customer_id": "CUST-0001",
                "address_id": "ADDR-7",
                "ship_to": {"name": "Jane Doe", "street": "12 Main St", "city": "Austin"},
                "email": "jane.doe@example.com",
            },
            reasons=["customer jane.doe@example.com asked by phone (512) 555-0199"],
        )
    )
    stored = json.dumps(_rows(db), default=str)
    for secret in ("Jane Doe", "12 Main St", "jane.doe@example.com", "555-0199"):
        assert secret not in stored
    assert rec.arguments["customer_id"] == "CUST-0001"
    assert rec.arguments["address_id"] == "ADDR-7"
    assert rec.arguments["ship_to"]["city"] == "Austin"
    assert rec.arguments["email"] in rec.reasons[0]  # same email, same token: still joinable
    assert trail.verify().ok


def test_concurrent_appends_do_not_fork_the_chain(db: Database) -> None:
    trail = AuditTrail(db)
    threads, per_thread = 8, 5
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                trail.append(AuditEvent(event_type=EventType.NOTE, run_id=f"t{t}", reasons=[str(i)]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    report = trail.verify()
    assert report.ok, report.problem
    assert report.head_seq == threads * per_thread
    assert [r.seq for r in trail.list()] == list(range(1, threads * per_thread + 1))
