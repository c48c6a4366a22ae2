"""Reviewers' corrections and rejections are in the tamper-evident trail (issue 15, problem 8): a
reviewer who changed the buyer's price is named there, with the value the document gave."""

from __future__ import annotations

from decimal import Decimal

from guardrails.audit import EventType
from tests.intake.test_pipeline import Intake, Line, csv_po, x12_850
from tests.tools.conftest import APPROVER

# Fixtures from the pipeline tests.
from tests.intake.test_pipeline import intake, sqlite_intake  # noqa: F401  # isort: skip


def review_rows(it: Intake, event: EventType) -> list[dict[str, object]]:
    trail = it.deps.gateway.guard.audit
    return [
        {"actor": r.actor, "arguments": r.arguments, "reasons": r.reasons}
        for r in trail.list(event_type=event)
        if r.tool == "intake_review"
    ]


def test_a_price_correction_is_audited_with_the_original_value(intake: Intake) -> None:  # noqa: F811
    gold = intake.platinum_customer()
    assert gold.edi_id is not None
    (a,) = intake.skus(1)
    lines: list[Line] = [(2, "EA", Decimal("0.50"), "VN", a, "")]
    doc = intake.receive(x12_850(gold.edi_id, "PO-AUD-1", intake.address(gold), lines), filename="aud.x12")
    (out,) = intake.process(doc).outcomes
    queue = intake.deps.review_queue()
    fixed = str(intake.price(gold, a))
    queue.correct(out.review_item_id or "", APPROVER, {"lines[0].unit_price": fixed})
    (row,) = review_rows(intake, EventType.NOTE)
    assert row["actor"] == APPROVER.id
    args = row["arguments"]
    assert isinstance(args, dict)
    assert args["po_number"] == "PO-AUD-1"
    change = args["changes"]["lines[0].unit_price"]
    assert Decimal(str(change["from"])) == Decimal("0.50")
    assert change["to"] == fixed
    assert intake.deps.gateway.guard.audit.verify().ok


def test_a_rejection_is_audited_with_its_reason(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    c = it.customer()
    (a,) = it.skus(1)
    doc = it.receive(csv_po("PO-AUD-2", it.address(c), [(1, "EA", Decimal("0.01"), "VN", a, "")]), filename="r.csv",
                     channel="email", sender=c.email)  # fmt: skip
    (out,) = it.process(doc).outcomes
    it.deps.review_queue().reject(out.review_item_id or "", APPROVER, "price far below contract")
    (row,) = review_rows(it, EventType.REJECTED)
    assert row["actor"] == APPROVER.id
    assert row["reasons"] == ["price far below contract"]
