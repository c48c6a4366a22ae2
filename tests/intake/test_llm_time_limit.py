"""A model's latency is not parse time: a document whose extractor (a language model) takes longer
than the parse limit is not quarantined for it, with or without the parse sandbox (the sandbox stops
its clock while the parent runs the extractor; without it the store takes the extractor's time out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.clock import FixedClock
from core.db import Database
from intake.documents import DocumentLimits, DocumentStore
from intake.extract import CustomerTemplate, SpanSource, TextExtraction
from intake.llm_extract import DeterministicExtractor
from intake.sandbox import SandboxLimits

BODY = "PO Number: 778812\nShip To:\nAcme Receiving\n12 Dock Rd\nReno, NV 89501\n\n10 x SKU-00003 @ 12.50\n"
EML = (
    "From: Buyer <buyer@acme.example>\r\nTo: orders@orderops.example\r\nSubject: Order\r\n"
    "Message-ID: <po-1@acme.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + BODY
).encode()


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SlowModel:
    """Reads with the rules, but takes ``seconds`` on ``clock`` as a CPU model would."""

    clock: Clock
    seconds: float
    name: str = "slow-model"
    calls: list[str] = field(default_factory=list)

    def extract(
        self,
        text: str,
        *,
        source: SpanSource | None = None,
        document_type: str = "text",
        template: CustomerTemplate | None = None,
    ) -> TextExtraction:
        self.calls.append(text)
        self.clock.now += self.seconds
        return DeterministicExtractor().extract(text, source=source, document_type=document_type, template=template)


def test_model_time_does_not_count_against_the_parse_limit(sqlite_db: Database, tmp_path: Path) -> None:
    clock = Clock()
    model = SlowModel(clock, seconds=120.0)
    store = DocumentStore(sqlite_db, FixedClock(), tmp_path / "docs", limits=DocumentLimits(parse_seconds=30),
                          timer=clock, extractor=model, sandbox=SandboxLimits(enabled=False))  # fmt: skip
    doc = store.receive(EML, channel="email", filename="po.eml", sender="buyer@acme.example")
    outcome = store.parse(doc.id)
    assert len(model.calls) == 1
    assert clock.now >= 120.0, "the model took four times the parse limit"
    assert "parse_timeout" not in {f.code for f in outcome.findings}
    assert [po.po_number for po in outcome.purchase_orders] == ["778812"]
