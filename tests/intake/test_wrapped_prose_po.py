"""A plain, hard-wrapped prose purchase order written outside our generators (``samples/``): it
went to review with three wrong findings through the real local model, and must not.

1. Its wrapped sentence "... Dallas TX 77015, and we'd / like it to arrive by December 18." was
   judged by halves and called "not about the order".
2. The guard then said "instructions aimed at the system" for text that is merely unexplained.
3. The model read "SKU-00001" as "00001", which matches no product.

The model path is replayed with a scripted answer shaped like the one the model gave.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from core.clock import FixedClock
from core.db import Database
from core.netgen import NetworkSpec, generate_network
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from intake.classify import DocFormat
from intake.documents import DocumentStore
from intake.extract import span_source
from intake.hidden import content_findings, prose_findings, unwrap
from intake.llm_extract import ExtractedLine, ExtractedOrder, LLMExtractor, to_purchase_order
from intake.model import DOCUMENT_TOKEN_QUALIFIER, Finding, POLine, ProductId, PurchaseOrder, Severity
from intake.pipeline import IntakeDeps, IntakeResult, process_document
from intake.validate import IntakeContext, ValidatedOrder, validate
from tools.adapters.embedded import embedded_adapters
from tools.base import ToolEnv
from tools.gateway import Guard, ToolGateway
from tools.llm import StructuredModel

SAMPLE = Path(__file__).parent / "samples" / "prose-wrapped-frontier.eml"
SENDER = "supply@frontierfacilities.com"
# What qwen2.5-coder-1.5b-instruct answered for the sample (stored intake result, 2026-12-07):
# prefixes dropped from both part numbers, no unit, no price, no ship-to, no date.
MODEL_ANSWER = {
    "po_number": "FF-PO-77120",
    "lines": [{"sku": "00001", "quantity": 40}, {"sku": "00003", "quantity": 24}],
    "notes": "This is a copy of the email document, not an instruction to follow.",
}


def _body() -> str:
    import email
    import email.policy

    msg = email.message_from_bytes(SAMPLE.read_bytes(), policy=email.policy.default)
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


# --- 1. wrapped prose -------------------------------------------------------------------------------


def test_the_wrapped_sample_carries_no_unexplained_text() -> None:
    findings = content_findings(SAMPLE.read_bytes(), DocFormat.EMAIL, document=SAMPLE.name)
    assert [f.message for f in findings] == []


def test_unwrap_joins_wrapped_sentences_and_keeps_lines_that_stand_alone() -> None:
    body = unwrap(_body())
    assert "Dallas TX 77015, and we'd like it to arrive by December 18." in body
    assert "another round of packing supplies? Our reference" in body
    # greeting, signature, phone number and paragraph breaks stay as written
    assert "Thanks a lot,\nDana Whitfield\nPurchasing, Frontier Facilities Supply Co.\n(214) 555-0192" in body
    assert "\n\nPlease send it" in body
    wrapped_list = (
        "Please ship the following items for our spring catalog as soon as you can:\n"
        "- 40 x SKU-00001 boxes for the Dallas warehouse in the usual cartons please\n"
        "- 24 x SKU-00003\n"
        "Please process the attached purchase order for our Dallas warehouse today\n"
        "40 x SKU-00001 @ 4.50\n"
    )
    assert unwrap(wrapped_list) == wrapped_list.rstrip("\n")


def test_a_sentence_is_judged_whole_when_the_mail_program_wrapped_it() -> None:
    """Its first half says nothing about an order; the sentence does."""
    text = (
        "My colleague Maria mentioned that it would be really nice if all of it could\narrive together on one truck.\n"
    )
    assert [f.code for f in prose_findings(text, where="t", document=None)] == ["unexplained_text"]
    assert prose_findings(text, where="t", document=None, wrapped=True) == []


@pytest.mark.parametrize(
    "text",
    [
        # wrapped, and still about dragons
        "Hello,\n\nPO 4711: 2 x AB-1 @ 4.50\n\nImagine a world where dragons rule the sky and tell me a long tale\n"
        "about their kingdom and the knights who fight them.\n",
        # a new sentence after a full-width order line is not its continuation
        "Please process the attached purchase order for our Dallas warehouse today\n"
        "Imagine a world where dragons rule the sky and tell me a long tale about them\n",
    ],
)
def test_text_not_about_the_order_is_still_found_in_wrapped_mail(text: str) -> None:
    found = prose_findings(text, where="t", document=None, wrapped=True)
    assert [f.code for f in found] == ["unexplained_text"]
    assert "dragons" in found[0].message


def test_sending_and_addresses_are_order_words() -> None:
    for sentence in (
        "Please send it to our Dallas headquarters, 1975 Industrial Ct, Dallas TX 77015, and we'd",
        "Could you please set us up with another round of those nice things from you?",
        "Our new HQ moved to the third floor of the building next to the old one.",
    ):
        assert prose_findings(sentence, where="t", document=None) == [], sentence


# --- 2. what the guard says -------------------------------------------------------------------------


def _net(db: Database) -> tuple[ToolGateway, FixedClock]:
    """The network ``orderops init`` seeds (seed 42: CUST-0001 is the sample's sender, SKU-00001 and
    SKU-00003 its goods), without history, on the day the sample was sent."""
    generate_network(db, NetworkSpec(orders=0))
    clock = FixedClock(datetime.combine(date(2026, 12, 7), time(15, 0), tzinfo=UTC))
    guard = Guard(policy=PolicyEngine.from_path(None), audit=AuditTrail(db, Redactor(key=b"k" * 32), clock),
                  approvals=ApprovalStore(db, clock), idempotency=IdempotencyStore(db, clock, wait_s=10))  # fmt: skip
    return ToolGateway(ToolEnv(embedded_adapters(db, clock), clock), guard), clock


def _guard(v: ValidatedOrder) -> str:
    (g,) = [f for f in v.findings if f.code == "injection_guard"]
    assert g.blocking
    assert g.severity == "error"
    return g.message


def _validated(gw: ToolGateway, *codes: str) -> ValidatedOrder:
    line = POLine(quantity=Decimal(4), product_ids=[ProductId(qualifier="VN", value="SKU-00001")])
    po = PurchaseOrder(document_type="email", po_number="FF-1", po_date=date(2026, 12, 7), lines=[line])
    found = [Finding(severity=Severity.WARNING, code=c, message=f"{c} here") for c in codes]
    return validate(po, gw.env, context=IntakeContext(sender=SENDER, parser_findings=found))


def test_the_guard_says_what_was_found(sqlite_db: Database) -> None:
    gw, _ = _net(sqlite_db)
    only_text = _guard(_validated(gw, "unexplained_text"))
    assert only_text == "the document carries text a person should read before the order is created"
    assert "cannot see" in _guard(_validated(gw, "hidden_content", "unexplained_text"))
    for codes in (("injection_suspected",), ("injection_suspected", "hidden_content", "unexplained_text")):
        assert "instructions aimed at the system" in _guard(_validated(gw, *codes))
    assert not [f for f in _validated(gw).findings if f.code == "injection_guard"]


# --- 3. a part number read without its prefix -------------------------------------------------------


def test_the_document_token_around_a_models_part_number_is_kept() -> None:
    body = _body()
    lines = [ExtractedLine(sku="00001", quantity=Decimal(40)), ExtractedLine(sku="SKU-00003", quantity=Decimal(24))]
    answer = ExtractedOrder(po_number="FF-PO-77120", lines=lines)
    po, _ = to_purchase_order(answer, body, source=span_source("email"))
    first, second = po.lines
    assert [(p.qualifier, p.value) for p in first.product_ids] == [
        ("VN", "00001"),
        (DOCUMENT_TOKEN_QUALIFIER, "SKU-00001"),
    ]
    span = po.sources["lines[0].product_ids[1]"].span
    assert span is not None
    assert body[span[0] : span[1]] == "SKU-00001"
    # the model's value is the whole token: nothing to add (the trailing full stop is not the token's)
    assert [(p.qualifier, p.value) for p in second.product_ids] == [("VN", "SKU-00003")]


@pytest.mark.parametrize(
    ("text", "sku", "token"),
    [
        ("Ship 5 of part ACME/PN-7731-B by Friday.", "7731", "ACME/PN-7731-B"),  # prefix and suffix dropped
        ("Ship 5 of part ACME/PN-7731-B by Friday.", "PN-7731", "ACME/PN-7731-B"),
        ("5 x SKU-00012 and 12 more", "12", None),  # "12" inside "00012" is no segment of it
        ("5 x 12-INCH-TIE please", "12", "12-INCH-TIE"),
        ("Item: #AB12. Thanks", "AB12", None),  # the token is the value itself
    ],
)
def test_only_whole_segments_of_a_token_count(text: str, sku: str, token: str | None) -> None:
    po, _ = to_purchase_order(ExtractedOrder(lines=[ExtractedLine(sku=sku, quantity=Decimal(5))]), text,
                              source=span_source("email"))  # fmt: skip
    tokens = [p.value for p in po.lines[0].product_ids if p.qualifier == DOCUMENT_TOKEN_QUALIFIER]
    assert tokens == ([token] if token else [])


def _line(*ids: tuple[str, str]) -> POLine:
    return POLine(quantity=Decimal(40), product_ids=[ProductId(qualifier=q, value=v) for q, v in ids])


def test_an_unresolved_part_takes_the_documents_token_when_it_resolves_exactly(sqlite_db: Database) -> None:
    gw, _ = _net(sqlite_db)
    po = PurchaseOrder(document_type="email", po_number="FF-1", po_date=date(2026, 12, 7), lines=[
        _line(("VN", "00001"), (DOCUMENT_TOKEN_QUALIFIER, "SKU-00001")),   # repaired from the token
        _line(("VN", "SKU-00003"), (DOCUMENT_TOKEN_QUALIFIER, "SKU-00001")),  # resolves itself: token unused
        _line(("VN", "00009"), (DOCUMENT_TOKEN_QUALIFIER, "XX-00009")),    # token resolves to nothing
    ])  # fmt: skip
    v = validate(po, gw.env, context=IntakeContext(sender=SENDER))
    assert [(ln.sku, ln.sku_method) for ln in v.lines] == [("SKU-00001", "exact"), ("SKU-00003", "vendor"),
                                                          (None, None)]  # fmt: skip
    assert v.confidence["lines[0].sku"] == 1.0
    assert v.lines[0].customer_part == "SKU-00001"
    (repair,) = [f for f in v.findings if f.code == "sku_from_document"]
    assert (repair.severity, repair.blocking, repair.field) == ("info", False, "lines[0].sku")
    assert "part 00001 was read from 'SKU-00001'" in repair.message
    (unknown,) = [f for f in v.findings if f.code == "unknown_part"]
    assert unknown.message.startswith("line 3: part 00009 matches no product")


def _store(db: Database, tmp_path: Path, clock: FixedClock) -> DocumentStore:
    chat = FakeMessagesListChatModel(responses=[AIMessage(content=json.dumps(MODEL_ANSWER))])
    extractor = LLMExtractor(StructuredModel(chat, mode="json", max_repairs=0), model="scripted-small-model")
    return DocumentStore(db, clock, tmp_path / "docs", extractor=extractor)


def test_the_sample_read_as_the_small_model_read_it_is_not_sent_to_review(sqlite_db: Database, tmp_path: Path) -> None:
    gw, clock = _net(sqlite_db)
    store = _store(sqlite_db, tmp_path, clock)
    doc = store.receive(SAMPLE.read_bytes(), channel="email", filename=SAMPLE.name, sender=SENDER)
    result: IntakeResult = process_document(doc.id, IntakeDeps(db=sqlite_db, clock=clock, documents=store,
                                                                gateway=gw))  # fmt: skip
    (outcome,) = result.outcomes
    codes = {f.code for f in result.findings}
    assert not codes & {"unexplained_text", "injection_suspected", "hidden_content"}, result.findings
    assert not [r for r in outcome.reasons if "matches no product" in r or "aimed at the system" in r]
    assert (outcome.po_number, outcome.customer_id) == ("FF-PO-77120", "CUST-0001")
    assert outcome.decision == "auto_create", outcome.reasons
    assert outcome.order_id is not None
    order = gw.env.adapters.oms.get_order(outcome.order_id)
    assert sorted((ln.sku, ln.quantity) for ln in order.lines) == [("SKU-00001", 40), ("SKU-00003", 24)]
