"""The review queue: corrections are validated again and remembered; approval goes through the gateway."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import InvalidTransition, ValidationFailed
from intake.validate import LearnedMappings
from tests.intake.test_pipeline import Intake, Line, csv_po, x12_850
from tests.tools.conftest import APPROVER, APPROVER_2

# Fixtures from the pipeline tests.
from tests.intake.test_pipeline import intake, sqlite_intake  # noqa: F401  # isort: skip


def test_corrected_part_mapping_is_learned_and_the_next_po_is_auto_created(intake: Intake) -> None:  # noqa: F811
    c = intake.customer()
    assert c.edi_id is not None
    a, b = intake.skus(2)
    pa, pb = intake.price(c, a), intake.price(c, b)
    lines: list[Line] = [(2, "EA", pa, "VN", a, ""), (6, "EA", pb, "BP", "ACME-778", "")]
    first = intake.process(intake.receive(x12_850(c.edi_id, "PO-LEARN-1", intake.address(c), lines), filename="1.x12"))
    (out,) = first.outcomes
    assert out.decision == "review"
    queue = intake.deps.review_queue()
    item = queue.get(out.review_item_id or "")
    assert item.validated.lines[1].sku is None
    assert any(f.code == "unknown_part" and f.field == "lines[1].sku" for f in item.validated.findings)

    item = queue.correct(item.id, APPROVER, {"lines[1].sku": b})
    assert item.validated.lines[1].sku == b
    assert item.validated.confidence["lines[1].sku"] == 1.0
    assert LearnedMappings(intake.net.db, intake.net.clock).lookup(c.id, "part", "acme-778") == b
    item = queue.approve(item.id, APPROVER)
    assert item.status == "approved"
    assert item.reviewer == APPROVER.id
    assert item.decided_at is not None
    order = intake.net.adapters.oms.get_order(item.order_id or "")
    assert [(ln.sku, ln.quantity) for ln in order.lines] == [(a, 2), (b, 6)]
    assert sorted(d.kind for d in intake.deps.acks.list(first.document_id)) == ["x12-855", "x12-997"]
    with pytest.raises(InvalidTransition):
        queue.approve(item.id, APPROVER)

    # The same customer's next PO with that part number: no person needed.
    nxt: list[Line] = [(4, "EA", pb, "BP", "ACME-778", "")]
    (out2,) = intake.process(intake.receive(x12_850(c.edi_id, "PO-LEARN-2", intake.address(c), nxt, control=2),
                                            filename="2.x12")).outcomes  # fmt: skip
    assert (out2.decision, out2.status) == ("auto_create", "created"), out2.reasons
    assert [(ln.sku, ln.quantity) for ln in intake.net.adapters.oms.get_order(out2.order_id or "").lines] == [(b, 4)]


def test_bad_correction_changes_nothing_and_reject_closes_the_item(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    c = it.customer()
    (a,) = it.skus(1)
    doc = it.receive(csv_po("PO-REJ-1", it.address(c), [(1, "EA", Decimal("0.01"), "VN", a, "")]), filename="r.csv",
                     channel="email", sender=c.email)  # fmt: skip
    (out,) = it.process(doc).outcomes
    queue = it.deps.review_queue()
    before = queue.get(out.review_item_id or "")
    with pytest.raises(ValidationFailed):
        queue.correct(before.id, APPROVER, {"lines[0].colour": "red"})
    with pytest.raises(ValidationFailed):
        queue.correct(before.id, APPROVER, {"lines[0].quantity": "-3"})
    assert queue.get(before.id) == before
    assert [i.id for i in queue.list(status="open")] == [before.id]
    done = queue.reject(before.id, APPROVER, "price far below contract; asked the buyer")
    assert done.status == "rejected"
    assert done.decision_reason
    assert done.order_id is None
    assert queue.list(status="open") == []
    replies = [d for d in it.deps.acks.list(doc) if d.kind == "email"]
    assert "not accepted" in (replies[-1].subject or "")
    assert it.orders_for(c.id, "PO-REJ-1") == []


def test_price_correction_then_approval_of_a_policy_parked_order(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    gold = it.platinum_customer()
    assert gold.edi_id is not None
    (a,) = it.skus(1)
    lines: list[Line] = [(2, "EA", Decimal("0.50"), "VN", a, "")]
    (out,) = it.process(it.receive(x12_850(gold.edi_id, "PO-G-2", it.address(gold), lines), filename="g.x12")).outcomes
    queue = it.deps.review_queue()
    item = queue.correct(out.review_item_id or "", APPROVER, {"lines[0].unit_price": str(it.price(gold, a))})
    assert item.validated.confidence["lines[0].price"] == 1.0
    item = queue.approve(item.id, APPROVER)  # policy: platinum customers need an approver other than the requester
    assert item.status == "awaiting_approval"
    assert item.approval_id is not None
    assert item.order_id is None
    item = queue.approve(item.id, APPROVER_2)
    assert item.status == "approved"
    assert item.order_id is not None
    assert it.orders_for(gold.id, "PO-G-2") == [item.order_id]
