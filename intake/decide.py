"""The intake decision: create the order on our own, or hand it to a person.

``auto_create`` only when every required field (customer, ship-to, and each line's SKU, quantity,
unit and price) reaches its threshold and no finding blocks; a PO seen before with the same lines
is a ``duplicate`` (nothing to create); a PO seen before with other lines is a ``revision`` (a
person applies it: never automatic in this version); anything else goes to ``review`` with the
reasons. When in doubt this module says review: a wrong order costs more than a question.

An order that would be created is scored for risk against its customer's past orders
(:mod:`core.risk`); at or above the hold threshold it goes to review with the score's reasons
(:func:`with_order_risk`) instead of being created.

An order read by OCR (:mod:`intake.ocr`) is never created on its own: its field confidences are
capped by the OCR word confidences (:func:`with_ocr_confidence`) and it always goes to review.

Nor is an order holding a value a language model wrote that the document does not contain
(:func:`with_model_values_located`): a PO number made up from the date, a quantity of 2 where the
mail says 24 (both seen on recorded real-model extractions) validate like any value, so only the
extractor's ``llm_value_unlocated`` finding tells them apart; it blocks.

Nor is an order whose PO number or lines were read out of sentences (:mod:`intake.prose`, the
no-model reading of a mail written as prose): the ``read_from_prose`` findings block
(:func:`with_prose_reading`), so a person starts from a filled-in order instead of an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from core.domain import OrderCreate, OrderLineIn
from core.errors import ValidationFailed
from core.risk import RiskScore
from intake.model import Finding, PurchaseOrder
from intake.ocr import OCR_DOCUMENT_TYPE, low_confidence
from intake.prose import PROSE_CODE
from intake.validate import IntakeFinding, ValidatedOrder

__all__ = [
    "DecisionKind",
    "IntakeDecision",
    "Thresholds",
    "decide",
    "to_order_create",
    "with_change_order",
    "with_model_values_located",
    "with_ocr_confidence",
    "with_order_risk",
    "with_prose_reading",
]

OCR_REASON = "read by OCR from a scan: a person checks every field before an order is created"

DecisionKind = Literal["auto_create", "review", "duplicate", "revision"]


@dataclass(frozen=True)
class Thresholds:
    """Minimum confidence per required field for an automatic order.

    Defaults: exact evidence scores 1.0 and a reviewer-taught mapping 0.97, both pass; a fuzzy
    guess is capped at 0.8 (:data:`intake.validate.FUZZY_CAP`) and never passes. A missing price
    (contract price applies, 0.95) and a missing unit (base unit assumed, 0.9) pass; a missing
    ship-to passes only when the customer has a single address (0.9).
    """

    customer: float = 0.9
    ship_to: float = 0.85
    sku: float = 0.9
    quantity: float = 0.95
    uom: float = 0.9
    price: float = 0.9

    def for_field(self, path: str) -> float:
        name = path.rsplit(".", 1)[-1] if path.startswith("lines[") else path
        value = getattr(self, name, None)
        if not isinstance(value, float):
            raise ValidationFailed(f"no threshold for field {path!r}")
        return value


class IntakeDecision(BaseModel):
    """What to do with one validated PO, and why."""

    kind: DecisionKind
    reasons: list[str] = Field(default_factory=list)
    order: OrderCreate | None = None
    """The order to create (``auto_create`` only)."""
    low_fields: list[str] = Field(default_factory=list)
    """Required fields below their threshold."""


def required_fields(v: ValidatedOrder) -> list[str]:
    out = ["customer", "ship_to"]
    for ln in v.lines:
        out += [f"lines[{ln.index}].{k}" for k in ("sku", "quantity", "uom", "price")]
    return out


def to_order_create(v: ValidatedOrder) -> OrderCreate:
    """The OMS order for ``v``; raises ValidationFailed naming what is still missing."""
    missing: list[str] = []
    if v.customer_id is None:
        missing.append("customer")
    if v.ship_to_id is None:
        missing.append("ship_to")
    lines: list[OrderLineIn] = []
    for ln in v.lines:
        if ln.sku is None or ln.quantity is None or ln.quantity <= 0 or ln.unit_price is None:
            gaps = [k for k in ("sku", "quantity", "unit_price") if getattr(ln, k) is None] or ["quantity"]
            missing.append(f"line {ln.index + 1} ({', '.join(gaps)})")
            continue
        lines.append(OrderLineIn(sku=ln.sku, quantity=ln.quantity, unit_price=ln.unit_price))
    if not v.lines:
        missing.append("lines")
    if missing:
        raise ValidationFailed("the order is incomplete: " + "; ".join(missing), missing=missing)
    assert v.customer_id is not None
    return OrderCreate(customer_id=v.customer_id, ship_to_id=v.ship_to_id, external_ref=v.po_number,
                       promised_date=v.requested_delivery, lines=lines)  # fmt: skip


def _validated_path(po: PurchaseOrder, key: str) -> str | None:
    """The required field a parsed value feeds: ``lines[2].unit_price`` -> ``lines[2].price``."""
    if key.startswith("lines["):
        head, _, rest = key.partition("].")
        name = rest.split("[", 1)[0].split(".", 1)[0]
        field = {"product_ids": "sku", "quantity": "quantity", "unit": "uom", "unit_price": "price"}.get(name)
        return f"{head}].{field}" if field else None
    if key.startswith("parties["):
        try:
            party = po.parties[int(key[8 : key.index("]")])]
        except (ValueError, IndexError):
            return None
        return "ship_to" if party is po.ship_to else "customer"
    return None


def with_ocr_confidence(v: ValidatedOrder, parser_findings: list[Finding]) -> ValidatedOrder:
    """``v`` with what OCR's word confidences say: a required field read with a low confidence
    has its confidence capped there (and says so), and an order read by OCR gets a blocking
    finding with the confidences, so it is never created without a person."""
    po = v.purchase_order
    ocr = [f for f in parser_findings if f.code in ("ocr_read", "ocr_low_confidence")]
    if po.document_type != OCR_DOCUMENT_TYPE and not ocr:
        return v
    confidence = dict(v.confidence)
    findings = list(v.findings)
    for f in ocr:
        low = low_confidence(f)
        path = _validated_path(po, low[0]) if low else None
        if low is not None and path is not None and path in confidence:
            confidence[path] = min(confidence[path], low[1])
        findings.append(IntakeFinding(code=f.code, severity="warning", message=f.message, field=path,
                                      blocking=True, source=f.source))  # fmt: skip
    if not ocr:
        findings.append(IntakeFinding(code="ocr_read", severity="warning", message=OCR_REASON, blocking=True))
    return v.model_copy(update={"confidence": confidence, "findings": findings})


def with_model_values_located(v: ValidatedOrder, parser_findings: list[Finding]) -> ValidatedOrder:
    """``v`` with a blocking finding for every value the model wrote that is not in the document.

    The extractor already says so (``llm_value_unlocated``, a warning with no field path), but a
    warning alone decides nothing: the invented value then reads as exact evidence and the order is
    created with it. A person checks the value instead."""
    unlocated = [f for f in parser_findings if f.code == "llm_value_unlocated"]
    if not unlocated:
        return v
    why = " (a person checks it before an order is created)"
    blocking = [
        IntakeFinding(code=f.code, severity="warning", blocking=True, source=f.source, message=f.message + why)
        for f in unlocated
    ]
    return v.model_copy(update={"findings": [*v.findings, *blocking]})


def with_prose_reading(v: ValidatedOrder, parser_findings: list[Finding]) -> ValidatedOrder:
    """``v`` with a blocking finding for every value read from a sentence rather than from a field
    or an order line: "24 of the corner protectors, SKU-00003" is most likely 24 x SKU-00003, but
    a sentence can also say "we still have 24 of SKU-00003" - a person confirms it."""
    prose = [f for f in parser_findings if f.code == PROSE_CODE]
    if not prose:
        return v
    blocking = [
        IntakeFinding(code=f.code, severity="warning", blocking=True, source=f.source, message=f.message) for f in prose
    ]
    return v.model_copy(update={"findings": [*v.findings, *blocking]})


def with_change_order(v: ValidatedOrder, parser_findings: list[Finding]) -> ValidatedOrder:
    """A change order (:mod:`intake.doctype`) revises a PO we hold; one that matches no PO received
    before is not a new order to create on our own: a person looks at it."""
    change = next((f for f in parser_findings if f.code == "change_order"), None)
    if change is None or v.revision_of is not None or v.duplicate_of is not None:
        return v
    f = IntakeFinding(code="change_order_unmatched", severity="warning", blocking=True, source=change.source,
                      message=f"a change order for PO {v.po_number or '?'}, which was not received before; "
                      "a person applies it")  # fmt: skip
    return v.model_copy(update={"findings": [*v.findings, f]})


def decide(validated: ValidatedOrder, thresholds: Thresholds | None = None) -> IntakeDecision:
    """Deterministic and conservative; see the module docstring."""
    t = thresholds or Thresholds()
    v = validated
    if v.duplicate_of is not None:
        return IntakeDecision(kind="duplicate", reasons=[f"same PO and lines as document {v.duplicate_of}"])
    reasons = [f.message for f in v.blocking]
    if v.purchase_order.document_type == OCR_DOCUMENT_TYPE and OCR_REASON not in reasons:
        reasons.insert(0, OCR_REASON)  # whatever the confidences: never an order from OCR alone
    low = [p for p in required_fields(v) if v.confidence.get(p, 0.0) < t.for_field(p)]
    for p in low:
        why = next((f.message for f in v.findings if f.field == p and f.severity != "info"), None)
        reasons.append(
            f"{p}: confidence {v.confidence.get(p, 0.0):.2f} < {t.for_field(p):.2f}" + (f" ({why})" if why else "")
        )
    if v.revision_of is not None:
        return IntakeDecision(kind="revision", reasons=reasons, low_fields=low)
    if reasons:
        return IntakeDecision(kind="review", reasons=list(dict.fromkeys(reasons)), low_fields=low)
    try:
        order = to_order_create(v)
    except ValidationFailed as exc:  # belt and braces: confident fields should always be complete
        return IntakeDecision(kind="review", reasons=[exc.message])
    return IntakeDecision(kind="auto_create", reasons=["every required field is confident; no blocking finding"],
                          order=order)  # fmt: skip


def with_order_risk(decision: IntakeDecision, risk: RiskScore | None, threshold: float) -> IntakeDecision:
    """An ``auto_create`` whose order risk reaches ``threshold`` is held: it goes to review with the
    score and its reasons (``order risk 0.69 >= 0.50: first order to ADDR-1; value 41,200 vs usual
    1,310 (5.2 sd)``). Other decisions, and a score below the threshold, are left as they are."""
    if decision.kind != "auto_create" or risk is None or risk.score < threshold:
        return decision
    why = "; ".join(text for _reason, text in risk.reasons) or "no single reason"
    reason = f"order risk {risk.score:.2f} >= {threshold:.2f}: {why}"
    return IntakeDecision(kind="review", reasons=[reason])
