"""The composition root: turn :class:`~core.settings.Settings` into the live dependencies.

Every entry point (CLI, API server, worker, tests) builds one :class:`AppContext` and passes it on;
nothing below this layer reads settings or the environment on its own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.clock import Clock, FixedClock, SystemClock
from core.db import Database, check_schema, make_database
from core.db.tables import MetaRow
from core.settings import Settings
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import RedactionRules, Redactor
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters
from tools.base import ToolEnv
from tools.gateway import Guard, ToolGateway

if TYPE_CHECKING:
    from intake.documents import DocumentStore


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    adapters: Adapters
    guard: Guard

    @property
    def gateway(self) -> ToolGateway:
        return ToolGateway(env=ToolEnv(adapters=self.adapters, clock=self.clock), guard=self.guard)

    def close(self) -> None:
        self.db.dispose()


def network_meta(db: Database) -> dict[str, str]:
    with db.sessions() as session:
        return {row.key: row.value for row in session.scalars(select(MetaRow))}


def make_clock(settings: Settings, db: Database) -> Clock:
    """The twin's clock: the seeded network's business date (so a demo network behaves the same
    whenever it is run) unless settings ask for the wall clock."""
    if settings.clock == "system":
        return SystemClock()
    day = network_meta(db).get("business_date")
    if day is None:
        return SystemClock()
    return FixedClock(datetime.combine(date.fromisoformat(day), time(9, 0), tzinfo=UTC))


def redaction_key(settings: Settings) -> bytes:
    """The configured key, else a random per-installation key created once under ``home``.

    Never a constant: tokens made with a published key could be reversed by hashing guesses."""
    if settings.redaction_key is not None:
        return settings.redaction_key.get_secret_value().encode()
    path = Path(settings.home) / "redaction.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def make_guard(settings: Settings, db: Database, clock: Clock) -> Guard:
    rules = (
        RedactionRules.from_yaml(settings.redaction_rules_path)
        if settings.redaction_rules_path
        else RedactionRules.default()
    )
    return Guard(
        policy=PolicyEngine.from_path(settings.policy_path),
        audit=AuditTrail(db, Redactor(rules, key=redaction_key(settings)), clock),
        approvals=ApprovalStore(db, clock),
        idempotency=IdempotencyStore(db, clock),
        approval_ttl=timedelta(hours=settings.approval_ttl_hours),
    )


def open_context(settings: Settings, *, check: bool = True) -> AppContext:
    """Connect to the configured database and build the adapters and guardrails. With ``check``
    the schema must be exactly this code's (raises ConfigurationError / SchemaTooNew otherwise)."""
    db = make_database(settings)
    if check:
        try:
            check_schema(db)
        except Exception:
            db.dispose()
            raise
    clock = make_clock(settings, db) if check else SystemClock()
    return AppContext(
        settings=settings,
        db=db,
        clock=clock,
        adapters=embedded_adapters(db, clock),
        guard=make_guard(settings, db, clock),
    )


def make_document_store(actx: AppContext) -> DocumentStore:
    """The intake document store every way in shares (CLI, watched folder, inbox, console, workers):
    documents under ``<home>/documents``; free text read by the LLM extractor when a model is
    configured, else by the deterministic one."""
    from intake.documents import DocumentStore
    from intake.llm_extract import make_extractor

    return DocumentStore(
        actx.db, actx.clock, Path(actx.settings.home) / "documents", extractor=make_extractor(actx.settings)
    )
