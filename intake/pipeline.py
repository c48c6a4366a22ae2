"""The intake pipeline: a stored document -> parsed POs -> validated -> decided -> order or review item
-> acknowledgment drafts.

Each stage is a plain function with small JSON-serialisable inputs and outputs (ids and pydantic
models), so the intake graph can run them as nodes and checkpoint between them:

    parsed = parse_stage(document_id, deps)                      # ParsedDocument
    v = validate_stage(parsed, i, deps)                          # ValidatedOrder
    d = decide_stage(v, deps)                                    # IntakeDecision
    out = act_stage(v, d, parsed.facts[i], deps)                 # POOutcome
    acks = acknowledge_stage(parsed, [v...], [out...], deps)     # list[AckDraft]

:func:`process_document` runs them all and stores the :class:`IntakeResult`; running it again for
the same document returns the stored result. Orders are only ever created through the tool
gateway's ``create_order`` (policy, approvals, audit), under an order id and idempotency key
derived from the PO's fingerprint, so one PO never becomes two orders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.db.engine import Database
from core.db.order_risk import NewOrder, score_new_order
from core.db.tables_intake import IntakeResultRow
from core.risk import HOLD_THRESHOLD
from guardrails.calls import Actor
from intake.acks import (
    AckDraft,
    AckStatus,
    AckStore,
    ack_key,
    draft_855,
    draft_ordrsp,
    draft_reply_email,
    order_ack_key,
)
from intake.classify import DocFormat
from intake.decide import (
    DecisionKind,
    IntakeDecision,
    Thresholds,
    decide,
    with_change_order,
    with_model_values_located,
    with_ocr_confidence,
    with_order_risk,
    with_prose_reading,
)
from intake.documents import DocumentStatus, DocumentStore, StoredDocument
from intake.hidden import content_findings
from intake.model import Finding, PurchaseOrder
from intake.review import ReviewItem, ReviewQueue, submit_order
from intake.validate import DocumentFacts, LearnedMappings, LineDiff, ReceivedPOs, ValidatedOrder, validate
from intake.x12 import generate_997
from tools.gateway import RunLedger, ToolGateway

__all__ = [
    "INTAKE_AGENT",
    "IntakeDeps",
    "IntakeResult",
    "OutcomeStatus",
    "POOutcome",
    "ParsedDocument",
    "acknowledge_review_decision",
    "acknowledge_stage",
    "act_stage",
    "decide_stage",
    "load_result",
    "parse_stage",
    "process_document",
    "validate_stage",
]

INTAKE_AGENT = Actor(kind="agent", id="intake-agent")
"""Who proposes orders the pipeline creates on its own (no roles: it can never approve anything)."""

OutcomeStatus = Literal["created", "queued", "awaiting_approval", "duplicate"]


@dataclass(frozen=True)
class IntakeDeps:
    """What the pipeline uses; build once, pass everywhere."""

    db: Database
    clock: Clock
    documents: DocumentStore
    gateway: ToolGateway
    thresholds: Thresholds = field(default_factory=Thresholds)
    actor: Actor = INTAKE_AGENT
    risk_hold: float | None = HOLD_THRESHOLD
    """Order risk at or above this holds an order that would be created for review (None: not scored)."""

    @property
    def mappings(self) -> LearnedMappings:
        return LearnedMappings(self.db, self.clock)

    @property
    def received(self) -> ReceivedPOs:
        return ReceivedPOs(self.db, self.clock)

    @property
    def acks(self) -> AckStore:
        return AckStore(self.db, self.clock)

    def review_queue(self) -> ReviewQueue:
        """The review queue, wired to draft acknowledgments when a reviewer decides."""
        return ReviewQueue(self.db, self.clock, gateway=self.gateway,
                           on_decided=lambda item: acknowledge_review_decision(item, self))  # fmt: skip


class ParsedDocument(BaseModel):
    document: StoredDocument
    purchase_orders: list[PurchaseOrder] = Field(default_factory=list)
    facts: list[DocumentFacts] = Field(default_factory=list)
    """One per purchase order: sender, envelope ids, the parser's findings for it."""
    findings: list[Finding] = Field(default_factory=list)


class POOutcome(BaseModel):
    po_index: int
    po_number: str | None = None
    customer_id: str | None = None
    decision: DecisionKind
    status: OutcomeStatus
    order_id: str | None = None
    review_item_id: str | None = None
    approval_id: str | None = None
    reasons: list[str] = Field(default_factory=list)
    duplicate_of: str | None = None
    revision_of: str | None = None
    diff: list[LineDiff] = Field(default_factory=list)


class IntakeResult(BaseModel):
    document_id: str
    status: Literal["processed", "quarantined", "failed", "no_orders", "not_an_order"]
    """``not_an_order``: an invoice, quote, ASN or remittance, filed with the reason (:mod:`intake.doctype`)."""
    format: str
    channel: str
    reason: str | None = None
    outcomes: list[POOutcome] = Field(default_factory=list)
    acks: list[AckDraft] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)


# --- stages -------------------------------------------------------------------------------------------


def parse_stage(document_id: str, deps: IntakeDeps) -> ParsedDocument:
    """Parse the stored document and collect, per PO, what its envelope says about the sender."""
    out = deps.documents.parse(document_id)
    doc = out.document
    parsed = ParsedDocument(document=doc, purchase_orders=out.purchase_orders, findings=out.findings)
    if (
        doc.status in (DocumentStatus.QUARANTINED, DocumentStatus.FAILED, DocumentStatus.FILED)
        or not out.purchase_orders
    ):
        return parsed
    base = DocumentFacts(channel=doc.channel, document_id=doc.id, sender=doc.sender, parser_findings=out.findings)
    per_po: list[DocumentFacts] | None = None
    data = deps.documents.get_bytes(doc.id)
    if doc.format == DocFormat.X12:
        from intake.x12 import parse_x12

        x = parse_x12(data, document=doc.filename or doc.id)
        txs = [(ic, t) for ic in x.interchanges for g in ic.groups for t in g.transactions if t.purchase_order]
        if len(txs) == len(out.purchase_orders):
            per_po = [
                base.model_copy(
                    update={
                        "envelope": t.envelope,
                        "isa_sender_id": t.envelope.isa_sender_id.strip(),
                        "gs_sender_id": t.envelope.gs_sender_id.strip(),
                        "parser_findings": [*x.findings, *ic.findings, *t.findings],
                    }
                )
                for ic, t in txs
            ]
    elif doc.format == DocFormat.EDIFACT:
        from intake.edifact import parse_edifact

        e = parse_edifact(data, document=doc.filename or doc.id)
        msgs = [(ic, m) for ic in e.interchanges for m in ic.messages if m.purchase_order]
        if len(msgs) == len(out.purchase_orders):
            per_po = [
                base.model_copy(
                    update={
                        "isa_sender_id": ic.sender or None,
                        "parser_findings": [*e.findings, *ic.findings, *m.findings],
                    }
                )
                for ic, m in msgs
            ]
    elif doc.format == DocFormat.EMAIL:
        from intake.mail import parse_email

        m = parse_email(data, document=doc.filename or doc.id, sender_only=True)  # parsed in the sandbox already
        base = base.model_copy(update={"sender": m.customer_address or doc.sender, "channel": "email"})
    if per_po is None:
        per_po = [base for _ in out.purchase_orders]
    # What the document carries beyond its fields (hidden HTML, comments, EDI notes) reaches every
    # PO's findings, where validation makes it a blocking reason: a person sees it before any order.
    extra = content_findings(data, doc.format, document=doc.filename or doc.id)
    if extra:
        parsed.findings = [*parsed.findings, *extra]
        per_po = [f.model_copy(update={"parser_findings": [*f.parser_findings, *extra]}) for f in per_po]
    parsed.facts = [f.model_copy(update={"po_index": i}) for i, f in enumerate(per_po)]
    return parsed


def validate_stage(parsed: ParsedDocument, index: int, deps: IntakeDeps) -> ValidatedOrder:
    facts = parsed.facts[index]
    ctx = facts.context(mappings=deps.mappings, received=deps.received)
    v = validate(parsed.purchase_orders[index], deps.gateway.env, context=ctx)
    found = facts.parser_findings
    v = with_model_values_located(with_ocr_confidence(v, found), found)
    return with_change_order(with_prose_reading(v, found), found)


def decide_stage(validated: ValidatedOrder, deps: IntakeDeps) -> IntakeDecision:
    """The intake decision, then the order's risk: a risky order that would be created is held for review."""
    decision = decide(validated, deps.thresholds)
    order = decision.order
    if decision.kind != "auto_create" or order is None or deps.risk_hold is None:
        return decision
    value = sum((ln.quantity * (ln.unit_price or Decimal(0)) for ln in order.lines), Decimal(0))
    risk = score_new_order(deps.db, NewOrder(order.customer_id, order.ship_to_id, value, deps.clock.now()),
                           threshold=deps.risk_hold)  # fmt: skip
    return with_order_risk(decision, risk, deps.risk_hold)


def act_stage(validated: ValidatedOrder, decision: IntakeDecision, facts: DocumentFacts, deps: IntakeDeps) -> POOutcome:
    """Create the order (through the gateway) or queue a review item; remember the PO's fingerprint."""
    v = validated
    common = {"po_index": v.po_index, "po_number": v.po_number, "customer_id": v.customer_id,
              "decision": decision.kind, "duplicate_of": v.duplicate_of, "revision_of": v.revision_of,
              "diff": v.diff}  # fmt: skip
    received = deps.received
    if decision.kind == "duplicate":
        received.record(v, kind="duplicate")
        return POOutcome(status="duplicate", reasons=decision.reasons, **common)  # type: ignore[arg-type]
    queue = deps.review_queue()
    if decision.kind == "auto_create":
        run = RunLedger(run_id=f"intake-{v.document_id}")
        result = submit_order(deps.gateway, v, actor=deps.actor, run=run)
        if result.status == "created":
            received.record(v, kind="original", order_id=result.order_id)
            return POOutcome(status="created", order_id=result.order_id, reasons=decision.reasons,
                             **common)  # type: ignore[arg-type]  # fmt: skip
        received.record(v, kind="original")
        if result.status == "awaiting_approval":
            reasons = ["policy requires an approver: " + "; ".join(result.reasons)]
            item = queue.enqueue(v, facts, kind="approval", reasons=reasons, approval_id=result.approval_id)
            return POOutcome(status="awaiting_approval", review_item_id=item.id, approval_id=result.approval_id,
                             reasons=reasons, **common)  # type: ignore[arg-type]  # fmt: skip
        reasons = [f"create_order {result.status}: " + "; ".join(result.reasons)]
        item = queue.enqueue(v, facts, kind="review", reasons=reasons)
        return POOutcome(status="queued", review_item_id=item.id, reasons=reasons, **common)  # type: ignore[arg-type]
    kind: Literal["review", "revision"] = "revision" if decision.kind == "revision" else "review"
    received.record(v, kind="revision" if kind == "revision" else "original")
    item = queue.enqueue(v, facts, kind=kind, reasons=decision.reasons)
    return POOutcome(status="queued", review_item_id=item.id, reasons=decision.reasons, **common)  # type: ignore[arg-type]


def _control_number(*parts: object) -> int:
    """A stable control number (1..999999999) for drafts; the sending step may renumber."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:8], 16) % 999_999_999 + 1


def _questions(v: ValidatedOrder, reasons: Sequence[str]) -> list[str]:
    """The findings a customer can help with, in plain words (injection warnings stay internal)."""
    out = [f.message for f in v.findings if f.severity != "info" and f.code not in ("injection_suspected",
           "injection_guard", "hidden_content", "unexplained_text", "customer_identified")]  # fmt: skip
    return list(dict.fromkeys(out or list(reasons)))


def _drafts_for(
    v: ValidatedOrder,
    facts: DocumentFacts,
    status: AckStatus,
    *,
    doc_format: str,
    order_id: str | None,
    questions: list[str],
    corrected: frozenset[int],
    answers: str,
    deps: IntakeDeps,
) -> list[AckDraft]:
    """The drafts for one PO; ``answers`` (``intake``/``review``) and ``status`` key them, so a rerun
    of the same step finds its drafts stored instead of adding them again. A confirmation is keyed
    by its order instead (:func:`order_ack_key`): the same PO in two documents is confirmed once."""
    doc_id = v.document_id or ""
    now = deps.clock.now()
    out: list[AckDraft] = []
    if doc_format == DocFormat.X12 and status != "pending":
        n = _control_number(doc_id, v.po_index, status, "855")
        body = draft_855(v, status, envelope=facts.envelope, interchange_control_number=n, group_control_number=n,
                         now=now, corrected=corrected)  # fmt: skip
        out.append(AckDraft(document_id=doc_id, po_index=v.po_index, kind="x12-855",
                            recipient=facts.isa_sender_id, body=body))  # fmt: skip
    elif doc_format == DocFormat.EDIFACT and status != "pending":
        ref = str(_control_number(doc_id, v.po_index, status, "ordrsp"))
        body = draft_ordrsp(v, status, reference=ref, now=now, recipient_id=facts.isa_sender_id or "PARTNER",
                            corrected=corrected)  # fmt: skip
        out.append(AckDraft(document_id=doc_id, po_index=v.po_index, kind="edifact-ordrsp",
                            recipient=facts.isa_sender_id, body=body))  # fmt: skip
    elif facts.sender and "@" in facts.sender:
        subject, body = draft_reply_email(v, status, recipient=facts.sender, order_id=order_id, questions=questions,
                                          corrected=corrected)  # fmt: skip
        out.append(AckDraft(document_id=doc_id, po_index=v.po_index, kind="email", recipient=facts.sender,
                            subject=subject, body=body))  # fmt: skip
    if order_id and status in ("accepted", "changed"):
        return [d.model_copy(update={"key": order_ack_key(order_id, status)}) for d in out]
    return [d.model_copy(update={"key": ack_key(doc_id, v.po_index, d.kind, f"{answers}-{status}")}) for d in out]


def acknowledge_stage(
    parsed: ParsedDocument, validated: Sequence[ValidatedOrder], outcomes: Sequence[POOutcome], deps: IntakeDeps
) -> list[AckDraft]:
    """Draft (and store) the acknowledgments: a 997 per X12 interchange, and per PO an 855 / ORDRSP
    once decided, or a reply e-mail (confirmation, or questions while a person reviews)."""
    doc = parsed.document
    drafts: list[AckDraft] = []
    if doc.format == DocFormat.X12:
        from intake.x12 import parse_x12

        x = parse_x12(deps.documents.get_bytes(doc.id), document=doc.filename or doc.id)
        for k, ic in enumerate(x.interchanges):
            n = _control_number(doc.id, k, "997")
            body = generate_997(ic, interchange_control_number=n, group_control_number=n, now=deps.clock.now())
            drafts.append(AckDraft(document_id=doc.id, kind="x12-997", recipient=ic.sender_id.strip(), body=body,
                                   key=ack_key(doc.id, None, "x12-997", f"interchange-{k}")))  # fmt: skip
    for v, out in zip(validated, outcomes, strict=True):
        if out.status == "duplicate":
            continue
        status: AckStatus = "accepted" if out.status == "created" else "pending"
        questions = _questions(v, out.reasons) if status == "pending" else []
        drafts += _drafts_for(v, parsed.facts[v.po_index], status, doc_format=doc.format, order_id=out.order_id,
                              questions=questions, corrected=frozenset(), answers="intake", deps=deps)  # fmt: skip
    store = deps.acks
    return [store.save(d) for d in drafts]


def acknowledge_review_decision(item: ReviewItem, deps: IntakeDeps) -> list[AckDraft]:
    """Drafts once a reviewer approved (order created) or rejected a queued PO."""
    if item.status not in ("approved", "rejected"):
        return []
    doc = deps.documents.get(item.document_id)
    v = item.validated
    corrected = frozenset(int(p[6 : p.index("]")]) for p in item.corrections if p.startswith("lines["))
    status: AckStatus = "rejected" if item.status == "rejected" else ("changed" if corrected else "accepted")
    questions = [item.decision_reason] if item.status == "rejected" and item.decision_reason else []
    drafts = _drafts_for(v, item.facts, status, doc_format=doc.format, order_id=item.order_id, questions=questions,
                         corrected=corrected, answers="review", deps=deps)  # fmt: skip
    store = deps.acks
    return [store.save(d) for d in drafts]


# --- the whole thing ----------------------------------------------------------------------------------


def load_result(document_id: str, deps: IntakeDeps) -> IntakeResult | None:
    with deps.db.begin() as s:
        row = s.get(IntakeResultRow, document_id)
        return None if row is None else IntakeResult.model_validate(row.result)


def _store(result: IntakeResult, deps: IntakeDeps) -> IntakeResult:
    try:
        with deps.db.begin() as s:
            s.add(IntakeResultRow(document_id=result.document_id, status=result.status,
                                  result=result.model_dump(mode="json"), created_at=deps.clock.now()))  # fmt: skip
    except IntegrityError:  # processed concurrently: the first result stands
        stored = load_result(result.document_id, deps)
        if stored is not None:
            return stored
        raise
    return result


def process_document(document_id: str, deps: IntakeDeps) -> IntakeResult:
    """Run every stage for one stored document; a document processed before returns its stored result."""
    done = load_result(document_id, deps)
    if done is not None:
        return done
    parsed = parse_stage(document_id, deps)
    doc = parsed.document
    head = {"document_id": doc.id, "format": str(doc.format), "channel": doc.channel, "findings": parsed.findings}
    if doc.status == DocumentStatus.QUARANTINED:
        return _store(IntakeResult(status="quarantined", reason=doc.reason, **head), deps)  # type: ignore[arg-type]
    if doc.status == DocumentStatus.FAILED:
        return _store(IntakeResult(status="failed", reason=doc.reason, **head), deps)  # type: ignore[arg-type]
    if doc.status == DocumentStatus.FILED:
        return _store(IntakeResult(status="not_an_order", reason=doc.reason, **head), deps)  # type: ignore[arg-type]
    if not parsed.purchase_orders:
        return _store(IntakeResult(status="no_orders", reason="no purchase order found", **head), deps)  # type: ignore[arg-type]
    validated: list[ValidatedOrder] = []
    outcomes: list[POOutcome] = []
    for i in range(len(parsed.purchase_orders)):
        v = validate_stage(parsed, i, deps)
        d = decide_stage(v, deps)
        outcomes.append(act_stage(v, d, parsed.facts[i], deps))
        validated.append(v)
    acks = acknowledge_stage(parsed, validated, outcomes, deps)
    return _store(IntakeResult(status="processed", outcomes=outcomes, acks=acks, **head), deps)  # type: ignore[arg-type]
