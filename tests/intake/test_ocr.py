"""OCR of scanned purchase orders: tesseract reads image-only pages into the same layout machinery
as text PDFs; every field carries the confidence of the words it came from, and an order read by
OCR is never created without a person. Under CI tesseract must be installed (these tests fail,
not skip, without it)."""

from __future__ import annotations

import io
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from core.db import Database
from intake.decide import OCR_REASON, decide, with_change_order, with_ocr_confidence
from intake.documents import DocumentStatus
from intake.model import Finding, POLine, PurchaseOrder, Severity
from intake.ocr import OCR_DOCUMENT_TYPE, OcrLimits, low_confidence, skew_angle, tesseract_version
from intake.pdf import PdfLimits, parse_pdf
from intake.validate import ValidatedLine, ValidatedOrder
from tests.conftest import CORPORA
from tests.intake.test_pipeline import Intake, build_intake

ERP = CORPORA / "po-erp-styles"
GOLD = json.loads((ERP / "gold.json").read_text())
SCANS = sorted((ERP / "docs").glob("scan-*.pdf"))


@pytest.fixture(scope="module")
def tesseract() -> str:
    version = tesseract_version()
    if version is None:
        reason = "tesseract is not installed (apt-get install tesseract-ocr)"
        if os.environ.get("CI"):
            pytest.fail(f"tesseract is required under CI: {reason}")
        pytest.skip(reason)
    return version


def _scan_of(pdf: bytes, *, degrees: float, dpi: int = 150) -> bytes:
    """An image-only PDF made from a text PDF: each page rendered, tilted and saved as a JPEG page
    (what a scanner gives), so the text layer's reading is the answer OCR must match."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    images = []
    for page in doc:
        img = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
        images.append(img.rotate(degrees, fillcolor=255, expand=False))
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=images[1:], quality=85)
    return buf.getvalue()


def _norm(s: object) -> str:
    return "".join(ch for ch in str(s or "").upper() if ch.isalnum())


# --- reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCANS, ids=lambda p: p.name)
def test_a_scanned_po_is_read_with_field_confidences(tesseract: str, path: Path) -> None:
    gold = GOLD[path.name]
    doc = parse_pdf(path.read_bytes(), document=path.name)
    po = doc.purchase_order
    assert po is not None
    assert _norm(po.po_number) == _norm(gold["po_number"])
    assert abs(len(po.lines) - len(gold["lines"])) <= 1
    assert po.document_type == OCR_DOCUMENT_TYPE
    codes = [f.code for f in doc.findings]
    assert "ocr_read" in codes
    assert "image_only" not in codes
    assert doc.ocr is not None
    assert doc.ocr.pages == [1]
    assert all(0.0 <= w.conf <= 1.0 for w in doc.ocr.words)
    for f in doc.findings:
        if f.code == "ocr_low_confidence":
            parsed = low_confidence(f)
            assert parsed is not None
            assert parsed[0] in po.sources
            assert parsed[1] < OcrLimits().review_confidence


def test_ocr_accuracy_on_the_independent_scans(tesseract: str) -> None:
    """Both scans (tilted 1.4 and -1.8 degrees, blurred, specks): measured PO number 2/2, line
    count 2/2, part/qty/price 29 of 30 (a speck makes the sage scan's ``8.00`` read ``g.00``,
    kept as ``9.00`` with a low confidence); the floors leave slack for other tesseract builds.
    The held-out copies (seeds 101, 202) measured the same: 6/6 PO numbers, 88/90 fields."""
    po_numbers = fields = total = counts = 0
    for path in SCANS:
        gold = GOLD[path.name]
        po = parse_pdf(path.read_bytes(), document=path.name).purchase_order
        assert po is not None
        po_numbers += _norm(po.po_number) == _norm(gold["po_number"])
        counts += len(po.lines) == len(gold["lines"])
        for i, gl in enumerate(gold["lines"]):
            total += 3
            line = po.lines[i] if i < len(po.lines) else None
            if line is None:
                continue
            fields += _norm(gl["buyer_part_number"]) in {_norm(p.value) for p in line.product_ids}
            fields += line.quantity == Decimal(str(gl["quantity"]))
            fields += line.unit_price is not None and abs(line.unit_price - Decimal(str(gl["unit_price"]))) < Decimal(
                "0.00005"
            )
    assert po_numbers == len(SCANS)
    assert counts >= len(SCANS) - 1
    assert fields >= 26, (fields, total)


def test_a_tilted_rendering_of_a_text_po_reads_like_its_text_layer(tesseract: str) -> None:
    """A text PO rendered to a 150 dpi image tilted 2 degrees (no text layer left) gives the same PO
    number and line count as the text layer did."""
    text_pdf = (ERP / "docs" / "pdf-quickbooks-like-02.pdf").read_bytes()
    want = parse_pdf(text_pdf).purchase_order
    assert want is not None
    scan = _scan_of(text_pdf, degrees=2.0)
    got = parse_pdf(scan).purchase_order
    assert got is not None
    assert _norm(got.po_number) == _norm(want.po_number)
    assert len(got.lines) == len(want.lines)


def test_a_scanned_invoice_is_read_and_answered_not_an_order(tesseract: str) -> None:
    from intake.documents import parse_bytes

    scan = _scan_of((CORPORA / "pdf" / "invoice2data" / "AzureInterior.pdf").read_bytes(), degrees=-1.0)
    _fmt, orders, findings = parse_bytes(scan, filename="invoice-scan.pdf")
    assert orders == []
    codes = {f.code for f in findings}
    assert {"ocr_read", "not_an_order"} <= codes


def test_skew_is_measured_within_a_tenth_of_a_degree(tesseract: str) -> None:
    import pypdfium2 as pdfium

    page = pdfium.PdfDocument((ERP / "docs" / "pdf-sage-like-01.pdf").read_bytes())[0]
    img = page.render(scale=150 / 72, grayscale=True).to_pil().convert("L")
    for tilt in (-2.5, 1.3):
        assert abs(skew_angle(img.rotate(tilt, fillcolor=255)) + tilt) <= 0.15


# --- failing well -----------------------------------------------------------------------------------


def test_without_tesseract_a_scan_is_a_clear_finding(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no tesseract binary to find
    assert shutil.which("tesseract") is None
    doc = parse_pdf(SCANS[0].read_bytes(), document=SCANS[0].name)
    codes = {f.code for f in doc.findings}
    assert "ocr_unavailable" in codes
    assert "image_only" in codes  # the document store quarantines it with the reason
    assert doc.purchase_order is None


def test_the_ocr_budget_stops_reading_with_a_finding(tesseract: str) -> None:
    """0.5 s: no time to start, nothing is read. 1.2 s over six scanned pages: the first page is
    either killed at the budget or read (a fast idle machine reads one in under a second, so a
    one-page test of this flaked), and no page after it starts: that would need a page rendered,
    deskewed and read in 0.2 s."""
    doc = parse_pdf(SCANS[0].read_bytes(), limits=PdfLimits(ocr=OcrLimits(max_seconds=0.5)))
    assert "ocr_timeout" in {f.code for f in doc.findings}
    assert doc.purchase_order is None
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(SCANS[0].read_bytes())
    six = pdfium.PdfDocument.new()
    six.import_pages(src, [0] * 6)
    buf = io.BytesIO()
    six.save(buf)
    doc = parse_pdf(buf.getvalue(), limits=PdfLimits(ocr=OcrLimits(max_seconds=1.2)))
    stopped = [f for f in doc.findings if f.code == "ocr_timeout"]
    assert len(stopped) == 1
    assert "page 1:" in stopped[0].message or "page 2 and later not read" in stopped[0].message


# --- the decision -----------------------------------------------------------------------------------


def _confident(document_type: str) -> ValidatedOrder:
    po = PurchaseOrder(document_type=document_type, po_number="P-1", lines=[POLine(quantity=Decimal(2))])
    line = ValidatedLine(index=0, sku="SKU-00001", quantity=2, uom="EA", unit_price=Decimal("3.50"))
    conf = {"customer": 1.0, "ship_to": 1.0, "lines[0].sku": 1.0, "lines[0].quantity": 1.0, "lines[0].uom": 1.0,
            "lines[0].price": 1.0}  # fmt: skip
    return ValidatedOrder(purchase_order=po, customer_id="C-1", ship_to_id="A-1", po_number="P-1", lines=[line],
                          confidence=conf)  # fmt: skip


def test_an_order_read_by_ocr_is_never_created_on_its_own() -> None:
    assert decide(_confident("pdf")).kind == "auto_create"
    d = decide(_confident(OCR_DOCUMENT_TYPE))
    assert d.kind == "review"
    assert OCR_REASON in d.reasons


def test_ocr_confidences_cap_the_field_confidences_and_are_shown() -> None:
    v = _confident(OCR_DOCUMENT_TYPE)
    v.purchase_order.sources = {}
    low = Finding(severity=Severity.WARNING, code="ocr_low_confidence",
                  message="lines[0].quantity: read by OCR with confidence 0.42")  # fmt: skip
    read = Finding(severity=Severity.WARNING, code="ocr_read", message="page(s) 1 read by OCR")
    out = with_ocr_confidence(v, [read, low])
    assert out.confidence["lines[0].quantity"] == pytest.approx(0.42)
    d = decide(out)
    assert d.kind == "review"
    assert "lines[0].quantity" in d.low_fields
    assert any("0.42" in r for r in d.reasons)


def test_a_change_order_for_a_po_never_received_is_reviewed() -> None:
    change = Finding(severity=Severity.INFO, code="change_order", message="a change to an earlier order")
    v = with_change_order(_confident("pdf"), [change])
    d = decide(v)
    assert d.kind == "review"
    assert any("change order" in r for r in d.reasons)
    assert decide(with_change_order(_confident("pdf"), [])).kind == "auto_create"


# --- end to end -------------------------------------------------------------------------------------


@pytest.fixture
def intake(db: Database, tmp_path: Path) -> Intake:
    return build_intake(db, tmp_path)


def test_a_scanned_po_becomes_a_review_item_with_its_confidences(tesseract: str, intake: Intake) -> None:
    path = SCANS[0]
    doc_id = intake.receive(path.read_bytes(), filename=path.name)
    result = intake.process(doc_id)  # parsed in the sandbox child, OCR included
    assert result.status == "processed"
    assert intake.store.get(doc_id).status == DocumentStatus.PARSED
    (out,) = result.outcomes
    assert out.decision in ("review", "revision")
    assert out.status == "queued"
    assert OCR_REASON in out.reasons or any("read by OCR" in r for r in out.reasons)
    item = intake.deps.review_queue().get(out.review_item_id or "")
    assert any(f.code.startswith("ocr_") for f in item.validated.findings)
