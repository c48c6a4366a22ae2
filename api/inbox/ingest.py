"""Store-then-dispatch for one received e-mail, idempotent by Message-ID (shared by every source).

What this module must never do: hand a message to the pipeline before its bytes are stored, or
create a second document (or job, or order) for a Message-ID it has seen before.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Literal, Protocol

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.db.engine import Database
from core.db.tables_inbox import InboxMessageRow
from core.outbox import INTAKE_PROCESS, Outbox
from intake.documents import DocumentStore, StoredDocument
from intake.pipeline import IntakeDeps, process_document

__all__ = [
    "CHANNEL",
    "DirectDispatcher",
    "Dispatcher",
    "InboxLedger",
    "IngestOutcome",
    "Ingestor",
    "JobDispatcher",
    "PollReport",
    "intake_dedup_key",
    "message_key",
]

log = logging.getLogger("orderops.inbox")

CHANNEL = "email"
MessageStatus = Literal["stored", "dispatched", "moved", "error"]


def intake_dedup_key(document_id: str) -> str:
    """One ``intake.process`` job per document, however often it is enqueued."""
    return f"{INTAKE_PROCESS}:{document_id}"


def message_key(raw: bytes) -> tuple[str, str | None]:
    """The message's Message-ID (or a stand-in derived from its bytes) and its From address.

    Mail without a Message-ID is rare but legal; the sha256 of the bytes then identifies it, so an
    identical re-delivery is still recognised (and an empty file is stored, then quarantined).
    """
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    mid = str(headers.get("Message-ID") or "").strip()
    if not mid:
        mid = f"<sha256:{hashlib.sha256(raw).hexdigest()}@orderops>"
    addrs = [a for _, a in getaddresses([str(headers.get("From") or "")]) if a]
    return mid[:998], (addrs[0] if addrs else None)


class Dispatcher(Protocol):
    """Hands a stored document on; returns the job id when it enqueued one. Must be idempotent."""

    def __call__(self, document: StoredDocument) -> str | None: ...


@dataclass(frozen=True)
class JobDispatcher:
    """Enqueue an ``intake.process`` job (payload ``{"document_id": ...}``) for a worker."""

    queue: Outbox

    def __call__(self, document: StoredDocument) -> str | None:
        job = self.queue.enqueue(INTAKE_PROCESS, {"document_id": document.id}, dedup_key=intake_dedup_key(document.id))
        return job.id


@dataclass(frozen=True)
class DirectDispatcher:
    """Run the intake pipeline in this process (no worker); a processed document returns its result."""

    deps: IntakeDeps

    def __call__(self, document: StoredDocument) -> str | None:
        process_document(document.id, self.deps)
        return None


class IngestOutcome(BaseModel):
    message_id: str
    document_id: str
    new: bool
    """False when the Message-ID was known: nothing was stored or dispatched again (unless a
    previous attempt died before dispatching)."""
    job_id: str | None = None
    status: MessageStatus


class PollReport(BaseModel):
    """What one pass over a mailbox or folder did."""

    fetched: int = 0
    new: int = 0
    known: int = 0
    errors: int = 0
    moved: int = 0
    outcomes: list[IngestOutcome] = Field(default_factory=list)

    def add(self, out: IngestOutcome) -> None:
        self.fetched += 1
        self.outcomes.append(out)
        self.new += out.new
        self.known += not out.new
        self.errors += out.status == "error"


class InboxLedger:
    """The ``inbox_messages`` rows: which Message-ID became which document, and how far it got."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def get(self, message_id: str) -> InboxMessageRow | None:
        with self.db.begin() as s:
            row = s.get(InboxMessageRow, message_id)
            if row is not None:
                s.expunge(row)
            return row

    def add(self, *, message_id: str, source: str, mailbox: str, locator: str, document_id: str) -> bool:
        """Record a newly stored message; False when another poller recorded it first."""
        now = self.clock.now()
        try:
            with self.db.begin() as s:
                s.add(InboxMessageRow(message_id=message_id, source=source, mailbox=mailbox[:500],
                                      locator=locator[:500], document_id=document_id, job_id=None, status="stored",
                                      error=None, times_seen=1, received_at=now, updated_at=now))  # fmt: skip
        except IntegrityError:
            return False
        return True

    def update(self, message_id: str, *, status: MessageStatus, job_id: str | None = None,
               error: str | None = None, seen: bool = False) -> None:  # fmt: skip
        with self.db.begin() as s:
            row = s.get(InboxMessageRow, message_id)
            if row is None:
                return
            row.status = status
            row.job_id = job_id or row.job_id
            row.error = error
            row.times_seen += 1 if seen else 0
            row.updated_at = self.clock.now()

    def count(self) -> int:
        from sqlalchemy import func, select

        with self.db.begin() as s:
            return int(s.scalar(select(func.count()).select_from(InboxMessageRow)) or 0)


class Ingestor:
    """Steps 1-3 for one message (the caller moves it afterwards): store, record, dispatch."""

    def __init__(self, store: DocumentStore, ledger: InboxLedger, dispatch: Dispatcher) -> None:
        self.store = store
        self.ledger = ledger
        self.dispatch = dispatch

    def ingest(self, raw: bytes, *, source: str, mailbox: str, locator: str) -> IngestOutcome:
        """Store and dispatch ``raw`` unless its Message-ID was handled before.

        Raises only when storing fails (then nothing is recorded and the message must stay where it
        is); a dispatch error is recorded on the message (status ``error``) and logged, because the
        document is safely stored and can be processed again by id.
        """
        message_id, sender = message_key(raw)
        known = self.ledger.get(message_id)
        if known is not None and known.status != "stored":
            self.ledger.update(message_id, status=known.status, seen=True)  # type: ignore[arg-type]
            return IngestOutcome(message_id=message_id, document_id=known.document_id, new=False,
                                 job_id=known.job_id, status=known.status)  # type: ignore[arg-type]  # fmt: skip
        if known is None:
            doc = self.store.receive(raw, channel=CHANNEL, media_type="message/rfc822", sender=sender,
                                     external_id=message_id, filename=f"{locator[-200:]}.eml")  # fmt: skip
            new = self.ledger.add(message_id=message_id, source=source, mailbox=mailbox, locator=locator,
                                  document_id=doc.id)  # fmt: skip
            if not new:  # recorded concurrently by someone else: theirs stands
                return self.ingest(raw, source=source, mailbox=mailbox, locator=locator)
        else:
            # Stored by an earlier attempt that died before dispatching: dispatch now (idempotent).
            new = False
            doc = self.store.get(known.document_id)
        return self._dispatch(message_id, doc, new=new)

    def _dispatch(self, message_id: str, doc: StoredDocument, *, new: bool) -> IngestOutcome:
        try:
            job_id = self.dispatch(doc)
        except Exception as exc:  # the document is stored; keep going and say why on the message
            log.exception("dispatching document %s of %s failed", doc.id, message_id)
            self.ledger.update(message_id, status="error", error=f"{type(exc).__name__}: {exc}"[:2000])
            return IngestOutcome(message_id=message_id, document_id=doc.id, new=new, status="error")
        self.ledger.update(message_id, status="dispatched", job_id=job_id)
        return IngestOutcome(message_id=message_id, document_id=doc.id, new=new, job_id=job_id, status="dispatched")

    def mark_moved(self, message_id: str) -> None:
        row = self.ledger.get(message_id)
        if row is not None and row.status == "dispatched":
            self.ledger.update(message_id, status="moved")


Hook = Callable[[str, IngestOutcome], None]
"""Called after each message is dispatched and before it is moved (tests use it to crash there)."""
