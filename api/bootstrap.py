"""The composition root: turn :class:`~core.settings.Settings` into the live dependencies.

Every entry point (CLI, API server, worker, tests) builds one :class:`AppContext` and passes it on;
nothing below this layer reads settings or the environment on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.clock import Clock, FixedClock, SystemClock
from core.db import Database, check_schema, make_database
from core.db.tables import MetaRow
from core.settings import Settings
from guardrails.anchor import AuditAnchor
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.known_values import RefreshingKnownValues
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
    """The live dependencies of one process.

    Two clocks, on purpose. ``clock`` is real time and stamps every record a person relies on: runs,
    approvals and their expiry, audit rows, jobs, leases and claims (a frozen clock there let expired
    approvals be approved and left a dead worker's run claimed forever). ``twin_clock`` is the digital
    twin's "today" for promise dates and lateness: the wall clock on a real installation, the seeded
    business date only where reproducibility is the point (the demo, evals, tests).
    """

    settings: Settings
    db: Database
    clock: Clock
    adapters: Adapters
    guard: Guard
    twin_clock: Clock

    @property
    def tool_env(self) -> ToolEnv:
        """What tools read and simulate against: the adapters on the twin's clock."""
        return ToolEnv(adapters=self.adapters, clock=self.twin_clock)

    @property
    def gateway(self) -> ToolGateway:
        return ToolGateway(env=self.tool_env, guard=self.guard)

    def close(self) -> None:
        self.db.dispose()


def network_meta(db: Database) -> dict[str, str]:
    with db.sessions() as session:
        return {row.key: row.value for row in session.scalars(select(MetaRow))}


def make_clock(settings: Settings, db: Database) -> Clock:
    """The twin's clock: the wall clock by default; the seeded network's business date (so a demo
    network behaves the same whenever it is run) only when settings ask for ``network``."""
    if settings.clock == "system":
        return SystemClock()
    day = network_meta(db).get("business_date")
    if day is None:
        return SystemClock()
    return FixedClock(datetime.combine(date.fromisoformat(day), time(9, 0), tzinfo=UTC))


def redaction_key(settings: Settings, db: Database) -> bytes:
    """The configured key, else a random per-installation key made once and kept in the database
    (encrypted, see :mod:`core.secrets`), so every machine writing the trail makes the same tokens;
    one still in ``<home>/redaction.key`` is taken over.

    Never a constant: tokens made with a published key could be reversed by hashing guesses."""
    from core.secrets import installation_secret

    if settings.redaction_key is not None:
        return settings.redaction_key.get_secret_value().encode()
    return installation_secret(settings, db, "redaction_key", legacy_file="redaction.key")


def make_guard(settings: Settings, db: Database, clock: Clock) -> Guard:
    rules = (
        RedactionRules.from_yaml(settings.redaction_rules_path)
        if settings.redaction_rules_path
        else RedactionRules.default()
    )
    return Guard(
        policy=PolicyEngine.from_path(settings.policy_path),
        audit=AuditTrail(
            db,
            # The customer records' names, e-mails and streets are redacted wherever they appear.
            Redactor(rules, key=redaction_key(settings, db), known=RefreshingKnownValues.from_database(db)),
            clock,
            anchor=AuditAnchor.from_settings(settings),
        ),
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
    twin_clock = make_clock(settings, db) if check else SystemClock()
    wall = SystemClock()
    return AppContext(
        settings=settings,
        db=db,
        clock=wall,
        adapters=embedded_adapters(db, twin_clock),
        guard=make_guard(settings, db, wall),
        twin_clock=twin_clock,
    )


DEMO_MARKER = "demo_installation"
"""Meta key that marks a database the demo seeded for itself (and may therefore replace or approve in)."""


def is_demo_database(db: Database) -> bool:
    """True only for a database ``orderops demo`` created in its own home: the one place where a
    built-in approver may act, because nothing there belongs to anyone."""
    return network_meta(db).get(DEMO_MARKER) == "1"


def mark_demo_database(db: Database) -> None:
    """Record that the demo seeded ``db`` for itself (after generation: a reset clears meta)."""
    with db.begin() as session:
        session.merge(MetaRow(key=DEMO_MARKER, value="1"))


def make_document_store(actx: AppContext) -> DocumentStore:
    """The intake document store every way in shares (built by :func:`services.wiring.document_store`)."""
    from services.wiring import document_store

    return document_store(actx)
