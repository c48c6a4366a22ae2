"""The document store: stored before parsing, idempotent by sha256 + channel, quarantine with a
reason and the bytes kept, and the whole path from received bytes to purchase orders."""

from __future__ import annotations

import functools
import io
import zipfile
from itertools import count
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from core.clock import FixedClock
from core.db import Database
from core.db.migrate import alembic_config, current_revision
from core.errors import NotFound, ValidationFailed
from intake.classify import DocFormat
from intake.documents import DocumentLimits, DocumentStatus, DocumentStore
from intake.pdf import PdfLimits
from tests.intake.pdfwriter import PdfWriter, encrypted_pdf

CSV = b"PO Number,D-1\nsku,qty,price\nSKU-00001,3,2.50\n"


@pytest.fixture
def store(db: Database, tmp_path: Path) -> DocumentStore:
    return DocumentStore(db, FixedClock(), tmp_path / "documents")


def test_receive_stores_bytes_before_parsing_and_parse_records_the_outcome(store: DocumentStore) -> None:
    doc = store.receive(CSV, channel="email", filename="order.csv", media_type="text/csv", sender="a@b.example")
    assert (doc.status, doc.format, doc.size, doc.duplicate) == (
        DocumentStatus.RECEIVED,
        DocFormat.CSV,
        len(CSV),
        False,
    )
    assert (store.root / doc.sha256[:2] / doc.sha256).read_bytes() == CSV
    assert store.get_bytes(doc.id) == CSV
    out = store.parse(doc.id)
    assert out.document.status == DocumentStatus.PARSED
    assert out.document.order_count == 1
    assert out.purchase_orders[0].po_number == "D-1"
    assert store.get(doc.id).status == DocumentStatus.PARSED


def test_same_bytes_same_channel_is_the_same_document(store: DocumentStore) -> None:
    first = store.receive(CSV, channel="email")
    again = store.receive(CSV, channel="email")
    assert again.id == first.id
    assert again.duplicate
    assert again.times_received == 2
    other_channel = store.receive(CSV, channel="folder")
    assert other_channel.id != first.id
    assert not other_channel.duplicate
    assert len(store.list()) == 2


@functools.cache
def _bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\x00" * 120_000_000)
    return buf.getvalue()


def test_zip_bomb_and_oversized_are_quarantined_on_receipt(db: Database, tmp_path: Path) -> None:
    store = DocumentStore(db, FixedClock(), tmp_path / "d", limits=DocumentLimits(max_bytes=300_000))
    bomb = store.receive(_bomb(), channel="api", filename="orders.xlsx")
    assert bomb.status == DocumentStatus.QUARANTINED
    assert bomb.reason is not None
    assert bomb.reason.startswith("zip_bomb")
    big = store.receive(b"x" * 300_001, channel="api")
    assert big.status == DocumentStatus.QUARANTINED
    assert big.reason is not None
    assert "oversized" in big.reason
    assert store.get_bytes(big.id) == b"x" * 300_001
    # A quarantined document is not handed to a parser.
    assert store.parse(bomb.id).purchase_orders == []
    assert {d.id for d in store.list(status=DocumentStatus.QUARANTINED)} == {bomb.id, big.id}


def _two_page_pdf() -> bytes:
    w = PdfWriter()
    w.page().text(72, 72, "PO Number: P-1")
    w.page().text(72, 72, "page two")
    return w.to_bytes()


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [
        (encrypted_pdf(), DocumentLimits(), "encrypted"),
        (b"%PDF-1.4\n\x00garbage", DocumentLimits(), "corrupt_pdf"),
        (_two_page_pdf(), DocumentLimits(pdf=PdfLimits(max_pages=1)), "too_many_pages"),
        (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12", DocumentLimits(), "unknown_format"),
    ],
    ids=["encrypted", "corrupt", "pages", "binary"],
)
def test_unreadable_documents_are_quarantined_with_a_reason(
    db: Database, tmp_path: Path, data: bytes, limits: DocumentLimits, code: str
) -> None:
    store = DocumentStore(db, FixedClock(), tmp_path / "d", limits=limits)
    doc = store.receive(data, channel="email", filename="x.pdf" if data.startswith(b"%PDF") else None)
    out = store.parse(doc.id)
    assert out.document.status == DocumentStatus.QUARANTINED
    assert out.document.reason is not None
    assert out.document.reason.startswith(code)
    assert store.get_bytes(doc.id) == data


def test_parse_timeout_quarantines(db: Database, tmp_path: Path) -> None:
    ticks = count(step=100)
    store = DocumentStore(
        db, FixedClock(), tmp_path / "d", limits=DocumentLimits(parse_seconds=50), timer=lambda: float(next(ticks))
    )
    doc = store.receive(CSV, channel="api")
    out = store.parse(doc.id)
    assert out.document.status == DocumentStatus.QUARANTINED
    assert out.document.reason is not None
    assert out.document.reason.startswith("parse_timeout")


def test_quarantine_release_and_errors(store: DocumentStore) -> None:
    doc = store.receive(CSV, channel="api")
    q = store.quarantine(doc.id, "customer says this is a test file")
    assert (q.status, q.reason) == (DocumentStatus.QUARANTINED, "customer says this is a test file")
    assert store.release(doc.id).status == DocumentStatus.RECEIVED
    with pytest.raises(ValidationFailed):
        store.quarantine(doc.id, " ")
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(ValidationFailed):
        store.receive(CSV, channel="")


def test_email_with_attachment_end_to_end(store: DocumentStore) -> None:
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = "buyer@acme.example"
    m["Subject"] = "PO"
    m.set_content("attached")
    m.add_attachment(CSV, maintype="text", subtype="csv", filename="po.csv")
    doc = store.receive(bytes(m), channel="email", sender="buyer@acme.example")
    assert doc.format == DocFormat.EMAIL
    out = store.parse(doc.id)
    assert out.document.status == DocumentStatus.PARSED
    assert [p.po_number for p in out.purchase_orders] == ["D-1"]


@pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)
def test_migration_0004_round_trip(empty_db_url: str) -> None:
    from core.db import make_database, migrate

    database = make_database(url=empty_db_url)
    try:
        migrate(database)
        assert "documents" in inspect(database.engine).get_table_names()
        cfg = alembic_config(database)
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003_runs")
        assert current_revision(database) == "0003_runs"
        assert "documents" not in inspect(database.engine).get_table_names()
        migrate(database)
        assert "documents" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()
