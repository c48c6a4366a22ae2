"""Document classification: invoices, quotes, ASNs and remittances are answered "not an order";
purchase orders - from the generated corpus, the independent ERP-style corpus and EDI - never are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.db import Database
from core.netgen import NetworkSpec, generate_network
from intake.classify import DocFormat, sniff
from intake.doctype import DocType, classify_document, classify_edi, classify_text
from intake.documents import DocumentStatus, parse_bytes
from intake.samples import generate_corpus, load_catalog
from tests.conftest import CORPORA
from tests.intake.test_pipeline import Intake, build_intake

INVOICES = CORPORA / "pdf" / "invoice2data"
ERP = CORPORA / "po-erp-styles" / "docs"


def _invoices() -> list[Path]:
    return sorted(INVOICES.glob("*.pdf"))


@pytest.mark.parametrize("path", _invoices(), ids=lambda p: p.name)
def test_a_real_invoice_is_not_an_order_and_says_why(path: Path) -> None:
    """invoice2data's public invoices (English, French, German, Dutch, a hotel receipt): no PO
    comes out, and the finding names the kind and the words that decided it."""
    _fmt, orders, findings = parse_bytes(path.read_bytes(), filename=path.name, document=path.name)
    assert orders == []
    f = next(f for f in findings if f.code == "not_an_order")
    assert f.severity == "warning"
    assert "invoice" in f.message or "remittance" in f.message
    assert "title" in f.message or "label" in f.message


def test_all_real_invoices_are_read_so() -> None:
    assert len(_invoices()) >= 11


@pytest.mark.parametrize("path", sorted(ERP.glob("*")), ids=lambda p: p.name)
def test_no_independent_erp_purchase_order_is_called_something_else(path: Path) -> None:
    _fmt, _orders, findings = parse_bytes(path.read_bytes(), filename=path.name, document=path.name)
    assert "not_an_order" not in {f.code for f in findings}


def test_no_generated_purchase_order_is_called_something_else(tmp_path: Path) -> None:
    from core.db import make_database, migrate

    db: Database = make_database(url=f"sqlite:///{tmp_path / 'c.db'}")
    try:
        migrate(db)
        generate_network(db, NetworkSpec(seed=11, nodes=2, skus=80, customers=6, orders=0))
        catalog = load_catalog(db)
    finally:
        db.dispose()
    docs = generate_corpus(catalog, seed=11, count=120)
    wrong = []
    for d in docs:
        _fmt, _orders, findings = parse_bytes(d.data, filename=d.filename, media_type=d.media_type, document=d.doc_id)
        wrong += [(d.doc_id, f.message) for f in findings if f.code == "not_an_order"]
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ACME Supply\nQUOTATION\nQuote No. Q-1001\nThis quotation is valid until 2027-01-31\n", DocType.QUOTE),
        ("Packing Slip\nShip date: 2026-11-20\nTracking number 1Z999\nQty shipped 4\n", DocType.ASN),
        ("Remittance Advice\nCheck No. 1002\nAmount paid 1,204.00\nInvoices paid: INV-1, INV-2\n", DocType.REMITTANCE),
        ("Widget Co\nINVOICE\nInvoice No. 88\nPO Number: 4500012345\nShip To: Plant 2\nAmount due $12.00\n",
         DocType.INVOICE),
        ("Purchase Order Change\nPO Number: 4711\nRevision number: 2\nShip To: Plant 2\n", DocType.CHANGE_ORDER),
        ("PURCHASE ORDER\nPO#: 77-1\nInvoice to: Accounts Payable\nQuotation No. Q-5\nTotal Payment Due 10.00\n",
         DocType.PURCHASE_ORDER),
        ("Hi, could you send 10 of SKU-1 to our plant please\n", DocType.OTHER),
    ],
)  # fmt: skip
def test_text_kinds(text: str, kind: DocType) -> None:
    c = classify_text(text)
    assert c.kind is kind, c
    assert c.reason


def test_a_subject_naming_a_quote_does_not_overrule_an_order_body() -> None:
    """ "RE: Quote 123" is usually the order that accepts the quote."""
    c = classify_text("Please ship the following, PO 4711\nShip to: Plant 2\n10 x SKU-1", title="RE: Quote 123")
    assert not c.not_an_order


@pytest.mark.parametrize(
    ("data", "fmt", "kind"),
    [
        (b"ISA*00*...~GS*IN*A*B~ST*810*0001~BIG*20261123*INV1~SE*3*0001~", DocFormat.X12, DocType.INVOICE),
        (b"ISA*00*...~GS*SH*A*B~ST*856*0001~BSN*00*1~SE*3*0001~", DocFormat.X12, DocType.ASN),
        (b"ISA*00*...~GS*RA*A*B~ST*820*0001~SE*2*0001~", DocFormat.X12, DocType.REMITTANCE),
        (b"ISA*00*...~GS*PC*A*B~ST*860*0001~BCH*04*SA*1~SE*3*0001~", DocFormat.X12, DocType.CHANGE_ORDER),
        (b"ISA*00*...~ST*810*0001~SE*2*0001~ST*850*0002~BEG*00*SA*1~SE*3*0002~", DocFormat.X12,
         DocType.PURCHASE_ORDER),
        (b"UNB+UNOA:3+A+B+261123:0900+1'UNH+1+INVOIC:D:96A:UN'BGM+380+INV1'UNT+3+1'UNZ+1+1'", DocFormat.EDIFACT,
         DocType.INVOICE),
        (b"UNB+UNOA:3+A+B+261123:0900+1'UNH+1+DESADV:D:96A:UN'UNT+2+1'UNZ+1+1'", DocFormat.EDIFACT, DocType.ASN),
        (b"UNB+UNOA:3+A+B+261123:0900+1'UNH+1+REMADV:D:96A:UN'UNT+2+1'UNZ+1+1'", DocFormat.EDIFACT,
         DocType.REMITTANCE),
        (b"UNB+UNOA:3+A+B+261123:0900+1'UNH+1+QUOTES:D:96A:UN'UNT+2+1'UNZ+1+1'", DocFormat.EDIFACT, DocType.QUOTE),
        (b"UNB+UNOA:3+A+B+261123:0900+1'UNH+1+ORDCHG:D:96A:UN'UNT+2+1'UNZ+1+1'", DocFormat.EDIFACT,
         DocType.CHANGE_ORDER),
    ],
)  # fmt: skip
def test_edi_kinds_come_from_the_declared_message_type(data: bytes, fmt: DocFormat, kind: DocType) -> None:
    c = classify_edi(data, fmt)
    assert c.kind is kind
    assert ("X12" in c.reason) or ("EDIFACT" in c.reason)


def test_real_edi_purchase_orders_stay_orders() -> None:
    files = [*sorted((CORPORA / "x12-850").rglob("*.edi")), *sorted((CORPORA / "edifact-orders").rglob("*.edi"))]
    assert files
    for p in files:
        data = p.read_bytes()
        fmt = sniff(data, filename=p.name)
        if fmt in (DocFormat.X12, DocFormat.EDIFACT):
            assert not classify_document(data, fmt).not_an_order, p


def test_classification_never_raises_on_junk() -> None:
    for data in (b"", b"\x00\xff" * 100, b"PK\x03\x04garbage", b"ISA*" + b"~" * 1000):
        for fmt in DocFormat:
            assert classify_document(data, fmt).kind in DocType


# --- through the pipeline ---------------------------------------------------------------------------


@pytest.fixture
def intake(db: Database, tmp_path: Path) -> Intake:
    return build_intake(db, tmp_path)


def test_an_invoice_is_filed_and_answered_not_an_order(intake: Intake) -> None:
    path = INVOICES / "AzureInterior.pdf"
    doc_id = intake.receive(path.read_bytes(), filename=path.name)
    result = intake.process(doc_id)
    assert result.status == "not_an_order"
    assert result.reason is not None
    assert "invoice" in result.reason
    assert result.outcomes == []
    doc = intake.store.get(doc_id)
    assert doc.status == DocumentStatus.FILED
    assert doc.order_count == 0
    assert intake.store.get_bytes(doc_id) == path.read_bytes()  # kept as received
    assert intake.deps.review_queue().list() == []


def test_orderops_intake_answers_an_invoice_not_an_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import run

    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDEROPS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run(["init", "--orders", "50", "--nodes", "2", "--skus", "20", "--customers", "4", "--json"]) == 0
    (tmp_path / "inv.pdf").write_bytes((INVOICES / "SammyMaystoneLinesTest.pdf").read_bytes())
    capsys.readouterr()
    assert run(["intake", "inv.pdf", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["status"] == "not_an_order"
    assert "invoice" in doc["reason"]
    assert doc["orders"] == []
    assert run(["intake", "inv.pdf"]) == 0  # the table view says it in words
    assert "not_an_order" in capsys.readouterr().out


_X12_810 = (
    b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*ORDEROPS       *261123*0900*U*00401*000000001*0*P*>~"
    b"GS*IN*SENDER*ORDEROPS*20261123*0900*1*X*004010~ST*810*0001~BIG*20261123*INV-1**PO-1~"
    b"IT1*1*2*EA*3.5**VN*SKU-1~TDS*700~SE*5*0001~GE*1*1~IEA*1*000000001~"
)
_INVOICE_MAIL = (
    b"From: Billing <billing@vendor.example>\r\nTo: orders@example.net\r\nSubject: Invoice INV-2291 for PO 4711\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nDear customer,\r\n\r\nplease find our invoice INV-2291 below.\r\n"
    b"Invoice date: 2026-11-20\r\nAmount due: $1,204.00\r\nDue date: 2026-12-20\r\n\r\n"
    b"SKU-00001  qty 10  12.00\r\nSKU-00002  qty 5  216.80\r\n\r\nRemit to: Vendor Inc, PO Box 1, Reno NV 89501\r\n"
)


@pytest.mark.parametrize(
    ("name", "data", "word"), [("inv.x12", _X12_810, "810"), ("inv.eml", _INVOICE_MAIL, "invoice")]
)
def test_an_edi_invoice_and_an_invoice_mail_are_filed(intake: Intake, name: str, data: bytes, word: str) -> None:
    doc_id = intake.receive(data, filename=name, channel="email" if name.endswith(".eml") else "api")
    result = intake.process(doc_id)
    assert result.status == "not_an_order"
    assert result.reason is not None
    assert word in result.reason
    assert intake.store.get(doc_id).status == DocumentStatus.FILED
    assert result.acks == []


_OLD_REPLY = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|sv)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_REPLY_BITS = st.sampled_from(["re", "RE", "fw", "fwd", "sv", " ", "\t", "[2]", "[", "]", ":", "x"])


@given(st.lists(_REPLY_BITS, max_size=14).map("".join))
def test_reply_marks_are_taken_off_as_the_backtracking_pattern_took_them(subject: str) -> None:
    """Possessive space runs in the reply-mark pattern take off exactly what the old one did."""
    from intake.doctype import _REPLY

    assert _REPLY.sub("", subject) == _OLD_REPLY.sub("", subject)


def test_a_subject_with_a_long_space_run_is_read_in_one_pass() -> None:
    """'re' and 200,000 spaces (20,000 took 0.32 s, quadratic): no title from it; 'RE:', the spaces and
    'Purchase Order' is a purchase-order title."""
    assert "title" not in classify_text("Please ship the goods.", title="re" + " " * 200_000 + "x").reason
    cls = classify_text("Please ship the goods.", title="RE:" + " " * 200_000 + "Purchase Order")
    assert cls.kind is DocType.PURCHASE_ORDER
    assert "title 'Purchase Order'" in cls.reason


_OLD_ST = re.compile(r"(?:^|[~'\n\r\x1c-\x1f\x85])\s*ST(.)(\d{3})\1")
_ST_BITS = st.sampled_from(["ST", "S", "T", "*", "~", "'", "\n", "\r", " ", "\x1c", "\x85", "850", "8", "\t", "x",
                            "ST*850*", "ST~810~", "ST\n856\n"])  # fmt: skip


@given(st.lists(_ST_BITS, max_size=12).map("".join))
def test_x12_headers_are_found_where_the_pattern_found_them(text: str) -> None:
    """The one-pass reader gives the pattern's matches (start, end, code), in order."""
    from intake.doctype import st_headers

    assert st_headers(text) == [(m.start(), m.end(), m.group(2)) for m in _OLD_ST.finditer(text)]


@pytest.mark.parametrize("blank", [b"\n", b"\n ", b"\x85"])
def test_an_x12_file_of_blank_lines_is_read_in_one_pass(blank: bytes) -> None:
    """200,000 characters of line breaks (20,000 took 0.32 s, quadratic) and then a purchase order's
    header: the header is found."""
    blanks = b"ISA*00*" + blank * (190_000 // len(blank))
    assert classify_edi(blanks, DocFormat.X12).kind is DocType.OTHER
    assert "X12 850" in classify_edi(blanks + b"ST*850*0001~", DocFormat.X12).reason


_NOISE_BITS = st.sampled_from(["copy", "page", " ", "1", "12", "of", "seite", "no", "no.", "n°", "nr.", "number", "#",
                               ":", "-", ".", "A", "a1", "x", "\n", "_", "/", "standard", "é", "2b"])  # fmt: skip


@given(st.lists(_NOISE_BITS, max_size=6).map("".join))
@settings(max_examples=1000)
def test_title_noise_is_read_as_the_exponential_pattern_read_it(text: str) -> None:
    """Each place a row of copy marks, page numbers and codes can reach, worked out once, accepts what
    the pattern accepted."""
    from intake.doctype import _TITLE_NOISE, title_noise

    assert title_noise(text) == bool(_TITLE_NOISE.match(text))


def test_a_heading_with_a_long_number_is_read_at_once() -> None:
    """'Purchase Order' and 60 digits with a stop after them: the pattern's row of codes split the
    digits every way (20 took 0.1 s, doubling with each more: this never finished); now read at once,
    and a row that is all noise still is."""
    from intake.doctype import title_noise

    assert not title_noise("0" * 75 + "!")
    assert title_noise("0" * 75)
    assert title_noise("Copy - page 2 of 3 No. A1-4711")
    cls = classify_text("Please ship the goods.", title="Purchase Order " + "0" * 60 + "!")
    assert cls.kind is DocType.PURCHASE_ORDER
    assert classify_text("PURCHASE ORDER " + "0" * 60 + "!\nPlease ship the goods.").kind is DocType.PURCHASE_ORDER


_OLD_NUMBERED = re.compile(r"\s*(?:n[°o]\.?|no\.?|nr\.?|#|number|num[eé]ro)?\s*[:.]?\s*#?\s*[A-Z]{0,6}[/\-_]?\d", re.I)
_NUMBERED_BITS = st.sampled_from([" ", "\t", "no", "no.", "n°", "nr", "#", "number", "numéro", ":", ".", "A", "PO",
                                  "-", "/", "_", "1", "x"])  # fmt: skip


@given(st.lists(_NUMBERED_BITS, max_size=12).map("".join))
@settings(max_examples=1000)
def test_a_document_number_after_a_title_is_found_as_the_old_pattern_found_it(text: str) -> None:
    """The possessive space runs of ``_NUMBERED`` accept what the backtracking pattern accepted."""
    from intake.doctype import _NUMBERED

    assert bool(_NUMBERED.match(text)) == bool(_OLD_NUMBERED.match(text))


def test_a_title_followed_by_a_space_run_is_read_at_once() -> None:
    """Titles followed by 70 spaces and no number (the old pattern split the run four ways: up to
    0.5 s a line) on 2,000 lines: classified, and a numbered one is still a numbered title."""
    from intake.doctype import _NUMBERED

    assert _NUMBERED.match(" " * 70 + "x") is None
    assert _NUMBERED.match(" " * 30 + "No. " + " " * 30 + "#P00118") is not None
    body = "\n".join(["Purchase Order" + " " * 70 + "x"] * 2_000) + "\nPlease ship the goods."
    assert classify_text(body).kind is DocType.PURCHASE_ORDER
