"""The document store reads free text with the extractor it is given (the LLM one when a model is
configured), and the composition root picks it from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.clock import FixedClock
from core.db import Database
from core.settings import Settings
from intake.documents import DocumentStore
from intake.extract import CustomerTemplate, SpanSource, TextExtraction
from intake.llm_extract import DeterministicExtractor, LLMExtractor, make_extractor

BODY = """Hello,

please ship the following.

PO Number: 778812
Ship To:
Acme Receiving
12 Dock Rd
Reno, NV 89501

10 x SKU-00003 @ 12.50
4 x SKU-00007 @ 30.00

Thanks
"""


def _eml(body: str) -> bytes:
    return (
        "From: Buyer <buyer@acme.example>\r\nTo: orders@orderops.example\r\nSubject: Order\r\n"
        "Message-ID: <po-778812@acme.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


@dataclass
class RecordingExtractor:
    """A real extractor (the deterministic one) that records what it was asked to read."""

    name: str = "recording"
    texts: list[str] = field(default_factory=list)

    def extract(
        self,
        text: str,
        *,
        source: SpanSource | None = None,
        document_type: str = "text",
        template: CustomerTemplate | None = None,
    ) -> TextExtraction:
        self.texts.append(text)
        return DeterministicExtractor().extract(text, source=source, document_type=document_type, template=template)


def test_store_reads_email_bodies_with_its_extractor(sqlite_db: Database, tmp_path: Path) -> None:
    rec = RecordingExtractor()
    store = DocumentStore(sqlite_db, FixedClock(), tmp_path / "docs", extractor=rec)
    doc = store.receive(_eml(BODY), channel="email", filename="po.eml", sender="buyer@acme.example")
    outcome = store.parse(doc.id)
    assert len(rec.texts) == 1
    assert "PO Number: 778812" in rec.texts[0]
    assert [po.po_number for po in outcome.purchase_orders] == ["778812"]
    assert [ln.quantity for ln in outcome.purchase_orders[0].lines] == [10, 4]


def test_extractor_comes_from_settings(tmp_path: Path) -> None:
    assert isinstance(make_extractor(Settings(home=tmp_path)), DeterministicExtractor)
    configured = Settings(home=tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_model="local-model")
    assert isinstance(make_extractor(configured), LLMExtractor)  # built lazily: nothing is contacted here
