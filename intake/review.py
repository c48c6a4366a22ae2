"""The review queue: purchase orders a person must look at, and what they decided.

An item keeps everything a reviewer needs: the extracted order (with its source pointers), the
validated order with per-field confidences and findings, and the reasons it is here. A reviewer
corrects fields (the order is validated again), approves (the order is created through the tool
gateway, so policy, approvals and the audit trail apply exactly as for the agent) or rejects.

Corrections are remembered: a corrected part number -> SKU (and an unknown unit code -> our UOM)
is stored per customer in :class:`~intake.validate.LearnedMappings`, so the same customer's next
PO with that part needs no person. This module never creates an order except through the gateway.

A PO from a buyer we do not know is a ``new_customer`` item: it carries the customer the document
describes (:class:`~intake.onboarding.NewCustomerProposal`), and :meth:`ReviewQueue.create_customer`
creates that customer, its ship-to and its part cross-references in one approved ``create_customer``
call through the gateway, then validates the PO again so that it flows like any other.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.db.engine import Database
from core.db.tables_intake import IntakeReviewItemRow
from core.errors import ConfigurationError, Conflict, InvalidTransition, NotFound, PolicyDenied, ValidationFailed
from guardrails.approvals import ApprovalStatus
from guardrails.audit import AuditEvent, EventType
from guardrails.calls import Actor, digest_arguments
from intake.decide import Thresholds, decide, to_order_create
from intake.model import PurchaseOrder, Source
from intake.onboarding import NewCustomerProposal
from intake.validate import DocumentFacts, LearnedMappings, ReceivedPOs, ValidatedOrder, validate
from tools.gateway import Outcome, RunLedger, ToolGateway

__all__ = [
    "ReviewItem",
    "ReviewKind",
    "ReviewQueue",
    "ReviewStatus",
    "SubmitResult",
    "intake_idempotency_key",
    "intake_order_id",
    "submit_order",
]

ReviewStatus = Literal["open", "awaiting_approval", "approved", "rejected"]
ReviewKind = Literal["review", "revision", "approval", "new_customer"]
_LINE_RE = re.compile(r"^lines\[(\d+)\]\.(sku|uom|unit|quantity|unit_price|description)$")
_PO_FIELDS = ("po_number", "po_date")


class ReviewItem(BaseModel):
    id: str
    document_id: str
    po_index: int
    kind: ReviewKind
    customer_id: str | None = None
    """The customer guess (validation's, or the reviewer's correction)."""
    po_number: str | None = None
    status: ReviewStatus
    reasons: list[str] = Field(default_factory=list)
    extracted: PurchaseOrder
    """The order as the document stated it; source pointers in ``extracted.sources``."""
    facts: DocumentFacts
    validated: ValidatedOrder
    """With per-field ``confidence`` and ``findings`` (each with its source pointer)."""
    corrections: dict[str, Any] = Field(default_factory=dict)
    reviewer: str | None = None
    decision_reason: str | None = None
    approval_id: str | None = None
    order_id: str | None = None
    created_at: datetime
    decided_at: datetime | None = None


# --- creating the order (shared with the pipeline) --------------------------------------------------


def intake_order_id(v: ValidatedOrder) -> str:
    """The OMS order id for a PO: derived from its fingerprint, so one PO can never become two orders."""
    basis = v.fingerprint or hashlib.sha256(f"{v.document_id}|{v.po_index}".encode()).hexdigest()
    return f"IN-{basis[:20].upper()}"


def intake_idempotency_key(v: ValidatedOrder) -> str:
    """The ``create_order`` key: the PO's fingerprint (customer + normalised PO number), never the
    document, so two documents of one PO (a re-send by another channel, two workers at once) share
    it and the order is created once; the same basis as :func:`intake_order_id`. Only a PO without a
    fingerprint (no customer or PO number: never auto-created) falls back to document and index."""
    if v.fingerprint:
        return f"intake-create:{v.fingerprint}"
    return f"intake-create:doc:{v.document_id}:{v.po_index}"


class SubmitResult(BaseModel):
    status: Literal["created", "awaiting_approval", "denied", "failed"]
    order_id: str | None = None
    approval_id: str | None = None
    reasons: list[str] = Field(default_factory=list)
    call_id: str | None = None


def _result(outcome: Outcome, order_id: str) -> SubmitResult:
    if outcome.status in ("executed", "replayed"):
        done = (outcome.result or {}).get("done") or [order_id]
        return SubmitResult(status="created", order_id=str(done[0]), call_id=outcome.call_id, reasons=outcome.reasons)
    if outcome.status == "awaiting_approval":
        return SubmitResult(status="awaiting_approval", approval_id=outcome.approval_id, call_id=outcome.call_id,
                            reasons=outcome.reasons)  # fmt: skip
    reasons = list(outcome.reasons)
    if outcome.error:
        reasons.append(str(outcome.error.get("message") or outcome.error))
    status: Literal["denied", "failed"] = "denied" if outcome.status == "denied" else "failed"
    return SubmitResult(status=status, call_id=outcome.call_id, reasons=reasons)


def submit_order(gateway: ToolGateway, v: ValidatedOrder, *, actor: Actor, run: RunLedger) -> SubmitResult:
    """Propose ``create_order`` for ``v`` through the gateway (policy, approval, audit, idempotency)."""
    order = to_order_create(v)
    order_id = intake_order_id(v)
    outcome = gateway.propose(
        "create_order",
        {"order": order.model_dump(mode="json"), "order_id": order_id},
        actor=actor,
        run=run,
        idempotency_key=intake_idempotency_key(v),
    )
    return _result(outcome, order_id)


# --- the queue ----------------------------------------------------------------------------------------


def _to_model(r: IntakeReviewItemRow) -> ReviewItem:
    return ReviewItem(
        id=r.id, document_id=r.document_id, po_index=r.po_index, kind=r.kind,  # type: ignore[arg-type]
        customer_id=r.customer_id, po_number=r.po_number, status=r.status,  # type: ignore[arg-type]
        reasons=list(r.reasons or []), extracted=PurchaseOrder.model_validate(r.extracted["purchase_order"]),
        facts=DocumentFacts.model_validate(r.extracted["facts"]), validated=ValidatedOrder.model_validate(r.validated),
        corrections=dict(r.corrections or {}), reviewer=r.reviewer, decision_reason=r.decision_reason,
        approval_id=r.approval_id, order_id=r.order_id, created_at=r.created_at, decided_at=r.decided_at,
    )  # fmt: skip


def _patch_line(out: PurchaseOrder, path: str, i: int, name: str, value: Any) -> bool:
    """Apply one line correction; False for ``sku``/``uom`` (validation overrides, not document
    values). Quantities and prices must be finite, non-negative numbers (a quantity above zero)."""
    if i >= len(out.lines):
        raise ValidationFailed(f"{path}: the PO has {len(out.lines)} lines", field=path)
    if name in ("sku", "uom"):
        return False
    line = out.lines[i]
    if name not in ("quantity", "unit_price"):
        setattr(line, name, str(value))
        return True
    try:
        num = Decimal(str(value))
    except InvalidOperation:
        raise ValidationFailed(f"{path}: {value!r} is not a number", field=path) from None
    if not num.is_finite() or num < 0 or (name == "quantity" and num <= 0):
        raise ValidationFailed(f"{path}: {value!r} is out of range", field=path)
    setattr(line, name, num)
    return True


def _patch_po(po: PurchaseOrder, corrections: Mapping[str, Any]) -> PurchaseOrder:
    """Apply document-level corrections (quantities, prices, units, PO number/date) to a copy of ``po``."""
    out = po.model_copy(deep=True)
    manual = Source(kind="manual", document="review")
    for path, value in corrections.items():
        m = _LINE_RE.match(path)
        if m:
            if _patch_line(out, path, int(m.group(1)), m.group(2), value):
                out.sources[path] = manual
        elif path == "po_number":
            out.po_number = str(value)
            out.sources[path] = manual
        elif path == "po_date":
            try:
                out.po_date = value if isinstance(value, date) else date.fromisoformat(str(value))
            except ValueError:
                raise ValidationFailed(f"po_date: {value!r} is not a date", field=path) from None
            out.sources[path] = manual
        elif path not in ("customer", "ship_to"):
            raise ValidationFailed(f"cannot correct {path!r}; correctable: customer, ship_to, po_number, po_date, "
                                   "lines[i].sku|uom|unit|quantity|unit_price|description", field=path)  # fmt: skip
    return out


def _overrides(corrections: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path, value in corrections.items():
        m = _LINE_RE.match(path)
        if path in ("customer", "ship_to") or (m and m.group(2) in ("sku", "uom")):
            out[path] = str(value)
    return out


class ReviewQueue:
    """Review items in the database; approvals go through ``gateway`` (required for :meth:`approve`)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        gateway: ToolGateway | None = None,
        on_decided: Callable[[ReviewItem], object] | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.thresholds = thresholds
        """For validating again after a new customer is created (the pipeline's defaults when None)."""
        self.on_decided = on_decided
        """Called after an approve/reject (the pipeline drafts the acknowledgment there)."""
        self.mappings = LearnedMappings(db, clock)
        self.received = ReceivedPOs(db, clock)

    # --- reading -------------------------------------------------------------------------------------

    def get(self, item_id: str) -> ReviewItem:
        with self.db.begin() as s:
            row = s.get(IntakeReviewItemRow, item_id)
            if row is None:
                raise NotFound("review item", item_id)
            return _to_model(row)

    def list(self, status: ReviewStatus | None = None, *, limit: int = 100) -> list[ReviewItem]:
        with self.db.begin() as s:
            q = select(IntakeReviewItemRow).order_by(IntakeReviewItemRow.created_at, IntakeReviewItemRow.id)
            if status is not None:
                q = q.where(IntakeReviewItemRow.status == status)
            return [_to_model(r) for r in s.scalars(q.limit(limit))]

    def for_document(self, document_id: str, po_index: int) -> ReviewItem | None:
        with self.db.begin() as s:
            row = s.scalars(
                select(IntakeReviewItemRow).where(
                    IntakeReviewItemRow.document_id == document_id, IntakeReviewItemRow.po_index == po_index
                )
            ).first()
            return None if row is None else _to_model(row)

    # --- writing -------------------------------------------------------------------------------------

    def enqueue(
        self,
        validated: ValidatedOrder,
        facts: DocumentFacts,
        *,
        kind: ReviewKind,
        reasons: builtins.list[str],
        approval_id: str | None = None,
    ) -> ReviewItem:
        """Queue one PO (idempotent per document and PO index: a second call returns the first item)."""
        if validated.document_id is None:
            raise ValidationFailed("a review item needs the document id")
        existing = self.for_document(validated.document_id, validated.po_index)
        if existing is not None:
            return existing
        if kind == "review" and validated.customer_id is None and validated.new_customer is not None:
            kind = "new_customer"
        row = IntakeReviewItemRow(
            id=str(uuid.uuid4()), document_id=validated.document_id, po_index=validated.po_index, kind=kind,
            customer_id=validated.customer_id, po_number=(validated.po_number or None) and validated.po_number[:128],
            status="open", reasons=reasons,
            extracted={"purchase_order": validated.purchase_order.model_dump(mode="json"),
                       "facts": facts.model_dump(mode="json")},
            validated=validated.model_dump(mode="json"), corrections={}, approval_id=approval_id,
            created_at=self.clock.now(),
        )  # fmt: skip
        try:
            with self.db.begin() as s:
                s.add(row)
        except IntegrityError:
            found = self.for_document(validated.document_id, validated.po_index)
            if found is None:  # pragma: no cover - the unique index said it exists
                raise
            return found
        return self.get(row.id)

    def _open(self, item_id: str) -> ReviewItem:
        item = self.get(item_id)
        if item.status not in ("open", "awaiting_approval"):
            raise InvalidTransition(f"review item {item_id} is {item.status}; it was decided already",
                                    item_id=item_id, status=item.status)  # fmt: skip
        return item

    def correct(self, item_id: str, reviewer: Actor, corrections: Mapping[str, Any]) -> ReviewItem:
        """Apply ``{field_path: value}`` corrections, validate again, and remember part/unit mappings.

        Paths: ``customer`` (customer id), ``ship_to`` (address id), ``po_number``, ``po_date``,
        ``lines[i].sku``, ``lines[i].uom``, ``lines[i].unit``, ``lines[i].quantity``,
        ``lines[i].unit_price``, ``lines[i].description``. Bad input raises and changes nothing.
        """
        if not corrections:
            raise ValidationFailed("no corrections given")
        if self.gateway is None:
            raise ConfigurationError("the review queue needs the tool gateway to validate corrections")
        item = self._open(item_id)
        merged = {**item.corrections, **{k: (v.isoformat() if isinstance(v, date) else v)
                                         for k, v in corrections.items()}}  # fmt: skip
        po = _patch_po(item.extracted, merged)
        ctx = item.facts.context(mappings=self.mappings, received=self.received, overrides=_overrides(merged))
        v = validate(po, self.gateway.env, context=ctx)  # raises on an unknown customer / SKU / address
        self._learn(v, po, corrections, reviewer)
        self._audit(
            EventType.NOTE,
            item,
            reviewer,
            reasons=["a reviewer corrected the purchase order as read from the document"],
            changes={path: {"from": _original(item.validated, path), "to": merged[path]} for path in corrections},
        )
        # A parked approval was for the old arguments: it no longer matches what will be created.
        with self.db.begin() as s:
            row = s.get(IntakeReviewItemRow, item_id)
            assert row is not None
            row.corrections = merged
            row.validated = v.model_dump(mode="json")
            row.customer_id, row.po_number = v.customer_id, (v.po_number or None) and v.po_number[:128]
            row.reviewer = reviewer.id
            if row.approval_id is not None:
                row.approval_id, row.status = None, "open"
        return self.get(item_id)

    def _audit(
        self,
        event: EventType,
        item: ReviewItem,
        reviewer: Actor,
        *,
        reasons: builtins.list[str],
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Reviewers' corrections (with the values the document gave) and rejections go into the
        tamper-evident trail like any tool call: a changed price must be traceable to a person."""
        if self.gateway is None:
            return
        arguments: dict[str, Any] = {
            "review_item": item.id,
            "document_id": item.document_id,
            "po_number": item.po_number,
        }
        if changes is not None:
            arguments["changes"] = dict(changes)
        self.gateway.guard.audit.append(
            AuditEvent(event_type=event, tool="intake_review", arguments=arguments, actor=reviewer.id, reasons=reasons)
        )

    def _learn(self, v: ValidatedOrder, po: PurchaseOrder, corrections: Mapping[str, Any], reviewer: Actor) -> None:
        if v.customer_id is None:
            return
        for path, value in corrections.items():
            m = _LINE_RE.match(path)
            if not m or m.group(2) not in ("sku", "uom"):
                continue
            line = po.lines[int(m.group(1))]
            if m.group(2) == "sku":
                for pid in line.product_ids:
                    if pid.value.strip().upper() != str(value).strip().upper():
                        self.mappings.remember(v.customer_id, "part", pid.value, str(value), by=reviewer.id)
            elif line.unit:
                self.mappings.remember(v.customer_id, "uom", line.unit, str(value).upper(), by=reviewer.id)

    def approve(self, item_id: str, reviewer: Actor, *, run_id: str | None = None) -> ReviewItem:
        """Create the order through the gateway, as ``reviewer`` (policy and audit apply).

        When policy wants an approver, the item waits (``awaiting_approval``); another person's
        ``approve`` then decides that approval and executes it. Policy denial or a failure raises and
        leaves the item as it was.
        """
        if self.gateway is None:
            raise ConfigurationError("the review queue needs the tool gateway to create orders")
        item = self._open(item_id)
        if item.validated.customer_id is None and item.validated.new_customer is not None:
            return self.create_customer(item_id, reviewer, run_id=run_id)
        run = RunLedger(run_id=run_id or f"intake-review-{item.id}")
        v = item.validated
        if item.approval_id is not None:
            req = self.gateway.guard.approvals.get(item.approval_id)
            if req.status == ApprovalStatus.PENDING:
                self.gateway.decide(item.approval_id, approver=reviewer, decision="approve")
            outcome = self.gateway.execute_approved(item.approval_id, actor=reviewer, run=run)
            result = _result(outcome, intake_order_id(v))
        else:
            if item.kind == "revision" and v.revision_order_id is not None:
                raise Conflict(f"PO {v.po_number} is already order {v.revision_order_id}; applying a revision to an "
                               "existing order is not automated in this version: change that order and reject this "
                               "item", order_id=v.revision_order_id)  # fmt: skip
            result = submit_order(self.gateway, v, actor=reviewer, run=run)
        if result.status in ("denied", "failed"):
            raise PolicyDenied(f"the order was not created: {'; '.join(result.reasons) or result.status}",
                               reasons=result.reasons)  # fmt: skip
        now = self.clock.now()
        with self.db.begin() as s:
            row = s.get(IntakeReviewItemRow, item_id)
            assert row is not None
            row.reviewer = reviewer.id
            if result.status == "awaiting_approval":
                row.status, row.approval_id = "awaiting_approval", result.approval_id
            else:
                row.status, row.order_id, row.decided_at = "approved", result.order_id, now
        if result.status == "created" and result.order_id is not None:
            self.received.record(v, kind="revision" if item.kind == "revision" else "original",
                                 order_id=result.order_id)  # fmt: skip
        decided = self.get(item_id)
        if decided.status == "approved" and self.on_decided is not None:
            self.on_decided(decided)
        return decided

    def create_customer(
        self,
        item_id: str,
        reviewer: Actor,
        *,
        edits: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> ReviewItem:
        """Create the item's proposed customer — with its ship-to and part cross-references — in one
        ``create_customer`` call through the gateway, as ``reviewer``; then validate the PO again.

        ``edits`` change the proposal first (see :meth:`~intake.onboarding.NewCustomerProposal.edited`).
        Policy wants an approver: a reviewer holding that role approves in the same step; anyone
        else leaves the item ``awaiting_approval`` until an approver calls this (or :meth:`approve`).
        Once the customer exists, a PO that is now clean is created as in :meth:`approve`; one that
        still has doubts stays open with the new reasons. Denial or failure raises and changes nothing.
        """
        if self.gateway is None:
            raise ConfigurationError("the review queue needs the tool gateway to create customers")
        gw = self.gateway
        item = self._open(item_id)
        run = RunLedger(run_id=run_id or f"intake-review-{item.id}")
        parked = gw.guard.approvals.get(item.approval_id) if item.approval_id is not None else None
        if parked is not None and parked.tool == "create_customer":
            if edits:
                raise Conflict(f"the customer of review item {item.id} waits for approval as proposed; reject the "
                               "item, or approve it and correct the customer afterwards")  # fmt: skip
            if parked.status == ApprovalStatus.PENDING:
                gw.decide(parked.id, approver=reviewer, decision="approve")
            outcome = gw.execute_approved(parked.id, actor=reviewer, run=run)
        else:
            proposal = item.validated.new_customer
            if proposal is None or item.validated.customer_id is not None:
                raise InvalidTransition(f"review item {item.id} proposes no new customer", item_id=item.id)
            if not edits:
                # Another PO of the same buyer may have created the customer since this item was queued.
                known = self._revalidate(item)
                if (
                    known.customer_id is not None
                    and known.confidence.get("customer", 0.0) >= (self.thresholds or Thresholds()).customer
                ):
                    return self._after_customer_created(item, reviewer, run, known, created=False)
            outcome = self._propose_customer(gw, item, proposal.edited(edits) if edits else proposal, reviewer, run)
        return self._customer_outcome(item, reviewer, run, outcome)

    def _propose_customer(
        self, gw: ToolGateway, item: ReviewItem, proposal: NewCustomerProposal, reviewer: Actor, run: RunLedger
    ) -> Outcome:
        """Propose ``create_customer`` once per item and proposal (the key holds both); the reviewer may
        hold the role policy asks for: then this is also the approval."""
        args = proposal.tool_args(by=reviewer.id)
        key = f"intake-customer:{item.id}:{digest_arguments(args)[:16]}"
        outcome = gw.propose("create_customer", args, actor=reviewer, run=run, idempotency_key=key)
        if outcome.status == "awaiting_approval" and outcome.approval_id is not None:
            try:
                gw.decide(outcome.approval_id, approver=reviewer, decision="approve")
            except PolicyDenied:
                pass
            else:
                outcome = gw.execute_approved(outcome.approval_id, actor=reviewer, run=run)
        return outcome

    def _customer_outcome(self, item: ReviewItem, reviewer: Actor, run: RunLedger, outcome: Outcome) -> ReviewItem:
        """Park the item while the customer waits for an approver; raise when it was not created;
        else go on with the PO (validated again)."""
        item_id = item.id
        if outcome.status == "awaiting_approval":
            with self.db.begin() as s:
                row = s.get(IntakeReviewItemRow, item_id)
                assert row is not None
                row.status, row.approval_id, row.reviewer = "awaiting_approval", outcome.approval_id, reviewer.id
            return self.get(item_id)
        if outcome.status not in ("executed", "replayed"):
            reasons = list(outcome.reasons)
            if outcome.error:
                reasons.append(str(outcome.error.get("message") or outcome.error))
            raise PolicyDenied(f"the customer was not created: {'; '.join(reasons) or outcome.status}",
                               reasons=reasons)  # fmt: skip
        return self._after_customer_created(item, reviewer, run, self._revalidate(item), created=True)

    def _revalidate(self, item: ReviewItem) -> ValidatedOrder:
        """The item's PO validated again as it stands (with its corrections), e.g. once its buyer exists."""
        assert self.gateway is not None
        overrides = {k: v for k, v in _overrides(item.corrections).items() if k != "customer"}
        po = _patch_po(item.extracted, item.corrections)
        ctx = item.facts.context(mappings=self.mappings, received=self.received, overrides=overrides)
        return validate(po, self.gateway.env, context=ctx)

    def _after_customer_created(
        self, item: ReviewItem, reviewer: Actor, run: RunLedger, v: ValidatedOrder, *, created: bool
    ) -> ReviewItem:
        """Keep ``v`` (the PO validated now that its buyer is a customer); create the order if it is clean."""
        decision = decide(v, self.thresholds)
        how = "created from this purchase order" if created else "already created (from another purchase order)"
        self._audit(EventType.NOTE, item, reviewer,
                    reasons=[f"customer {v.customer_id} {how}; validated again: {decision.kind}"])  # fmt: skip
        with self.db.begin() as s:
            row = s.get(IntakeReviewItemRow, item.id)
            assert row is not None
            row.validated = v.model_dump(mode="json")
            row.customer_id, row.po_number = v.customer_id, (v.po_number or None) and v.po_number[:128]
            row.reasons = decision.reasons
            row.status, row.approval_id, row.reviewer = "open", None, reviewer.id
        if decision.kind == "auto_create":
            return self.approve(item.id, reviewer, run_id=run.run_id)
        return self.get(item.id)

    def reject(self, item_id: str, reviewer: Actor, reason: str) -> ReviewItem:
        """Close the item without an order; a parked approval for it is rejected too."""
        if not reason.strip():
            raise ValidationFailed("a rejection needs a reason")
        item = self._open(item_id)
        if item.approval_id is not None and self.gateway is not None:
            req = self.gateway.guard.approvals.get(item.approval_id)
            if req.status == ApprovalStatus.PENDING:
                self.gateway.decide(item.approval_id, approver=reviewer, decision="reject", reason=reason)
        self._audit(EventType.REJECTED, item, reviewer, reasons=[reason])
        with self.db.begin() as s:
            row = s.get(IntakeReviewItemRow, item_id)
            assert row is not None
            row.status, row.reviewer, row.decision_reason, row.decided_at = (
                "rejected",
                reviewer.id,
                reason,
                self.clock.now(),
            )
        decided = self.get(item_id)
        if self.on_decided is not None:
            self.on_decided(decided)
        return decided


_TOP_FIELDS = {"customer": "customer_id", "ship_to": "ship_to_id", "po_number": "po_number"}
_LINE_FIELDS = {"unit_price": "stated_price"}


def _original(validated: ValidatedOrder, path: str) -> Any:
    """The value ``path`` had before the reviewer's correction (as validated from the document)."""
    data = validated.model_dump(mode="json")
    m = _LINE_RE.match(path)
    if m:
        lines = data.get("lines") or []
        i = int(m.group(1))
        return lines[i].get(_LINE_FIELDS.get(m.group(2), m.group(2))) if i < len(lines) else None
    if path in _TOP_FIELDS:
        return data.get(_TOP_FIELDS[path])
    return (data.get("purchase_order") or {}).get(path)
