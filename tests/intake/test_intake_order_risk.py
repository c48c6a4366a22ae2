"""Order risk at intake (issue 18, item 5): a PO the decision would create is scored against its
customer's earlier orders; at or above the hold threshold it goes to review with the score's
reasons, and nothing is created. An ordinary PO from the same customer is still created."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.db import Database
from core.risk import HOLD_THRESHOLD, RiskReason, RiskScore
from intake.decide import IntakeDecision, with_order_risk
from tests.intake.test_pipeline import Intake, Line, build_intake, x12_850


@pytest.fixture
def intake(db: Database, tmp_path: Path) -> Intake:
    return build_intake(db, tmp_path)


def _po(it: Intake, po_number: str, quantity: int) -> bytes:
    c = it.customer()
    assert c.edi_id is not None
    (a,) = it.skus(1)
    lines: list[Line] = [(quantity, "EA", it.price(c, a), "VN", a, "")]
    return x12_850(c.edi_id, po_number, it.address(c), lines)


def test_a_po_far_above_the_customers_usual_value_is_held_for_review(intake: Intake) -> None:
    c = intake.customer()
    ordinary = intake.process(intake.receive(_po(intake, "PO-RISK-OK", 3), filename="ok.x12"))
    (ok,) = ordinary.outcomes
    assert (ok.decision, ok.status) == ("auto_create", "created"), ok.reasons

    risky = intake.process(intake.receive(_po(intake, "PO-RISK-BIG", 90_000), filename="big.x12"))
    (out,) = risky.outcomes
    assert (out.decision, out.status, out.order_id) == ("review", "queued", None)
    (reason,) = out.reasons
    assert reason.startswith("order risk ")
    assert "vs usual" in reason
    item = intake.deps.review_queue().get(out.review_item_id or "")
    assert item.status == "open"
    assert item.reasons == out.reasons
    assert intake.orders_for(c.id, "PO-RISK-BIG") == []


def test_with_no_hold_threshold_intake_does_not_score(intake: Intake) -> None:
    it = Intake(net=intake.net, store=intake.store, deps=replace(intake.deps, risk_hold=None))
    (out,) = it.process(it.receive(_po(it, "PO-RISK-OFF", 90_000), filename="big.x12")).outcomes
    assert out.decision == "auto_create", out.reasons  # policy then wants an approver for its value
    assert not any(r.startswith("order risk") for r in out.reasons)


def test_only_an_auto_create_at_or_above_the_threshold_is_held() -> None:
    create = IntakeDecision(kind="auto_create", reasons=["every required field is confident; no blocking finding"])
    why = ((RiskReason.NEW_SHIP_TO, "first order to A-1"), (RiskReason.VALUE_ABOVE_HISTORY, "value 9 vs usual 1"))
    high = RiskScore(0.61, why, True)
    low = RiskScore(0.3, why[:1], False)
    held = with_order_risk(create, high, HOLD_THRESHOLD)
    assert held.kind == "review"
    assert held.reasons == ["order risk 0.61 >= 0.50: first order to A-1; value 9 vs usual 1"]
    assert with_order_risk(create, low, HOLD_THRESHOLD) is create
    assert with_order_risk(create, None, HOLD_THRESHOLD) is create
    review = IntakeDecision(kind="review", reasons=["x"])
    assert with_order_risk(review, high, HOLD_THRESHOLD) is review
