"""One acknowledgment draft per document, PO and decision, however often intake runs.

Two workers taking in the same document at once both get past "no stored result yet", and a graph
resumed after a crash runs its acknowledge node again: each must find the drafts the other wrote,
not add a second 997 / 855 / reply for the partner to receive twice.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core.db import Database
from core.db.base import Base
from intake.pipeline import acknowledge_stage, act_stage, decide_stage, parse_stage, process_document, validate_stage
from tests.intake.test_concurrent_intake import WORKERS, _all_at_once
from tests.intake.test_pipeline import Intake, Line, build_intake, x12_850


def _kinds(intake: Intake, doc_id: str) -> Counter[tuple[int | None, str]]:
    return Counter((d.po_index, d.kind) for d in intake.deps.acks.list(doc_id))


def _x12_doc(intake: Intake, po_number: str) -> str:
    c = intake.customer()
    assert c.edi_id is not None
    (a,) = intake.skus(1)
    lines: list[Line] = [(3, "EA", intake.price(c, a), "VN", a, "")]
    return intake.receive(x12_850(c.edi_id, po_number, intake.address(c), lines), filename="po.x12")


def test_parallel_intakes_of_one_document_draft_each_ack_once(db: Database, tmp_path: Path) -> None:
    intake = build_intake(db, tmp_path)
    doc_id = _x12_doc(intake, "PO-ACK-PAR")
    results, errors = _all_at_once(WORKERS, lambda _i: process_document(doc_id, intake.deps))
    assert errors == [], [repr(e) for e in errors]
    assert _kinds(intake, doc_id) == Counter({(None, "x12-997"): 1, (0, "x12-855"): 1})
    # Every worker reports the drafts that are stored, not ones it made and lost.
    stored = {d.id for d in intake.deps.acks.list(doc_id)}
    assert all({a.id for a in r.acks} == stored for r in results)


def test_acknowledge_stage_run_twice_stores_the_first_drafts(db: Database, tmp_path: Path) -> None:
    """The intake graph's acknowledge node, replayed (a resume after a crash, a second worker)."""
    intake = build_intake(db, tmp_path)
    doc_id = _x12_doc(intake, "PO-ACK-TWICE")
    deps = intake.deps
    parsed = parse_stage(doc_id, deps)
    v = validate_stage(parsed, 0, deps)
    out = act_stage(v, decide_stage(v, deps), parsed.facts[0], deps)
    assert out.status == "created", out.reasons
    first = acknowledge_stage(parsed, [v], [out], deps)
    second = acknowledge_stage(parsed, [v], [out], deps)
    assert [d.id for d in second] == [d.id for d in first]
    assert _kinds(intake, doc_id) == Counter({(None, "x12-997"): 1, (0, "x12-855"): 1})


def test_the_migration_matches_the_table(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "intake_acks" in repr(d)] == []


def test_one_po_in_two_documents_at_once_is_confirmed_once(db: Database, tmp_path: Path) -> None:
    """The same PO sent twice at once (a partner's retry): one order, and one confirmation of it,
    as when the copies arrive one after the other (the second is a duplicate, not confirmed)."""
    intake = build_intake(db, tmp_path)
    c = intake.customer()
    assert c.edi_id is not None
    (a,) = intake.skus(1)
    lines: list[Line] = [(5, "EA", intake.price(c, a), "VN", a, "")]
    docs = [intake.receive(x12_850(c.edi_id, "PO-ACK-TWO", intake.address(c), lines, control=n), filename=f"{n}.x12")
            for n in (1, 2)]  # fmt: skip
    results, errors = _all_at_once(2, lambda i: process_document(docs[i], intake.deps))
    assert errors == [], [repr(e) for e in errors]
    assert len({o.order_id for r in results for o in r.outcomes if o.status == "created"}) == 1
    confirmations = [d for doc in docs for d in intake.deps.acks.list(doc) if d.kind == "x12-855"]
    assert len(confirmations) == 1, [(d.document_id, d.key) for d in confirmations]
