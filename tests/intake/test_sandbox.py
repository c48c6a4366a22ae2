"""Parsing in a capped child process (intake.sandbox) and the parsers' own work bounds.

Each hostile document of ``evals.bench.hostile_docs`` (scaled down where the limit it hits is far
below the small size) ends quarantined with a named reason; the child's fates (memory, time,
death) become findings; normal documents parse the same in the child as in the calling process;
the free-text extractor runs in the parent and its time is not parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from core.clock import FixedClock
from core.db import Database
from evals.bench import hostile_docs as hostile
from intake.classify import DocFormat, sniff
from intake.documents import DocumentLimits, DocumentStatus, DocumentStore, parse_bytes
from intake.extract import CustomerTemplate, SpanSource, TextExtraction, extract_order, span_source
from intake.mail import MailLimits, parse_email
from intake.pdf import PdfLimits, parse_pdf
from intake.pipeline import IntakeResult
from intake.sandbox import SandboxLimits, parse_isolated
from intake.x12 import parse_x12
from tests.conftest import CORPORA
from tests.intake.test_pipeline import build_intake

_SMALL_PDF = PdfLimits(max_chars_per_page=2_000, max_chars=10_000, max_stream_bytes=4 << 20)


def _store(db: Database, tmp_path: Path, limits: DocumentLimits | None = None) -> DocumentStore:
    return DocumentStore(db, FixedClock(), tmp_path / "docs", limits=limits)


@pytest.mark.parametrize(
    ("name", "data", "limits", "code"),
    [
        ("bomb.eml", hostile.eml_subject_bomb(0.06), None, "header_limit"),  # 1,200 encoded words
        ("glyphs.pdf", hostile.pdf_glyphs(0.01), DocumentLimits(pdf=_SMALL_PDF), "too_many_chars"),
        ("flate.pdf", hostile.pdf_flate_bomb(1 / 128), DocumentLimits(pdf=_SMALL_PDF), "pdf_bomb"),
        ("big.edi", hostile.edifact_huge(0.1), None, "too_many_segments"),  # 23,000 segments
        ("lines.x12", hostile.x12_100k_lines(0.25), None, "too_many_segments"),  # 25,000 lines
        ("bomb.xlsx", hostile.xlsx_zip_bomb(1 / 32), None, "zip_bomb"),
    ],
    ids=["eml-subject", "pdf-glyphs", "pdf-flate", "edifact", "x12", "xlsx"],
)
def test_hostile_documents_are_quarantined_with_a_named_reason(
    sqlite_db: Database, tmp_path: Path, name: str, data: bytes, limits: DocumentLimits | None, code: str
) -> None:
    store = _store(sqlite_db, tmp_path, limits)
    doc = store.receive(data, channel="api", filename=name)
    out = store.parse(doc.id)
    assert out.document.status == DocumentStatus.QUARANTINED
    assert out.document.reason is not None
    assert out.document.reason.startswith(code), out.document.reason
    assert out.purchase_orders == []


def test_the_full_size_header_bomb_stops_before_decoding() -> None:
    doc = parse_email(hostile.eml_subject_bomb())
    assert [f.code for f in doc.findings] == ["header_limit"]
    assert doc.subject is None  # never decoded


def test_header_limits_leave_ordinary_encoded_headers_alone() -> None:
    raw = hostile.eml_subject_bomb(0.001)  # 20 encoded words: a long but ordinary subject
    doc = parse_email(raw, limits=MailLimits(max_encoded_words=100))
    assert "header_limit" not in [f.code for f in doc.findings]
    assert doc.subject is not None
    assert doc.subject.startswith("Bestellung ünd Auftrag")


def test_a_page_over_the_glyph_limit_is_skipped_and_named() -> None:
    doc = parse_pdf(hostile.pdf_glyphs(0.01), limits=PdfLimits(max_chars_per_page=5_000))
    skipped = [f for f in doc.findings if f.code == "too_many_chars"]
    assert skipped
    assert all("skipped" in f.message for f in skipped)
    assert "empty_pdf" not in [f.code for f in doc.findings]  # the limit is the reason, not emptiness
    assert {f.source.page for f in skipped if f.source} == {1, 2}


def test_nested_flate_is_followed() -> None:
    import zlib

    inner = zlib.compress(b" " * (8 << 20), 9)
    outer = zlib.compress(inner, 9)
    data = b"%PDF-1.4\n1 0 obj\n<< /Length " + str(len(outer)).encode()
    data += b" /Filter [/FlateDecode /FlateDecode] >>\nstream\n" + outer + b"\nendstream\nendobj\n%%EOF\n"
    doc = parse_pdf(data, limits=PdfLimits(max_stream_bytes=4 << 20))
    assert [f.code for f in doc.findings] == ["pdf_bomb"]


def test_an_error_without_orders_is_quarantined_not_left_parsed(sqlite_db: Database, tmp_path: Path) -> None:
    store = _store(sqlite_db, tmp_path)
    doc = store.receive(b"ISA*00*broken header~GS*PO~", channel="api", filename="x.x12")
    out = store.parse(doc.id)
    assert out.findings
    assert any(f.severity == "error" for f in out.findings)
    assert out.document.status == DocumentStatus.QUARANTINED
    assert out.document.reason


def test_the_pipeline_ends_a_hostile_document_quarantined(sqlite_db: Database, tmp_path: Path) -> None:
    intake = build_intake(sqlite_db, tmp_path)
    doc_id = intake.receive(hostile.x12_100k_lines(0.25), filename="lines.x12")
    result: IntakeResult = intake.process(doc_id)
    assert result.status == "quarantined"
    assert result.reason is not None
    assert result.reason.startswith("too_many_segments")


# --- the child's fates ----------------------------------------------------------------------------


def _isolated(data: bytes, sandbox: SandboxLimits, **kw: Any) -> Any:
    return parse_isolated(data, fmt=sniff(data), limits=DocumentLimits(**kw), sandbox=sandbox)


def test_a_child_over_the_memory_cap_gives_a_finding() -> None:
    # With the bomb check off, inflating the bomb needs ~1 GiB; the child may have 512 MiB.
    data = hostile.pdf_flate_bomb()
    off = PdfLimits(max_stream_bytes=4 << 30, max_inflated_bytes=4 << 30)
    out = _isolated(data, SandboxLimits(memory_bytes=512 << 20), pdf=off)
    assert [f.code for f in out.findings] == ["parse_memory_limit"]
    assert out.purchase_orders == []


def test_a_child_over_the_time_budget_is_killed_with_a_finding() -> None:
    ticks = count(step=100)  # every look at the clock: 100 s later
    data = (CORPORA / "x12-850" / "edi-net" / "x12.850.edi").read_bytes()
    out = parse_isolated(data, fmt=DocFormat.X12, limits=DocumentLimits(), sandbox=SandboxLimits(wall_seconds=30),
                         timer=lambda: float(next(ticks)))  # fmt: skip
    assert [f.code for f in out.findings] == ["parse_timeout"]


class _ExitOnArrival:
    """Unpickling it (in the child, before any parsing) ends the child: a parser that dies."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (os._exit, (3,))


def test_a_child_that_dies_gives_a_finding() -> None:
    out = parse_isolated(b"a,b,c\n1,2,3\n", fmt=DocFormat.CSV, limits=DocumentLimits(),
                         templates=_ExitOnArrival(), sandbox=SandboxLimits())  # type: ignore[arg-type]  # fmt: skip
    assert [f.code for f in out.findings] == ["parser_crashed"]
    assert "exit code 3" in out.findings[0].message


def test_a_store_quarantines_on_the_childs_fate(sqlite_db: Database, tmp_path: Path) -> None:
    ticks = count(step=100)
    store = DocumentStore(sqlite_db, FixedClock(), tmp_path / "d", timer=lambda: float(next(ticks)))
    doc = store.receive((CORPORA / "x12-850" / "edi-net" / "x12.850.edi").read_bytes(), channel="api")
    out = store.parse(doc.id)
    assert out.document.status == DocumentStatus.QUARANTINED
    assert out.document.reason is not None
    assert out.document.reason.startswith("parse_timeout")


# --- normal documents: the same in the child --------------------------------------------------------

_EMAIL = (
    b"From: Buyer <buyer@example.com>\r\nTo: orders@example.net\r\nSubject: PO 4711\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nPurchase Order: PO-4711\r\nShip to: Acme DC, 1 Main St, Reno, "
    b"NV 89501\r\n\r\nSKU-00001  qty 10\r\nSKU-00002  qty 5\r\n"
)
_CSV = b"po_number,sku,quantity,unit_price\nPO-9,SKU-00001,4,9.50\nPO-9,SKU-00002,1,3.00\n"


def _normal_documents() -> list[tuple[str, bytes]]:
    files = [
        CORPORA / "x12-850" / "edi-net" / "x12.850.edi",
        CORPORA / "edifact-orders" / "bots-edifactorder2xml" / "in" / "orders01.edi",
        CORPORA / "pdf" / "invoice2data" / "AzureInterior.pdf",
        *sorted((CORPORA / "po-erp-styles" / "docs").glob("*.pdf"))[:2],
    ]
    return [(p.name, p.read_bytes()) for p in files] + [("po.eml", _EMAIL), ("po.csv", _CSV)]


@pytest.mark.parametrize(("name", "data"), _normal_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_normal_document_parses_the_same_in_the_child(name: str, data: bytes) -> None:
    fmt = sniff(data, filename=name)
    limits = DocumentLimits()
    here_fmt, here_pos, here_findings = parse_bytes(data, fmt=fmt, filename=name, document=name, limits=limits)
    there = parse_isolated(data, fmt=fmt, filename=name, document=name, limits=limits)
    assert there.fmt == here_fmt
    assert [p.model_dump() for p in there.purchase_orders] == [p.model_dump() for p in here_pos]
    assert [f.model_dump() for f in there.findings] == [f.model_dump() for f in here_findings]
    assert here_pos or name.endswith(".pdf")  # the corpus invoices need not be orders
    assert there.child_max_rss_kb > 0


# --- the extractor runs in the parent ---------------------------------------------------------------


@dataclass
class _ParentExtractor:
    """A model stand-in: records where it ran and moves the parse clock by 1,000 s per call."""

    clock: list[float]
    name: str = "stand-in"
    pids: list[int] = field(default_factory=list)

    def extract(
        self,
        text: str,
        *,
        source: SpanSource | None = None,
        document_type: str = "text",
        template: CustomerTemplate | None = None,
    ) -> TextExtraction:
        self.pids.append(os.getpid())
        self.clock[0] += 1_000.0
        return extract_order(text, source=source, document_type=document_type, template=template)


def test_the_extractor_runs_in_the_parent_and_its_time_is_not_parse_time() -> None:
    clock = [0.0]
    ex = _ParentExtractor(clock)
    out = parse_isolated(_EMAIL, fmt=DocFormat.EMAIL, document="po.eml", limits=DocumentLimits(), extractor=ex,
                         sandbox=SandboxLimits(wall_seconds=30), timer=lambda: clock[0])  # fmt: skip
    assert ex.pids == [os.getpid()]
    assert [f.code for f in out.findings if f.code.startswith("parse")] == []
    assert len(out.purchase_orders) == 1
    assert out.purchase_orders[0].po_number == "PO-4711"
    assert out.parse_seconds < 30


def test_span_sources_cross_the_pipe() -> None:
    import pickle

    src = pickle.loads(pickle.dumps(span_source("email", "d")))
    assert src(1, 4).span == (1, 4)
    assert src(1, 4).document == "d"


def test_parse_x12_reads_a_capped_number_of_segments() -> None:
    x = parse_x12(hostile.x12_100k_lines(0.25))
    assert [f.code for f in x.findings] == ["too_many_segments"]
    assert x.interchanges == []


def test_a_long_message_body_is_read_only_up_to_the_limit() -> None:
    raw = _EMAIL + b"filler line of text 12 EA 3.50\r\n" * 200
    doc = parse_email(raw, limits=MailLimits(max_text_chars=1_000))
    assert len(doc.body_text) == 1_000
    assert [f.severity for f in doc.findings if f.code == "too_long"] == ["error"]


def test_sender_only_reads_the_customer_without_parsing_orders() -> None:
    fwd = (
        b"From: Clerk <clerk@example.net>\r\nTo: orders@example.net\r\nSubject: Fwd: PO 4711\r\n"
        b"Content-Type: text/plain\r\n\r\n---------- Forwarded message ----------\r\n"
        b"From: Buyer <buyer@customer.example>\r\nSubject: PO 4711\r\n\r\n"
        b"Purchase Order: PO-4711\r\nSKU-00001 qty 10\r\n"
    )
    full, light = parse_email(fwd), parse_email(fwd, sender_only=True)
    assert light.customer_address == full.customer_address == "buyer@customer.example"
    assert full.purchase_orders
    assert light.purchase_orders == []
