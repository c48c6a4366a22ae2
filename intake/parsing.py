"""Parsing one document's bytes with the parser for its format: what the parse sandbox's child runs.

Apart from :mod:`intake.documents` (the store, on SQLAlchemy) so that the sandbox's fork server
and its children import only the parsers: the server's start is on the path of a one-shot
``orderops intake FILE`` (it was a second interpreter importing SQLAlchemy and every table).
:mod:`intake.documents` re-exports both names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from intake.classify import DocFormat, sniff
from intake.doctype import screen
from intake.extract import TemplateRegistry
from intake.mail import MailLimits, parse_attachment, parse_email
from intake.model import Finding, PurchaseOrder, Severity, Source
from intake.pdf import PdfLimits, parse_pdf
from intake.sheets import SheetLimits, parse_csv, parse_xlsx

if TYPE_CHECKING:
    from intake.llm_extract import TextExtractor

__all__ = ["DocumentLimits", "parse_bytes"]


@dataclass(frozen=True)
class DocumentLimits:
    max_bytes: int = 25 * 1024 * 1024
    parse_seconds: float = 30.0
    pdf: PdfLimits = field(default_factory=PdfLimits)
    sheet: SheetLimits = field(default_factory=SheetLimits)
    mail: MailLimits = field(default_factory=MailLimits)


def parse_bytes(
    data: bytes,
    *,
    fmt: DocFormat | None = None,
    filename: str | None = None,
    media_type: str | None = None,
    document: str | None = None,
    limits: DocumentLimits | None = None,
    templates: TemplateRegistry | None = None,
    sender: str | None = None,
    timer: Callable[[], float] = time.monotonic,
    extractor: TextExtractor | None = None,
) -> tuple[DocFormat, list[PurchaseOrder], list[Finding]]:
    """Parse one document with the parser for its format; never raises. ``extractor`` reads free
    text (email bodies, text attachments); default: the deterministic extractor."""
    limits = limits or DocumentLimits()
    fmt = fmt or sniff(data, filename=filename, media_type=media_type)
    template = templates.for_sender(sender) if templates else None
    if fmt == DocFormat.PDF:
        p = parse_pdf(data, document=document, limits=limits.pdf, template=template, timer=timer)
        return fmt, *screen(data, fmt, p.purchase_orders, p.findings, text=p.text, document=document)
    if fmt == DocFormat.XLSX:
        s = parse_xlsx(data, document=document, limits=limits.sheet)
        return fmt, *screen(data, fmt, s.purchase_orders, s.findings, document=document)
    if fmt == DocFormat.CSV:
        c = parse_csv(data, document=document, limits=limits.sheet)
        return fmt, *screen(data, fmt, c.purchase_orders, c.findings, document=document)
    if fmt == DocFormat.EMAIL:
        m = parse_email(data, document=document, templates=templates, limits=limits.mail, extractor=extractor)
        return fmt, *screen(data, fmt, m.purchase_orders, m.findings, text=m.body_text, title=m.subject,
                            document=document)  # fmt: skip
    if fmt in (DocFormat.UNKNOWN, DocFormat.ZIP):
        return fmt, [], [
            Finding(severity=Severity.ERROR, code="unknown_format", message=f"cannot read a {fmt} document",
                    source=Source(kind="manual", document=document))
        ]  # fmt: skip
    a_fmt, a_orders, a_findings = parse_attachment(data, filename=filename, media_type=media_type, document=document,
                                                   templates=templates, sender=sender, extractor=extractor)  # fmt: skip
    return a_fmt, *screen(data, a_fmt, a_orders, a_findings, document=document)
