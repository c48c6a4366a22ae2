"""Signed checkpoints outside the database: every tamper class is caught given the anchor.

The 21 classes below are what an attacker with write access to the database (but not to the key
file) can do to the trail. ``chain_alone`` records whether the hash chain catches it without the
anchor: the ones it does not (rewrites that move the head too) are the reason anchors exist.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, update

from core.clock import FixedClock
from core.db import Database
from core.db.tables import AuditEventRow, AuditHeadRow
from core.errors import ConfigurationError, Conflict
from core.settings import Settings
from guardrails.anchor import (
    AuditAnchor,
    Checkpoint,
    CheckpointSigner,
    FileAnchorSink,
    MemoryAnchorSink,
    parse_signing_key,
)
from guardrails.audit import GENESIS_HASH, AuditEvent, AuditTrail, EventType, compute_row_hash
from guardrails.redaction import Redactor

N = 8
EVERY = 3  # auto checkpoints at seq 1 (first append), 4, 7; the explicit one at 8


def _anchor(sink: MemoryAnchorSink | None = None, signer: CheckpointSigner | None = None) -> AuditAnchor:
    return AuditAnchor(
        signer or CheckpointSigner.generate("inst-test"),
        sink if sink is not None else MemoryAnchorSink(),
        every=EVERY,
        interval_s=None,
        clock=FixedClock(),
    )


@pytest.fixture
def anchor() -> AuditAnchor:
    return _anchor()


@pytest.fixture
def trail(db: Database, anchor: AuditAnchor) -> AuditTrail:
    return AuditTrail(db, Redactor(key=b"test-key"), FixedClock(), anchor=anchor)


def _append(trail: AuditTrail, i: int) -> None:
    clock = trail.clock
    assert isinstance(clock, FixedClock)
    trail.append(
        AuditEvent(
            event_type=[EventType.PROPOSED, EventType.APPROVED, EventType.EXECUTED][i % 3],
            run_id=f"run-{i % 2}",
            call_id=f"call-{i // 3}",
            tool="reroute_orders",
            arguments={"order_ids": [f"SO-{i}"], "node_id": "DC-ATL"},
            actor="run:run-0",
            reasons=[f"reason {i}"],
        )
    )
    clock.advance(timedelta(seconds=1))


def _fill(trail: AuditTrail, n: int = N) -> None:
    for i in range(n):
        _append(trail, i)
    trail.checkpoint()  # what the schedule or `orderops audit anchor` adds


# --- what a forger does with SQL ----------------------------------------------------------------


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        stmt = select(AuditEventRow.__table__).where(AuditEventRow.trail == "main").order_by(AuditEventRow.seq)
        return [dict(r._mapping) for r in conn.execute(stmt)]


def _set(db: Database, seq: int, /, **values: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(AuditEventRow).where(AuditEventRow.seq == seq).values(**values))


def _delete(db: Database, *seqs: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(AuditEventRow).where(AuditEventRow.seq.in_(seqs)))


def _move_head(db: Database, seq: int, row_hash: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(AuditHeadRow).where(AuditHeadRow.trail == "main").values(last_seq=seq, last_hash=row_hash))


def _head_to_last(db: Database) -> None:
    rows = _rows(db)
    _move_head(db, rows[-1]["seq"], rows[-1]["row_hash"]) if rows else _move_head(db, 0, GENESIS_HASH)


def _rehash_from(db: Database, first: int) -> None:
    """Recompute prev_hash and row_hash of every row from seq ``first`` on, then move the head:
    the chain is self-consistent again."""
    prev = GENESIS_HASH
    with db.engine.begin() as conn:
        for values in _rows(db):
            if values["seq"] >= first:
                row = AuditEventRow(**{**values, "prev_hash": prev})
                row.row_hash = compute_row_hash(row)
                conn.execute(
                    update(AuditEventRow)
                    .where(AuditEventRow.seq == values["seq"])
                    .values(prev_hash=prev, row_hash=row.row_hash)
                )
                prev = row.row_hash
            else:
                prev = values["row_hash"]
    _head_to_last(db)


def _shift_up(db: Database, from_seq: int) -> None:
    """Make room at ``from_seq`` (highest first: seq is part of the primary key)."""
    for values in reversed(_rows(db)):
        if values["seq"] >= from_seq:
            _set(db, values["seq"], seq=values["seq"] + 1)


def _insert_forged(db: Database, at: int) -> None:
    rows = {r["seq"]: r for r in _rows(db)}
    _shift_up(db, at)
    forged = AuditEventRow(**{**rows[at], "event_id": "forged", "tool": "refund"})
    forged.prev_hash = rows[at - 1]["row_hash"]
    forged.row_hash = compute_row_hash(forged)
    with db.engine.begin() as conn:
        conn.execute(insert(AuditEventRow).values(**_columns(forged)))


def _columns(row: AuditEventRow) -> dict[str, Any]:
    return {c.name: getattr(row, c.key) for c in AuditEventRow.__table__.columns}


def _swap(db: Database, a: int, b: int) -> None:
    _set(db, a, seq=-1)
    _set(db, b, seq=a)
    _set(db, -1, seq=b)


def _renumber_down(db: Database, after: int) -> None:
    for values in _rows(db):
        if values["seq"] > after:
            _set(db, values["seq"], seq=values["seq"] - 1)


def _delete_all(db: Database, *, head: bool) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(AuditEventRow))
        if head:
            conn.execute(delete(AuditHeadRow))


def _insert_forged_at_end(db: Database) -> None:
    last = _rows(db)[-1]
    forged = AuditEventRow(**{**last, "seq": N + 1, "event_id": "forged", "prev_hash": last["row_hash"]})
    forged.row_hash = compute_row_hash(forged)
    with db.engine.begin() as conn:
        conn.execute(insert(AuditEventRow).values(**_columns(forged)))


Step = Callable[[Database], None]


@dataclass(frozen=True)
class Tamper:
    steps: tuple[Step, ...]
    kind: str
    first_bad_seq: int | None
    chain_alone: bool
    """Whether the hash chain without anchors notices it."""


def _edit(seq: int, /, **values: Any) -> Step:
    return lambda db: _set(db, seq, **values)


def _rehash(first: int) -> Step:
    return lambda db: _rehash_from(db, first)


TAMPERS: dict[str, Tamper] = {
    # edits, left as they are
    "edit_first": Tamper((_edit(1, tool="refund"),), "edited", 1, True),
    "edit_middle": Tamper((_edit(4, approver="nobody"),), "edited", 4, True),
    "edit_last": Tamper((_edit(N, reasons=["forged"]),), "edited", N, True),
    "renumber_a_row": Tamper((_edit(3, seq=999),), "edited", 3, True),
    # deletions
    "delete_first": Tamper((lambda db: _delete(db, 1),), "deleted", 1, True),
    "delete_middle": Tamper((lambda db: _delete(db, 4),), "deleted", 4, True),
    "delete_last": Tamper((lambda db: _delete(db, N),), "deleted", N, True),
    "delete_all_rows_keep_head": Tamper((lambda db: _delete_all(db, head=False),), "deleted", 1, True),
    # insertions
    "insert_forged_row": Tamper((lambda db: _insert_forged(db, 4),), "inserted", 4, True),
    "append_forged_row_past_head": Tamper((_insert_forged_at_end,), "inserted", N + 1, True),
    # reordering
    "swap_adjacent_rows": Tamper((lambda db: _swap(db, 4, 5),), "reordered", 4, True),
    "swap_distant_rows": Tamper((lambda db: _swap(db, 2, 6),), "reordered", 2, True),
    # rewrites of the chain *and* its head: only the anchor sees these
    "truncate_last_row_head_moved": Tamper((lambda db: _delete(db, N), _head_to_last), "truncated", N, False),
    "truncate_tail_head_moved": Tamper((lambda db: _delete(db, 6, 7, 8), _head_to_last), "truncated", 6, False),
    "edit_last_rehash_head_moved": Tamper((_edit(N, tool="refund"), _rehash(N)), "rewritten", N, False),
    "edit_middle_rehash_tail": Tamper((_edit(5, tool="refund"), _rehash(5)), "rewritten", 7, False),
    "full_rehash_of_every_row": Tamper((_edit(1, actor="someone-else"), _rehash(1)), "rewritten", 1, False),
    "delete_middle_renumber_rehash": Tamper(
        (lambda db: _delete(db, 4), lambda db: _renumber_down(db, 4), _rehash(4)), "rewritten", 4, False
    ),
    "insert_forged_row_rehash_tail": Tamper((lambda db: _insert_forged(db, 4), _rehash(5)), "rewritten", 4, False),
    "swap_rows_rehash": Tamper((lambda db: _swap(db, 2, 6), _rehash(2)), "rewritten", 4, False),
    "delete_all_rows_and_head": Tamper((lambda db: _delete_all(db, head=True),), "wiped", 1, False),
}


def test_the_21_tamper_classes() -> None:
    assert len(TAMPERS) == 21
    assert sum(not t.chain_alone for t in TAMPERS.values()) == 9  # the 9 the issue found passing as intact


@pytest.mark.parametrize("name", list(TAMPERS))
def test_every_tamper_class_is_detected_given_the_anchor(db: Database, trail: AuditTrail, name: str) -> None:
    _fill(trail)
    intact = trail.verify()
    assert intact.ok, intact.problem
    tamper = TAMPERS[name]
    for step in tamper.steps:
        step(db)
    report = trail.verify()
    assert not report.ok, name
    assert (report.kind, report.first_bad_seq) == (tamper.kind, tamper.first_bad_seq), report
    assert report.problem
    # The chain without its anchor: catches the first kinds, passes the rewrites as intact.
    assert AuditTrail(db).verify().ok is not tamper.chain_alone, name


def test_an_intact_trail_passes_and_says_how_far_it_is_anchored(trail: AuditTrail, anchor: AuditAnchor) -> None:
    assert trail.verify().ok  # empty, nothing anchored yet: nothing to fear
    for i in range(N):
        _append(trail, i)
    assert isinstance(anchor.sink, MemoryAnchorSink)
    assert [json.loads(line)["seq"] for line in anchor.sink.lines] == [1, 4, 7]  # first append, then every 3
    report = trail.verify()
    assert (report.ok, report.anchored, report.anchors_checked, report.last_anchored_seq) == (True, True, 3, 7)
    cp = trail.checkpoint()
    assert (cp.seq, cp.head_hash) == trail.head()
    report = trail.verify()
    assert (report.ok, report.anchors_checked, report.last_anchored_seq, report.anchor_sink) == (True, 4, N, "memory")
    assert trail.checkpoint_if_moved() is None  # the head has not moved since
    _append(trail, N)
    assert trail.verify().ok  # row 9 is not anchored yet, and that is fine
    moved = trail.checkpoint_if_moved()
    assert moved is not None
    assert moved.seq == N + 1


def test_a_rewrite_stays_visible_after_new_appends_are_anchored(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    _set(db, 2, tool="refund")
    _rehash_from(db, 2)
    for i in range(N, N + 2 * EVERY):  # the application carries on and checkpoints the new head
        _append(trail, i)
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "rewritten", 4)


def test_wiping_and_refilling_the_trail_is_a_rewrite(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    _delete_all(db, head=True)
    forger = AuditTrail(db, Redactor(key=b"test-key"), FixedClock())  # the real code, but no key
    for i in range(N):
        _append(forger, i)
    assert forger.verify().ok
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "rewritten", 1)


def test_moving_a_row_to_another_trail_or_dropping_the_head_is_detected(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    _set(db, 5, trail="elsewhere")
    assert (trail.verify().kind, trail.verify().first_bad_seq) == ("deleted", 5)
    _set(db, 5, trail="main")
    with db.engine.begin() as conn:
        conn.execute(delete(AuditHeadRow))
    assert trail.verify().kind == "deleted"


# --- the anchor log itself ----------------------------------------------------------------------


def _lines(anchor: AuditAnchor) -> list[str]:
    assert isinstance(anchor.sink, MemoryAnchorSink)
    return anchor.sink.lines


def test_a_checkpoint_edited_without_the_key_is_forged(db: Database, trail: AuditTrail, anchor: AuditAnchor) -> None:
    _fill(trail)
    # the forger rewrites the chain and "fixes" the last checkpoint to match
    _set(db, N, tool="refund")
    _rehash_from(db, N)
    lines = _lines(anchor)
    data = json.loads(lines[-1])
    data["head_hash"] = trail.head()[1]
    lines[-1] = json.dumps(data)
    report = trail.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "anchor_forged", N)
    assert "signature" in (report.problem or "")


def test_a_checkpoint_signed_with_another_key_is_forged(trail: AuditTrail, anchor: AuditAnchor) -> None:
    _fill(trail)
    own = CheckpointSigner.generate(anchor.signer.installation_id)
    forged = own.sign(trail="main", seq=N, head_hash="a" * 64, at=FixedClock().now())
    _lines(anchor).append(forged.to_line())
    report = trail.verify()
    assert (report.ok, report.kind) == (False, "anchor_forged")
    assert own.key_id in (report.problem or "")


@pytest.mark.parametrize("line", ["not json", '{"v": 1, "trail": "main"}', json.dumps({"v": 2})])
def test_an_unreadable_anchor_entry_is_reported(trail: AuditTrail, anchor: AuditAnchor, line: str) -> None:
    _fill(trail)
    _lines(anchor).insert(1, line)
    report = trail.verify()
    assert (report.ok, report.kind) == (False, "anchor_forged")
    assert "memory:2" in (report.problem or "")


def test_a_removed_anchor_log_is_reported_and_anchor_restarts_it(db: Database, trail: AuditTrail) -> None:
    _fill(trail)
    fresh = _anchor()
    report = trail.verify(anchor=fresh)
    assert (report.ok, report.kind) == (False, "unanchored")
    trail.checkpoint(anchor=fresh)
    assert trail.verify(anchor=fresh).ok


def test_a_tampered_trail_is_never_anchored(db: Database, trail: AuditTrail, anchor: AuditAnchor) -> None:
    _fill(trail)
    before = list(_lines(anchor))
    _delete(db, 3)
    with pytest.raises(Conflict):
        trail.checkpoint()
    _move_head(db, 2, "f" * 64)
    with pytest.raises(Conflict):
        trail.checkpoint(verify=False)  # even the cheap path checks the head names its row
    assert _lines(anchor) == before


def test_checkpoints_of_other_trails_and_installations_are_left_alone(db: Database, anchor: AuditAnchor) -> None:
    sink = anchor.sink
    assert isinstance(sink, MemoryAnchorSink)
    main = AuditTrail(db, anchor=anchor)
    other = AuditTrail(db, anchor=anchor, trail="other")
    main.append(AuditEvent(event_type=EventType.NOTE))
    other.append(AuditEvent(event_type=EventType.NOTE))
    # a neighbour installation shares the sink; its checkpoints (and forgeries) are not ours to judge
    neighbour = CheckpointSigner.generate("inst-neighbour")
    AuditTrail(db, anchor=_anchor(sink, neighbour)).checkpoint()
    sink.lines.append(neighbour.sign(trail="main", seq=99, head_hash="b" * 64, at=FixedClock().now()).to_line())
    assert len(sink.lines) == 4
    for t in (main, other):
        report = t.verify()
        assert (report.ok, report.anchors_checked, report.last_anchored_seq) == (True, 1, 1), report


def test_a_sink_that_fails_never_fails_the_append(db: Database) -> None:
    class Broken(MemoryAnchorSink):
        down = True

        def append(self, checkpoint: Checkpoint) -> None:
            if self.down:
                raise OSError("disk full")
            super().append(checkpoint)

    sink = Broken()
    trail = AuditTrail(db, anchor=_anchor(sink))
    assert trail.append(AuditEvent(event_type=EventType.NOTE)).seq == 1
    sink.down = False
    trail.append(AuditEvent(event_type=EventType.NOTE))  # still due: it tries again
    assert [json.loads(line)["seq"] for line in sink.lines] == [2]


# --- files, keys, settings ----------------------------------------------------------------------


def test_the_file_sink_appends_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "anchors" / "audit-anchors.jsonl"
    sink = FileAnchorSink(path)
    assert list(sink.read()) == []
    signer = CheckpointSigner.generate("i")
    for seq in (1, 2):
        sink.append(signer.sign(trail="main", seq=seq, head_hash=f"{seq}" * 64, at=FixedClock().now()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = list(sink.read())
    assert [e.where for e in entries] == [f"{path}:1", f"{path}:2"]
    assert [Checkpoint.model_validate_json(e.text).seq for e in entries] == [1, 2]
    assert all(signer.problem(Checkpoint.model_validate_json(e.text)) is None for e in entries)


def test_from_settings_keeps_the_key_outside_the_database(db: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", audit_anchor_every=2, audit_anchor_interval_s=0)
    anchor = AuditAnchor.from_settings(settings)
    assert not (tmp_path / "home").exists()  # nothing is made until it is needed
    trail = AuditTrail(db, anchor=anchor)
    for _ in range(3):
        trail.append(AuditEvent(event_type=EventType.NOTE))
    key_file = tmp_path / "home" / "audit-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "home" / "installation.id").read_text().strip()
    lines = (tmp_path / "home" / "audit-anchors.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 3]
    # another process of the same installation reads the same key and id: the anchors hold
    assert AuditTrail(db, anchor=AuditAnchor.from_settings(settings)).verify().ok
    # a database dump holds no trace of the key
    with db.engine.connect() as conn:
        dumped = json.dumps([dict(r._mapping) for r in conn.execute(select(AuditEventRow.__table__))], default=str)
    assert key_file.read_text().split("\n")[1] not in dumped


def test_a_lost_key_makes_every_checkpoint_unverifiable(db: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    trail = AuditTrail(db, anchor=AuditAnchor.from_settings(settings))
    trail.append(AuditEvent(event_type=EventType.NOTE))
    (tmp_path / "audit-signing.key").unlink()
    report = AuditTrail(db, anchor=AuditAnchor.from_settings(settings)).verify()
    assert (report.ok, report.kind) == (False, "anchor_forged")


def _seed() -> tuple[bytes, Ed25519PrivateKey]:
    seed = bytes(range(32))
    return seed, Ed25519PrivateKey.from_private_bytes(seed)


@pytest.mark.parametrize(
    "form",
    [
        lambda seed, key: seed.hex(),
        lambda seed, key: base64.b64encode(seed).decode(),
        lambda seed, key: base64.urlsafe_b64encode(seed).decode().rstrip("="),
        lambda seed, key: key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    ],
    ids=["hex", "base64", "base64url", "pem"],
)
def test_the_signing_key_setting_accepts_its_documented_forms(form: Callable[[bytes, Ed25519PrivateKey], str]) -> None:
    seed, key = _seed()
    parsed = parse_signing_key(form(seed, key))
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert parsed.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)


@pytest.mark.parametrize("bad", ["", "abc", "00" * 31, "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"])
def test_a_malformed_signing_key_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_signing_key(bad)


def test_the_env_key_signs_and_the_home_holds_no_key_file(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed, _ = _seed()
    monkeypatch.setenv("ORDEROPS_AUDIT_SIGNING_KEY", seed.hex())
    monkeypatch.setenv("ORDEROPS_INSTALLATION_ID", "plant-7")
    settings = Settings(home=tmp_path)
    trail = AuditTrail(db, anchor=AuditAnchor.from_settings(settings))
    trail.append(AuditEvent(event_type=EventType.NOTE))
    assert not (tmp_path / "audit-signing.key").exists()
    line = json.loads((tmp_path / "audit-anchors.jsonl").read_text())
    assert line["installation_id"] == "plant-7"
    assert trail.verify().ok
