"""The tamper-evident audit trail of tool calls.

Every event of a tool call (proposed, denied, awaiting approval, approved, rejected, executed,
failed, or a free note) is appended as one row of a hash chain::

    row_hash = sha256(prev_hash + canonical_json(row content, seq included))

and the chain head (last seq and hash) is kept in a separate row, so that :meth:`AuditTrail.verify`
notices an edited field, a deleted row (the last one included), a forged row and two swapped rows.
Personal data is redacted (:mod:`guardrails.redaction`) *before* hashing, so the trail never holds
it and verification never needs it.

The chain alone cannot notice someone who rewrites rows *and* the head together (cuts the tail and
moves the head back, re-hashes every row, deletes everything). With an :class:`~guardrails.anchor.AuditAnchor`
the trail signs checkpoints of its head with a key outside the database into a sink outside the
database, and :meth:`AuditTrail.verify` holds the chain to every checkpoint.

What this module must never do: update or delete an event row, append without holding the
chain-head lock (that would fork the chain), or anchor a row before its transaction committed.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, Text, cast, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables import AuditEventRow, AuditHeadRow
from core.errors import ConfigurationError, Conflict, ValidationFailed
from guardrails._store import JsonValue, as_utc, canonical_json, sha256_hex, to_jsonable, write_transaction
from guardrails.anchor import AnchorCheck, AuditAnchor, Checkpoint
from guardrails.redaction import Redactor

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first row of every trail."""

DEFAULT_TRAIL = "main"


class EventType(StrEnum):
    PROPOSED = "proposed"
    DENIED = "denied"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    FAILED = "failed"
    NOTE = "note"


class AuditEvent(BaseModel):
    """What the caller records. ``at`` and ``event_id`` are filled in when not given."""

    model_config = ConfigDict(frozen=True)

    event_type: EventType
    run_id: str | None = None
    call_id: str | None = None
    """Groups the events of one tool call (proposed -> approved -> executed)."""
    tool: str | None = None
    arguments: Any = None
    result: Any = None
    preview: Any = None
    actor: str | None = None
    """Who acted: an agent run (``run:<id>``) or a user."""
    approver: str | None = None
    policy_version: str | None = None
    reasons: list[str] = Field(default_factory=list)
    model: str | None = None
    prompt_version: str | None = None
    duration_ms: int | None = None
    at: datetime | None = None
    event_id: str | None = None


class AuditRecord(BaseModel):
    """One stored row, as read back (personal data already redacted)."""

    model_config = ConfigDict(frozen=True)

    trail: str
    seq: int
    event_id: str
    at: datetime
    event_type: str
    run_id: str | None
    call_id: str | None
    tool: str | None
    arguments: JsonValue
    result: JsonValue
    preview: JsonValue
    actor: str | None
    approver: str | None
    policy_version: str | None
    reasons: list[str]
    model: str | None
    prompt_version: str | None
    duration_ms: int | None
    prev_hash: str
    row_hash: str

    def to_json(self) -> str:
        return canonical_json(self.model_dump(mode="json"))


TamperKind = Literal[
    # found by the chain itself
    "edited",
    "deleted",
    "inserted",
    "reordered",
    # found only against the signed checkpoints (guardrails.anchor)
    "truncated",
    "rewritten",
    "wiped",
    "anchor_forged",
    "unanchored",
]


class VerifyReport(BaseModel):
    """Outcome of :meth:`AuditTrail.verify`. ``problem`` says in words what was found first."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    kind: TamperKind | None = None
    problem: str | None = None
    anchored: bool = Field(default=False, description="Whether the chain was checked against signed checkpoints.")
    anchors_checked: int = Field(default=0, description="Valid checkpoints of this trail found in the anchor sink.")
    last_anchored_seq: int | None = Field(
        default=None, description="Highest anchored seq; rows after it rest on the chain alone."
    )
    anchor_sink: str | None = None


def _content(row: AuditEventRow) -> dict[str, JsonValue]:
    """The hashed content of a row: every column but ``row_hash`` (``prev_hash`` is prefixed)."""
    return {
        "trail": row.trail,
        "seq": row.seq,
        "event_id": row.event_id,
        "at": as_utc(row.at).isoformat(),
        "event_type": row.event_type,
        "run_id": row.run_id,
        "call_id": row.call_id,
        "tool": row.tool,
        "arguments": row.arguments,
        "result": row.result,
        "preview": row.preview,
        "actor": row.actor,
        "approver": row.approver,
        "policy_version": row.policy_version,
        "reasons": row.reasons,
        "model": row.model,
        "prompt_version": row.prompt_version,
        "duration_ms": row.duration_ms,
    }


def compute_row_hash(row: AuditEventRow, *, seq: int | None = None) -> str:
    """The hash ``row`` should carry (at ``seq`` if given, to test where a moved row belongs)."""
    content = _content(row)
    if seq is not None:
        content["seq"] = seq
    return sha256_hex(row.prev_hash + canonical_json(content))


def _record(row: AuditEventRow) -> AuditRecord:
    return AuditRecord(
        trail=row.trail,
        seq=row.seq,
        event_id=row.event_id,
        at=as_utc(row.at),
        event_type=row.event_type,
        run_id=row.run_id,
        call_id=row.call_id,
        tool=row.tool,
        arguments=row.arguments,
        result=row.result,
        preview=row.preview,
        actor=row.actor,
        approver=row.approver,
        policy_version=row.policy_version,
        reasons=list(row.reasons or []),
        model=row.model,
        prompt_version=row.prompt_version,
        duration_ms=row.duration_ms,
        prev_hash=row.prev_hash,
        row_hash=row.row_hash,
    )


class AuditTrail:
    """Append-only, hash-chained event log of one trail (default ``main``)."""

    def __init__(
        self,
        db: Database,
        redactor: Redactor | None = None,
        clock: Clock | None = None,
        *,
        trail: str = DEFAULT_TRAIL,
        anchor: AuditAnchor | None = None,
    ) -> None:
        if not trail or len(trail) > 32:
            raise ValidationFailed("trail name must be 1-32 characters")
        self.db = db
        self.redactor = redactor
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.trail = trail
        self.anchor = anchor
        """Where checkpoints go after appends and what :meth:`verify` checks against; None: chain only."""

    # --- writing --------------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> AuditRecord:
        """Redact, chain and store ``event``; returns the stored record.

        Safe under concurrency: appenders queue on the chain-head row (``SELECT ... FOR UPDATE``
        on PostgreSQL, the database write lock on SQLite), so no two rows get the same
        ``prev_hash`` and the chain cannot fork. With an anchor, the row may be checkpointed
        once committed (see :meth:`AuditAnchor.note_append`).

        Inside :meth:`Database.one_transaction` the row joins that block and commits (or rolls
        back) with it, so it is not anchored here: the block's owner calls :meth:`anchor_committed`
        once the block has committed.
        """
        if event.duration_ms is not None and event.duration_ms < 0:
            raise ValidationFailed("duration_ms must not be negative")
        at = as_utc(event.at or self.clock.now())
        row = AuditEventRow(
            trail=self.trail,
            event_id=event.event_id or str(uuid.uuid4()),
            at=at.replace(tzinfo=None) if self.db.is_sqlite else at,
            event_type=EventType(event.event_type).value,
            run_id=event.run_id,
            call_id=event.call_id,
            tool=event.tool,
            arguments=self._redact(event.arguments),
            result=self._redact(event.result),
            preview=self._redact(event.preview),
            actor=event.actor,
            approver=event.approver,
            policy_version=event.policy_version,
            reasons=[self.redactor.redact_text(r) if self.redactor else r for r in event.reasons],
            model=event.model,
            prompt_version=event.prompt_version,
            duration_ms=event.duration_ms,
        )
        joined = self.db.in_one_transaction()
        with write_transaction(self.db) as session:
            head = self._lock_head(session)
            row.seq = head.last_seq + 1
            row.prev_hash = head.last_hash
            row.row_hash = compute_row_hash(row)
            session.add(row)
            head.last_seq = row.seq
            head.last_hash = row.row_hash
            session.flush()
            record = _record(row)
        # after the commit: a checkpoint must never name a row that could still roll back
        if not joined:
            self.anchor_committed(record)
        return record

    def anchor_committed(self, record: AuditRecord) -> None:
        """Count ``record``, now committed, towards the next checkpoint (and make it if due).
        :meth:`append` does this itself unless the row joined an enclosing transaction."""
        if self.anchor is not None:
            self.anchor.note_append(self.trail, record.seq, record.row_hash)

    def _redact(self, value: Any) -> JsonValue:
        return self.redactor.redact(value) if self.redactor is not None else to_jsonable(value)

    def _lock_head(self, session: Session) -> AuditHeadRow:
        values = {"trail": self.trail, "last_seq": 0, "last_hash": GENESIS_HASH}
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        session.execute(insert(AuditHeadRow).values(**values).on_conflict_do_nothing(index_elements=["trail"]))
        stmt = select(AuditHeadRow).where(AuditHeadRow.trail == self.trail).with_for_update()
        return session.execute(stmt.execution_options(populate_existing=True)).scalar_one()

    # --- reading --------------------------------------------------------------------------------

    def list(
        self,
        *,
        run_id: str | None = None,
        call_id: str | None = None,
        event_type: EventType | str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        mentioning: str | None = None,
    ) -> list[AuditRecord]:
        """Events in chain order, filtered; ``mentioning``: only events whose arguments or result
        name this id (an order's history)."""
        stmt = self._query(run_id, call_id, event_type, after_seq, limit)
        if mentioning is not None:
            needle = json.dumps(mentioning)  # the id as a JSON string, quotes included: no prefix matches
            stmt = stmt.where(
                or_(
                    cast(AuditEventRow.arguments, Text).contains(needle, autoescape=True),
                    cast(AuditEventRow.result, Text).contains(needle, autoescape=True),
                )
            )
        with self.db.sessions() as session:
            return [_record(r) for r in session.scalars(stmt)]

    def _query(
        self,
        run_id: str | None,
        call_id: str | None,
        event_type: EventType | str | None,
        after_seq: int,
        limit: int | None,
    ) -> Select[AuditEventRow]:
        stmt = select(AuditEventRow).where(AuditEventRow.trail == self.trail, AuditEventRow.seq > after_seq)
        if run_id is not None:
            stmt = stmt.where(AuditEventRow.run_id == run_id)
        if call_id is not None:
            stmt = stmt.where(AuditEventRow.call_id == call_id)
        if event_type is not None:
            stmt = stmt.where(AuditEventRow.event_type == str(event_type))
        stmt = stmt.order_by(AuditEventRow.seq)
        return stmt.limit(limit) if limit is not None else stmt

    def head(self) -> tuple[int, str]:
        """(last seq, last hash): copy it somewhere else to anchor the trail."""
        with self.db.sessions() as session:
            head = session.get(AuditHeadRow, self.trail)
            return (head.last_seq, head.last_hash) if head is not None else (0, GENESIS_HASH)

    def export_jsonl(self, dest: str | Path | IO[str], *, run_id: str | None = None) -> int:
        """Write the events (all, or one run's) as JSON lines with their hashes; returns the count.

        A one-run export cannot be chain-verified on its own (its neighbours are missing), but
        every line still carries ``prev_hash`` and ``row_hash`` to check against the full trail.
        """
        ctx: Any = open(dest, "w", encoding="utf-8") if isinstance(dest, str | Path) else nullcontext(dest)  # noqa: SIM115
        count = 0
        with ctx as out, self.db.sessions() as session:
            stmt = self._query(run_id, None, None, 0, None).execution_options(yield_per=500)
            for row in session.scalars(stmt):
                out.write(json.dumps(_record(row).model_dump(mode="json"), sort_keys=True, ensure_ascii=False))
                out.write("\n")
                count += 1
        return count

    # --- verification ---------------------------------------------------------------------------

    def verify(self, *, anchor: AuditAnchor | None = None) -> VerifyReport:
        """Re-walk the chain and the head, then hold them to the signed checkpoints; report the
        first thing wrong, in words.

        Chain kinds: ``edited`` (a row's content no longer matches its hash), ``deleted`` (a seq is
        missing, or the head is past the last row), ``inserted`` (a self-consistent row that the
        chain does not lead to: forged, with a recomputed hash), ``reordered`` (a row is intact but
        sits at another row's seq). Anchor kinds (with ``anchor``, default :attr:`anchor`):
        ``anchor_forged`` (a checkpoint's signature fails; reported first, since the anchors are
        then not to be trusted), ``truncated`` (an anchored row is gone: the tail was cut and the
        head moved), ``wiped`` (the trail is empty but was anchored), ``rewritten`` (an anchored
        row has another hash now: the chain was re-hashed), ``unanchored`` (rows but no checkpoint
        at all: the anchor log was removed, or anchoring was only just enabled).
        """
        anchor = anchor if anchor is not None else self.anchor
        with self.db.sessions() as session:
            head = session.get(AuditHeadRow, self.trail)
            rows = list(session.scalars(self._query(None, None, None, 0, None)))
        head_seq, head_hash = (head.last_seq, head.last_hash) if head is not None else (0, GENESIS_HASH)
        chain = self._verify_chain(rows, head is not None, head_seq, head_hash)
        if anchor is None:
            return chain
        found = anchor.check(self.trail, {r.seq: r.row_hash for r in rows}, head_seq)
        return self._with_anchors(chain, found, anchor)

    @staticmethod
    def _with_anchors(chain: VerifyReport, found: AnchorCheck, anchor: AuditAnchor) -> VerifyReport:
        finding = found.forged or (None if not chain.ok else found.mismatch)
        update: dict[str, Any] = {
            "anchored": True,
            "anchors_checked": found.anchors,
            "last_anchored_seq": found.last_seq,
            "anchor_sink": anchor.sink.name,
        }
        if finding is not None:
            update |= {"ok": False, "kind": finding.kind, "first_bad_seq": finding.seq, "problem": finding.problem}
        return chain.model_copy(update=update)

    def _verify_chain(
        self, rows: builtins.list[AuditEventRow], has_head: bool, head_seq: int, head_hash: str
    ) -> VerifyReport:
        def report(seq: int | None, kind: TamperKind | None, problem: str | None) -> VerifyReport:
            return VerifyReport(
                ok=kind is None,
                rows_checked=len(rows),
                head_seq=head_seq,
                head_hash=head_hash,
                first_bad_seq=seq,
                kind=kind,
                problem=problem,
            )

        if not has_head and rows:
            return report(rows[-1].seq, "deleted", "the chain head row is missing")
        for kind, seq, problem in self._walk(rows):
            return report(seq, kind, problem)
        last_seq = rows[-1].seq if rows else 0
        last_hash = rows[-1].row_hash if rows else GENESIS_HASH
        if last_seq < head_seq:
            return report(last_seq + 1, "deleted", f"rows {last_seq + 1}..{head_seq} after the last row are missing")
        if last_seq > head_seq:
            return report(head_seq + 1, "inserted", f"rows {head_seq + 1}..{last_seq} were added past the chain head")
        if last_hash != head_hash:
            return report(last_seq, "edited", f"row {last_seq} is not the row the chain head recorded")
        return report(None, None, None)

    # --- anchoring ------------------------------------------------------------------------------

    def checkpoint(self, *, anchor: AuditAnchor | None = None, verify: bool = True) -> Checkpoint:
        """Sign the current head into the anchor sink (``orderops audit anchor``, or a schedule).

        With ``verify`` (the default) the whole trail must verify first, so that a tampered chain
        is never vouched for; a schedule that runs often may pass ``verify=False``: the head row
        must then still exist with the head's hash, and any earlier tampering stays visible
        against the older checkpoints anyway. Raises :class:`~core.errors.Conflict` when the trail
        does not verify.
        """
        anchor = anchor if anchor is not None else self.anchor
        if anchor is None:
            raise ConfigurationError("this audit trail has no anchor configured")
        if verify:
            report = self.verify(anchor=anchor)
            # a trail that never had a checkpoint is exactly what this call is for
            if not report.ok and report.kind != "unanchored":
                raise Conflict(
                    f"the audit trail does not verify; refusing to anchor it: {report.problem}",
                    kind=report.kind,
                    seq=report.first_bad_seq,
                )
            return anchor.checkpoint(self.trail, report.head_seq, report.head_hash)
        with self.db.sessions() as session:
            head = session.get(AuditHeadRow, self.trail)
            seq, last = (head.last_seq, head.last_hash) if head is not None else (0, GENESIS_HASH)
            row = session.get(AuditEventRow, (self.trail, seq)) if seq > 0 else None
        if seq > 0 and (row is None or row.row_hash != last):
            raise Conflict("the chain head does not match its row; run `orderops audit verify`", seq=seq)
        return anchor.checkpoint(self.trail, seq, last)

    def checkpoint_if_moved(self, *, anchor: AuditAnchor | None = None) -> Checkpoint | None:
        """For a schedule: anchor the head unless this process already anchored exactly it.
        Cheap (no chain walk); returns the new checkpoint or None."""
        anchor = anchor if anchor is not None else self.anchor
        if anchor is None:
            return None
        seq, last = self.head()
        if seq == 0 or anchor.last_checkpointed(self.trail) == (seq, last):
            return None
        return self.checkpoint(anchor=anchor, verify=False)

    def _walk(self, rows: builtins.list[AuditEventRow]) -> Iterator[tuple[TamperKind, int, str]]:
        """Yield problems in chain order (the caller takes the first)."""
        broken = {r.seq: r for r in rows if compute_row_hash(r) != r.row_hash}
        # A broken row may be intact but moved: try it at the seqs it could belong to.
        suspects = list(broken.values())[:200]
        expected_seq, expected_prev = 1, GENESIS_HASH
        for row in rows:
            if row.seq != expected_seq:
                yield from _gap_problems(row, expected_seq, suspects)
            if row.seq in broken:
                yield from _broken_row_problems(row, suspects)
            if row.prev_hash != expected_prev:
                yield from _unchained_problems(row)
            expected_seq, expected_prev = row.seq + 1, row.row_hash


def _home_of(row: AuditEventRow, candidates: Iterable[int]) -> int | None:
    """The first other seq at which ``row`` hashes right (it was moved there from), if any."""
    for seq in candidates:
        if seq != row.seq and compute_row_hash(row, seq=seq) == row.row_hash:
            return seq
    return None


def _gap_problems(
    row: AuditEventRow, expected_seq: int, suspects: list[AuditEventRow]
) -> Iterator[tuple[TamperKind, int, str]]:
    """Seqs skipped before ``row``: a suspect that belongs at the first of them was renumbered."""
    for s in suspects:
        if _home_of(s, [expected_seq]) is not None:
            yield ("edited", expected_seq, f"row {expected_seq} was renumbered to seq {s.seq}")
    yield ("deleted", expected_seq, f"rows {expected_seq}..{row.seq - 1} are missing")


def _broken_row_problems(row: AuditEventRow, suspects: list[AuditEventRow]) -> Iterator[tuple[TamperKind, int, str]]:
    """A row that does not match its hash: moved from another suspect's seq, pushed down by
    inserted rows, pulled up by deleted ones, or (always) edited."""
    other = _home_of(row, (s.seq for s in suspects))
    if other is not None:
        yield ("reordered", row.seq, f"row at seq {row.seq} is intact but belongs at seq {other}")
    near = _home_of(row, range(max(1, row.seq - 3), row.seq + 4))
    if near is not None and near < row.seq:
        yield ("inserted", near, f"{row.seq - near} forged row(s) inserted before seq {row.seq}")
    if near is not None:
        yield ("deleted", row.seq, f"row(s) deleted before seq {row.seq} and later rows renumbered")
    yield ("edited", row.seq, f"row {row.seq} does not match its hash (content edited)")


def _unchained_problems(row: AuditEventRow) -> Iterator[tuple[TamperKind, int, str]]:
    """A row whose previous hash is not the row before's: that row was forged or replaced."""
    if row.seq == 1:
        yield ("inserted", 1, "row 1 does not start from the genesis hash (forged)")
    yield (
        "inserted",
        row.seq - 1,
        f"row {row.seq} is not chained to row {row.seq - 1}: row {row.seq - 1} was forged or replaced",
    )
