"""The document store: every received document is kept as received, before anything parses it.

Bytes go to disk under ``root_dir`` (``<settings.home>/documents`` in the app), content-addressed
by sha256 (``ab/abcdef...``), written atomically; a ``documents`` row says what the file is, who
sent it through which channel, and where it stands: ``received`` -> ``parsed`` | ``quarantined`` |
``failed``. Receiving the same bytes on the same channel again returns the same document, flagged
``duplicate`` (and counted), so a re-sent e-mail never becomes a second order.

Quarantine keeps the file retrievable with a reason a person can act on: oversized, empty,
unreadable or corrupt, encrypted PDFs, too many pages, zip bombs (checked on the archive directory
before openpyxl inflates anything), parse timeouts. This module must never delete a document or
let a parser see bytes that were not stored first.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import Clock
from core.db.engine import Database
from core.db.tables import DocumentRow
from core.errors import ConfigurationError, NotFound, ValidationFailed
from intake.classify import DocFormat, sniff
from intake.doctype import NOT_AN_ORDER
from intake.extract import TemplateRegistry
from intake.model import Finding, PurchaseOrder, Severity, Source
from intake.parsing import DocumentLimits, parse_bytes
from intake.sandbox import SANDBOX_CODES, SandboxLimits, parse_isolated, warm_up
from intake.sheets import check_zip

if TYPE_CHECKING:
    from intake.llm_extract import TextExtractor

__all__ = [
    "QUARANTINE_CODES",
    "DocumentLimits",
    "DocumentStatus",
    "DocumentStore",
    "ParseOutcome",
    "StoredDocument",
    "parse_bytes",
]

QUARANTINE_CODES = frozenset(
    {
        "oversized", "empty_document", "empty_pdf", "not_a_pdf", "encrypted", "corrupt_pdf", "image_only",
        "too_many_pages", "parse_timeout", "zip_bomb", "corrupt_xlsx", "not_xlsx", "unreadable", "too_many_rows",
        "unknown_format", "header_limit", "pdf_bomb", "too_many_chars", "too_many_segments",
    }
    | SANDBOX_CODES
)  # fmt: skip
"""Finding codes that send a document to quarantine instead of on to the intake agent."""


class DocumentStatus(StrEnum):
    RECEIVED = "received"
    PARSED = "parsed"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    FILED = "filed"
    """Read, and not an order (an invoice, a quote, ...): kept, answered "not an order" (intake.doctype)."""


class _TimedExtractor:
    """The store's extractor, timed: without the sandbox a model's latency must not count as parse time."""

    def __init__(self, inner: TextExtractor, timer: Callable[[], float]) -> None:
        self.inner, self.timer, self.seconds = inner, timer, 0.0
        self.name = inner.name

    def extract(self, text: str, **kw: Any) -> Any:
        t0 = self.timer()
        try:
            return self.inner.extract(text, **kw)
        finally:
            self.seconds += self.timer() - t0


class StoredDocument(BaseModel):
    id: str
    sha256: str
    size: int
    filename: str | None = None
    media_type: str | None = None
    format: DocFormat
    channel: str
    sender: str | None = None
    external_id: str | None = None
    received_at: datetime
    last_received_at: datetime
    times_received: int = 1
    status: DocumentStatus
    reason: str | None = None
    order_count: int = 0
    duplicate: bool = False
    """True when this call received bytes the store already had from the same channel."""


class ParseOutcome(BaseModel):
    document: StoredDocument
    purchase_orders: list[PurchaseOrder] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _to_model(row: DocumentRow, *, duplicate: bool = False) -> StoredDocument:
    return StoredDocument(
        id=row.id, sha256=row.sha256, size=row.size, filename=row.filename, media_type=row.media_type,
        format=DocFormat(row.format), channel=row.channel, sender=row.sender, external_id=row.external_id,
        received_at=_aware(row.received_at), last_received_at=_aware(row.last_received_at),
        times_received=row.times_received, status=DocumentStatus(row.status), reason=row.reason,
        order_count=row.order_count, duplicate=duplicate,
    )  # fmt: skip


class DocumentStore:
    """Stores received documents (disk + ``documents`` table) and moves them through parsing."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        root_dir: Path,
        *,
        limits: DocumentLimits | None = None,
        templates: TemplateRegistry | None = None,
        timer: Callable[[], float] = time.monotonic,
        extractor: TextExtractor | None = None,
        sandbox: SandboxLimits | None = None,
    ) -> None:
        self.db = db
        # Parse in a capped child by default; its wall-time budget is the parse limit.
        self.sandbox = sandbox or SandboxLimits(wall_seconds=(limits or DocumentLimits()).parse_seconds)
        if self.sandbox.enabled:
            warm_up()
        self.extractor = extractor
        self.clock = clock
        self.root = Path(root_dir)
        self.limits = limits or DocumentLimits()
        self.templates = templates
        self.timer = timer

    # storage -------------------------------------------------------------------------------------
    def _path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def _write(self, sha: str, data: bytes) -> None:
        path = self._path(sha)
        if path.exists() and path.stat().st_size == len(data):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def receive(
        self,
        data: bytes,
        *,
        channel: str,
        filename: str | None = None,
        media_type: str | None = None,
        sender: str | None = None,
        external_id: str | None = None,
    ) -> StoredDocument:
        """Store ``data`` as received (idempotent by sha256 + channel) and return its record.

        Oversized, empty and zip-bomb documents are stored too, and quarantined at once.
        """
        if not channel or len(channel) > 32:
            raise ValidationFailed("channel must be a short non-empty name such as 'email', 'api' or 'folder'")
        if not isinstance(data, bytes | bytearray):
            raise ValidationFailed("document data must be bytes")
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        self._write(sha, data)
        now = self.clock.now()
        again = self._count_again(sha, channel, now)
        if again is not None:
            return again
        fmt = sniff(data, filename=filename, media_type=media_type)
        status, reason = DocumentStatus.RECEIVED, None
        if not data.strip():
            status, reason = DocumentStatus.QUARANTINED, "empty_document: the document is empty"
        elif len(data) > self.limits.max_bytes:
            status, reason = DocumentStatus.QUARANTINED, f"oversized: {len(data)} bytes, limit {self.limits.max_bytes}"
        elif fmt == DocFormat.XLSX:
            problems = check_zip(data, self.limits.sheet, document=filename)
            if problems:
                status, reason = DocumentStatus.QUARANTINED, f"{problems[0].code}: {problems[0].message}"
        values = {
            "id": str(uuid.uuid4()), "sha256": sha, "size": len(data), "format": fmt.value, "channel": channel,
            "filename": (filename or None) and filename[:255], "media_type": (media_type or None) and media_type[:255],
            "sender": (sender or None) and sender[:320], "external_id": (external_id or None) and external_id[:998],
            "received_at": now, "last_received_at": now, "times_received": 1, "status": status.value,
            "reason": reason, "order_count": 0, "findings": None,
        }  # fmt: skip
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        stmt = (
            insert(DocumentRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["sha256", "channel"])
            .returning(DocumentRow.id)
        )
        with self.db.begin() as s:
            inserted = s.execute(stmt).first() is not None
        if inserted:
            return self.get(str(values["id"]))
        # Someone stored the same bytes on the same channel between our update and our insert.
        again = self._count_again(sha, channel, now)
        if again is None:  # pragma: no cover - the row that blocked our insert cannot vanish
            raise ConfigurationError(f"document {sha} on channel {channel} disappeared while being received")
        return again

    def _count_again(self, sha: str, channel: str, now: datetime) -> StoredDocument | None:
        """Count one more receipt of a stored document, or None if it is new.

        ``times_received = times_received + 1`` in the database, in one statement: workers
        receiving the same bytes at once must each be counted (a read-modify-write loses updates).
        """
        match = (DocumentRow.sha256 == sha, DocumentRow.channel == channel)
        with self.db.begin() as s:
            res = s.execute(
                update(DocumentRow)
                .where(*match)
                .values(times_received=DocumentRow.times_received + 1, last_received_at=now)
                .execution_options(synchronize_session=False)
            )
            if not getattr(res, "rowcount", 0):
                return None
            row = s.scalars(select(DocumentRow).where(*match).execution_options(populate_existing=True)).one()
            return _to_model(row, duplicate=True)

    def get(self, document_id: str) -> StoredDocument:
        with self.db.begin() as s:
            row = s.get(DocumentRow, document_id)
            if row is None:
                raise NotFound("document", document_id)
            return _to_model(row)

    def get_bytes(self, document_id: str) -> bytes:
        """The stored bytes, exactly as received (checked against their sha256)."""
        doc = self.get(document_id)
        path = self._path(doc.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigurationError(f"document {document_id} is missing from {self.root}", path=str(path)) from exc
        if hashlib.sha256(data).hexdigest() != doc.sha256:
            raise ConfigurationError(f"document {document_id} on disk does not match its sha256", path=str(path))
        return data

    def list(self, *, status: DocumentStatus | None = None, limit: int = 100) -> list[StoredDocument]:
        with self.db.begin() as s:
            q = select(DocumentRow).order_by(DocumentRow.received_at, DocumentRow.id).limit(limit)
            if status is not None:
                q = q.where(DocumentRow.status == status.value)
            return [_to_model(r) for r in s.scalars(q)]

    def _set(self, document_id: str, **values: Any) -> StoredDocument:
        with self.db.begin() as s:
            row = s.get(DocumentRow, document_id)
            if row is None:
                raise NotFound("document", document_id)
            for k, v in values.items():
                setattr(row, k, v)
            s.flush()
            return _to_model(row)

    def quarantine(self, document_id: str, reason: str) -> StoredDocument:
        """Set the document aside for a person, with a reason; its bytes stay retrievable."""
        if not reason.strip():
            raise ValidationFailed("a quarantine needs a reason")
        return self._set(document_id, status=DocumentStatus.QUARANTINED.value, reason=reason)

    def release(self, document_id: str) -> StoredDocument:
        """Back to ``received`` after a person looked at it (e.g. the sender sent the password)."""
        return self._set(document_id, status=DocumentStatus.RECEIVED.value, reason=None)

    # parsing -------------------------------------------------------------------------------------
    def parse(self, document_id: str) -> ParseOutcome:
        """Parse a stored document and record the outcome; a quarantined one is not parsed."""
        doc = self.get(document_id)
        if doc.status == DocumentStatus.QUARANTINED:
            return ParseOutcome(document=doc)
        data = self.get_bytes(document_id)
        started = self.timer()
        try:
            if self.sandbox.enabled:
                iso = parse_isolated(
                    data, fmt=doc.format, filename=doc.filename, media_type=doc.media_type,
                    document=doc.filename or doc.id, limits=self.limits, templates=self.templates, sender=doc.sender,
                    extractor=self.extractor, sandbox=self.sandbox, timer=self.timer,
                )  # fmt: skip
                orders, findings = iso.purchase_orders, iso.findings
                started = self.timer() - iso.parse_seconds  # the extractor's (model's) time is not parse time
            else:
                timed = _TimedExtractor(self.extractor, self.timer) if self.extractor is not None else None
                _fmt, orders, findings = parse_bytes(
                    data, fmt=doc.format, filename=doc.filename, media_type=doc.media_type,
                    document=doc.filename or doc.id, limits=self.limits, templates=self.templates,
                    sender=doc.sender, timer=self.timer, extractor=timed,
                )  # fmt: skip
                started += timed.seconds if timed is not None else 0.0  # the model's time is not parse time
        except Exception as exc:  # pragma: no cover - parsers never raise; keep the document if one does
            # Quarantined, not left "failed": every document ends with an outcome a person can act on.
            failed = self._set(
                document_id, status=DocumentStatus.QUARANTINED.value, reason=f"parser_crashed: {exc!r}"[:2000],
                parsed_at=self.clock.now(),
            )  # fmt: skip
            return ParseOutcome(document=failed)
        elapsed = self.timer() - started
        if elapsed > self.limits.parse_seconds and not any(f.code == "parse_timeout" for f in findings):
            findings.append(
                Finding(severity=Severity.ERROR, code="parse_timeout",
                        message=f"parsing took {elapsed:.1f}s, over the {self.limits.parse_seconds}s limit",
                        source=Source(kind="manual", document=doc.filename or doc.id))
            )  # fmt: skip
        blocking = [f for f in findings if f.code in QUARANTINE_CODES and f.severity == Severity.ERROR]
        filed = next((f for f in findings if f.code == NOT_AN_ORDER), None)
        if filed is not None and not blocking:  # an invoice, a quote...: kept and answered, not quarantined
            updated = self._set(
                document_id, status=DocumentStatus.FILED.value, reason=filed.message[:2000],
                findings=[f.model_dump(mode="json") for f in findings[:200]], order_count=0, parsed_at=self.clock.now(),
            )  # fmt: skip
            return ParseOutcome(document=updated, findings=findings)
        if not orders and not blocking:
            # Never "parsed, no orders" with errors: a person looks at what the parser could not read.
            blocking = [f for f in findings if f.severity == Severity.ERROR]
        stored_findings = [f.model_dump(mode="json") for f in findings[:200]]
        if blocking:
            reason = "; ".join(f"{f.code}: {f.message}" for f in blocking[:3])
            updated = self._set(
                document_id, status=DocumentStatus.QUARANTINED.value, reason=reason[:2000], findings=stored_findings,
                order_count=len(orders), parsed_at=self.clock.now(),
            )  # fmt: skip
            return ParseOutcome(document=updated, purchase_orders=orders, findings=findings)
        updated = self._set(
            document_id, status=DocumentStatus.PARSED.value, reason=None, findings=stored_findings,
            order_count=len(orders), parsed_at=self.clock.now(),
        )  # fmt: skip
        return ParseOutcome(document=updated, purchase_orders=orders, findings=findings)
