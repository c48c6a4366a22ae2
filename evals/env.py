"""Per-case databases and dependencies, shared by the runner and the suites it runs.

Each eval case gets its own SQLite copy of a network generated once per run (a template), and the
dependencies a case needs on it (:class:`CaseEnv`). Suites that bring their own master data
(:mod:`evals.external_po`) build on the same template; keeping this apart from :mod:`evals.runner`
lets the runner import the suites without the suites importing the runner.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

from core.clock import FixedClock
from core.db import Database, make_database, migrate
from core.netgen import NetworkSpec, generate_network
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters
from tools.base import ToolEnv
from tools.gateway import Guard, ToolGateway

__all__ = ["CaseEnv", "fresh_database", "prepare_template", "spec_key"]


def spec_key(spec: NetworkSpec) -> str:
    """The template name of ``spec``'s network."""
    return f"net-{spec.seed}-{spec.nodes}-{spec.skus}-{spec.customers}-{spec.orders}"


def prepare_template(workdir: Path, spec: NetworkSpec) -> Path:
    """A migrated SQLite file holding ``spec``'s network, generated once and copied per case."""
    path = workdir / "templates" / f"{spec_key(spec)}.sqlite"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
    db = make_database(url=f"sqlite:///{tmp}")
    try:
        migrate(db)
        generate_network(db, spec)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    finally:
        db.dispose()
    os.replace(tmp, path)
    return path


def fresh_database(workdir: Path, spec: NetworkSpec, tag: str) -> Database:
    """A private copy of the spec's template for one case."""
    template = prepare_template(workdir, spec)
    case_dir = workdir / "cases" / tag
    case_dir.mkdir(parents=True, exist_ok=True)
    target = case_dir / "net.sqlite"
    shutil.copyfile(template, target)
    return make_database(url=f"sqlite:///{target}")


@dataclass
class CaseEnv:
    """The dependencies of one case: adapters, guardrails, gateway on the case's database."""

    db: Database
    clock: FixedClock
    adapters: Adapters
    guard: Guard
    gateway: ToolGateway

    @classmethod
    def build(
        cls, db: Database, spec: NetworkSpec, policy_path: Path | None, *, now: datetime | None = None
    ) -> CaseEnv:
        """``now``: the twin's today (default: the spec's business date, 09:00 UTC); a captured run
        replays on the day it ran."""
        clock = FixedClock(now or datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))
        adapters = embedded_adapters(db, clock)
        guard = Guard(
            policy=PolicyEngine.from_path(policy_path),
            audit=AuditTrail(db, Redactor(key=b"eval-redaction-key-0123456789abcdef"), clock),
            approvals=ApprovalStore(db, clock),
            idempotency=IdempotencyStore(db, clock, wait_s=10),
        )
        return cls(db, clock, adapters, guard, ToolGateway(ToolEnv(adapters, clock), guard))
