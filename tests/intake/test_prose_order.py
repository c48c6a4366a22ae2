"""Mail written as prose, read without a model (:mod:`intake.prose`).

``samples/prose-wrapped-frontier.eml`` came from outside our generators; the other ``prose-*.eml``
are written in other buyers' styles (terse, formal with the state spelled out, chatty with a
signature address and a quoted older quote, non-native English), each to a customer of the seed-42
network that ``orderops init`` seeds - three of them with several addresses, so the ship-to must
be matched, not defaulted.

Before: with no model configured the Frontier sample read as nothing ("no purchase order found"),
and a ship-to stated in a sentence was never read, so a customer with several addresses got no
ship-to. Now the PO number, the lines and the ship-to are read; the values from sentences are
doubts that send the order to review, and the ship-to matches the address book entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from intake.documents import DocumentStore
from intake.llm_extract import LLMExtractor
from intake.mail import parse_email
from intake.matching import address_score, normalize_address
from intake.pipeline import IntakeDeps, IntakeResult, process_document
from intake.prose import body_ship_to, flatten, prose_lines, prose_po_number
from intake.review import ReviewQueue
from tools.adapters.embedded import embedded_adapters
from tools.base import ToolEnv
from tools.gateway import Guard, ToolGateway
from tools.llm import StructuredModel

SAMPLES = Path(__file__).parent / "samples"


@dataclass(frozen=True)
class Expected:
    sender: str
    po_number: str
    lines: list[tuple[str, int]]
    ship_to: str
    """The address book entry the stated ship-to is."""


EXPECTED = {
    "prose-wrapped-frontier.eml": Expected(
        "supply@frontierfacilities.com", "FF-PO-77120", [("SKU-00001", 40), ("SKU-00003", 24)], "ADDR-000001"
    ),
    "prose-terse-riverbend.eml": Expected(
        "supply@riverbendindustrial.com", "4500012345", [("SKU-00012", 120), ("SKU-00005", 40)], "ADDR-000007"
    ),
    "prose-formal-cedar.eml": Expected(
        "buyer@cedardental.com", "CD-2291", [("SKU-00007", 12), ("SKU-00004", 6)], "ADDR-000005"
    ),
    "prose-chatty-pacific.eml": Expected(
        "orders@pacificfoods.com", "PF/7731", [("SKU-00010", 30), ("SKU-00011", 15)], "ADDR-000015"
    ),
    "prose-nonnative-liberty.eml": Expected(
        "purchasing@libertyschools.com", "LS-2026-118", [("SKU-00002", 200), ("SKU-00014", 10)], "ADDR-000013"
    ),
}


# --- parsing alone ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_deterministic_reading_of_each_prose_mail(name: str) -> None:
    exp = EXPECTED[name]
    mail = parse_email((SAMPLES / name).read_bytes(), document=name)
    (po,) = mail.purchase_orders
    assert po.po_number == exp.po_number
    assert [(ln.vendor_part_number, ln.quantity) for ln in po.lines] == [(s, Decimal(q)) for s, q in exp.lines]
    codes = [f.code for f in mail.all_findings()]
    assert "no_order_found" not in codes
    assert codes.count("read_from_prose") >= 1  # every value from a sentence is a stated doubt
    assert po.ship_to is not None
    assert "ship_to_from_body" in codes


def test_units_and_a_price_stated_in_the_sentence_are_kept() -> None:
    mail = parse_email((SAMPLES / "prose-formal-cedar.eml").read_bytes())
    (po,) = mail.purchase_orders
    assert [(ln.unit, ln.unit_price) for ln in po.lines] == [("CS", Decimal("48.00")), ("PK", None)]


def test_every_read_value_points_at_its_text() -> None:
    raw = (SAMPLES / "prose-wrapped-frontier.eml").read_bytes()
    mail = parse_email(raw)
    (po,) = mail.purchase_orders
    body = mail.body_text
    for key, want in [("po_number", "FF-PO-77120"), ("lines[0].product_ids[0]", "SKU-00001"),
                      ("lines[0].quantity", "40"), ("lines[1].quantity", "24")]:  # fmt: skip
        span = po.sources[key].span
        assert span is not None
        assert body[span[0] : span[1]] == want, key


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("120 x SKU-123 please", [("SKU-123", 120)]),
        ("Could you add SKU ABC-1, qty 40 to the order?", [("ABC-1", 40)]),
        ("we'd like 3 cases of HX-200 and 10 of HX-210", [("HX-200", 3), ("HX-210", 10)]),
        ("Also need BRK-1142 (x6) by Friday.", [("BRK-1142", 6)]),
        # a size, a date and a price are not quantities; one number for two parts is nobody's
        ("The 4x6 boxes, SKU-9, arrive by December 18", []),
        ("send 12 of SKU-1 at $4.50", [("SKU-1", 12)]),
        ("5 of AB-1 or AB-2, whichever you have", []),
    ],
)
def test_lines_in_sentences(text: str, want: list[tuple[str, int]]) -> None:
    got = [(ln.sku[0], int(ln.quantity[0])) for ln in prose_lines(text) if ln.quantity is not None]
    assert got == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Hi, our reference for this one is FF-PO-77120. Thanks", "FF-PO-77120"),
        ("please book it under PO# 4711-B", "4711-B"),
        ("Our order number is CD-2291.", "CD-2291"),
        ("Reference: LS-2026-118", "LS-2026-118"),
        ("We have no reference yet, sorry.", None),
    ],
)
def test_po_numbers_in_sentences(text: str, want: str | None) -> None:
    got = prose_po_number(text)
    assert (got[0] if got else None) == want


def test_flatten_keeps_offsets_and_joins_wrapped_lines_only() -> None:
    text = (
        "Could you please send us another round of the supplies? We need 40 of the\nboxes.\n\n"
        "- 2 x A-1\n- 3 x B-2\n  Part #   Qty\n  AB-1     4\n--\nJo\n1 Main St, Dallas TX 75001\n"
    )
    flat = flatten(text)
    assert len(flat) == len(text)
    assert "40 of the boxes." in flat
    assert "\n- 3 x B-2\n" in flat  # list items and table rows stay lines
    assert "\n  AB-1     4\n" in flat
    assert "Main St" not in flat  # the signature is not read


# --- the ship-to in the body ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Please send it to our Dallas headquarters, 1975 Industrial Ct, Dallas TX 77015, and we'd\nlike it soon.",
        "Deliver to the Dallas HQ at 1975 Industrial Court, Suite 200, Dallas, Texas 77015-1234 please.",
        "ship everything to 1975 INDUSTRIAL CT DALLAS TX 77015",
    ],
)
def test_a_ship_to_sentence_gives_an_address_equal_to_the_known_one(text: str) -> None:
    found = body_ship_to(text)
    assert found is not None
    party, _sources, finding = found
    assert finding.code == "ship_to_from_body"
    written = normalize_address(party.address_lines, party.city, party.state, party.postal_code)
    known = normalize_address(["1975 Industrial Ct"], "Dallas", "TX", "77015")
    assert address_score(written, known) >= 0.98, party


@pytest.mark.parametrize(
    "text",
    [
        "Please bill our office at 1975 Industrial Ct, Dallas TX 77015.",  # a billing address
        "We moved to 1975 Industrial Ct, Dallas TX 77015 last year.",  # not said to be where goods go
        "Thanks\n--\nDana\n1975 Industrial Ct, Dallas TX 77015\n",  # a signature
    ],
)
def test_addresses_not_stated_as_the_ship_to_are_not_taken(text: str) -> None:
    assert body_ship_to(text) is None


# --- through the pipeline, no model ---------------------------------------------------------------------


def _gateway(db: Database) -> tuple[ToolGateway, FixedClock]:
    generate_network(db, NetworkSpec(orders=0))
    clock = FixedClock(datetime.combine(date(2026, 12, 12), time(15, 0), tzinfo=UTC))
    guard = Guard(policy=PolicyEngine.from_path(None), audit=AuditTrail(db, Redactor(key=b"k" * 32), clock),
                  approvals=ApprovalStore(db, clock), idempotency=IdempotencyStore(db, clock, wait_s=10))  # fmt: skip
    return ToolGateway(ToolEnv(embedded_adapters(db, clock), clock), guard), clock


def _intake(db: Database, tmp_path: Path, name: str) -> IntakeResult:
    gw, clock = _gateway(db)
    store = DocumentStore(db, clock, tmp_path / "docs")  # no extractor: the rule-based reading
    raw = (SAMPLES / name).read_bytes()
    doc = store.receive(raw, channel="email", filename=name, sender=EXPECTED[name].sender)
    return process_document(doc.id, IntakeDeps(db=db, clock=clock, documents=store, gateway=gw))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_prose_mail_without_a_model_reaches_review_filled_in(sqlite_db: Database, tmp_path: Path, name: str) -> None:
    exp = EXPECTED[name]
    result = _intake(sqlite_db, tmp_path, name)
    (outcome,) = result.outcomes
    assert outcome.po_number == exp.po_number
    assert outcome.decision == "review", outcome.reasons
    assert any("read from a sentence" in r for r in outcome.reasons), outcome.reasons
    assert outcome.order_id is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_stated_ship_to_is_matched_to_the_address_book(sqlite_db: Database, tmp_path: Path, name: str) -> None:
    result = _intake(sqlite_db, tmp_path, name)
    (outcome,) = result.outcomes
    assert outcome.review_item_id is not None
    item = ReviewQueue(sqlite_db, FixedClock(datetime(2026, 12, 12, tzinfo=UTC))).get(outcome.review_item_id)
    assert item.validated.ship_to_id == EXPECTED[name].ship_to
    assert item.validated.confidence["ship_to"] == 1.0
    assert not [r for r in outcome.reasons if "ship_to" in r or "ship-to" in r], outcome.reasons


def test_a_state_spelled_out_is_the_same_state() -> None:
    spelled = normalize_address(["7266 Industrial Avenue"], "Memphis", "Tennessee", "37290")
    assert spelled == normalize_address(["7266 Industrial Ave"], "Memphis", "TN", "37290")


def test_with_a_model_that_names_no_ship_to_the_body_still_gives_it(sqlite_db: Database, tmp_path: Path) -> None:
    """The model path: a small model's answer without a ship-to (as recorded for the Frontier
    sample) for a customer with three addresses; the address the mail states is the one matched."""
    answer = {"po_number": "CD-2291", "lines": [{"sku": "SKU-00007", "quantity": 12, "unit": "CS"},
                                               {"sku": "SKU-00004", "quantity": 6, "unit": "PK"}]}  # fmt: skip
    chat = FakeMessagesListChatModel(responses=[AIMessage(content=json.dumps(answer))])
    extractor = LLMExtractor(StructuredModel(chat, mode="json", max_repairs=0), model="scripted-small-model")
    gw, clock = _gateway(sqlite_db)
    store = DocumentStore(sqlite_db, clock, tmp_path / "docs", extractor=extractor)
    name = "prose-formal-cedar.eml"
    doc = store.receive((SAMPLES / name).read_bytes(), channel="email", filename=name, sender=EXPECTED[name].sender)
    result = process_document(doc.id, IntakeDeps(db=sqlite_db, clock=clock, documents=store, gateway=gw))
    (outcome,) = result.outcomes
    assert outcome.review_item_id is not None  # the stated price per case is not the contract's
    item = ReviewQueue(sqlite_db, clock).get(outcome.review_item_id)
    assert item.validated.ship_to_id == "ADDR-000005"
    assert item.validated.confidence["ship_to"] == 1.0
    assert "ship_to_from_body" in {f.code for f in result.findings}


def test_long_runs_of_spaces_and_a_sentence_of_many_parts_are_read_alike() -> None:
    """What once made the prose reader backtrack for minutes (runs of thousands of spaces after a
    label, a number of parts in one sentence) reads the same as its short form: the sentence's lines
    each with their own quantity, the lone label and quantity word as nothing."""
    gap = " " * 5_000
    text = f"SKU{gap}!\nqty{gap}40\nour PO is{gap}\nWe need " + "4 of SKU-00001, " * 300 + "and 7 x SKU-00002 thanks."
    lines = prose_lines(text)
    assert len(lines) == 301
    assert {(ln.sku[0], ln.quantity[0] if ln.quantity else None) for ln in lines} == {
        ("SKU-00001", Decimal(4)),
        ("SKU-00002", Decimal(7)),
    }
    short = prose_lines("SKU !\nqty 40\nour PO is\nWe need 4 of SKU-00001, and 7 x SKU-00002 thanks.")
    assert [(ln.sku[0], ln.quantity[0] if ln.quantity else None) for ln in short] == [
        ("SKU-00001", Decimal(4)),
        ("SKU-00002", Decimal(7)),
    ]
