"""The report of an exception run, typed: what the CLI, console, Slack and the eval suites read.

:func:`graphs.exception.build_report` writes the report as a plain dict, because it lives in the
LangGraph checkpoint and in the runs index (JSON both). Readers used to take that dict apart by
string key, each with its own ``.get(..., {})`` guesses, so a renamed key failed silently in one
of them. :class:`RunReport` is the one typed view of it: ``RunResult.typed_report`` (what
:mod:`services.runs` hands back) parses it once, and a reader asks for ``report.verification.passed``.

Unknown keys are ignored (a newer OrderOps may add some to checkpoints an older one reads); keys
this model knows are checked, so a report that changed shape fails where it is parsed, not three
modules later. ``as_dict()`` gives back the JSON the API and ``--json`` print.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApprovalSummary", "ReportDecision", "ReportPlan", "ReportRead", "ReportStep", "RunReport", "Verification"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ReportRead(_Part):
    """One read the planning model asked for through the gateway: which tool, with what arguments,
    what became of it (``read``, ``denied``, ``failed``) and the tokens of the reply that asked."""

    step: int
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: str
    tokens: int = 0
    call_id: str | None = None
    """The gateway's call id: the read's entry in the audit trail."""
    note: str = ""


class ReportPlan(_Part):
    """The plan the run followed: who planned it (and with what model), in one line."""

    kind: str | None = None
    summary: str | None = None
    planner: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    fallback_reason: str | None = None
    """Set when the model planner gave up and a deterministic planner planned instead."""
    tokens_used: int | None = None
    model_calls: list[dict[str, Any]] = Field(default_factory=list)
    reads: list[ReportRead] = Field(default_factory=list)
    """The read tools the model called before it proposed (the LLM planner's agent loop), in order."""
    optimizer: dict[str, Any] | None = None
    steps: int = 0


class ReportStep(_Part):
    """One step of the plan and what became of it; ``done`` and ``skipped`` count orders."""

    index: int
    tool: str
    reason: str | None = None
    status: str
    approval_id: str | None = None
    preview: dict[str, Any] | None = None
    reasons: list[str] = Field(default_factory=list)
    done: int = 0
    skipped: int = 0


class ReportDecision(_Part):
    """A person's decision the run saw: given with a resume, or read from the approval store."""

    model_config = ConfigDict(frozen=True, extra="allow")
    approval_id: str | None = None
    decision: str | None = None
    approver: str | None = None
    reason: str | None = None
    via: str | None = None


class ApprovalSummary(_Part):
    """How much of what was proposed the approvers let through ("approved 2 of 111; ...")."""

    proposed: int
    approved: int
    left_in_place: int
    summary: str


class Verification(_Part):
    """The network re-read after the run and checked against the plan (only reads)."""

    passed: bool
    reasons: list[str] = Field(default_factory=list)
    orders_checked: int = 0
    orders_failed: list[dict[str, Any]] = Field(default_factory=list)
    steps_executed: int = 0
    steps_not_executed: int = 0
    orders_proposed: int = 0
    orders_approved: int = 0
    left_by_approver: int = 0
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    stays: dict[str, str] = Field(default_factory=dict)


class RunReport(_Part):
    """What was planned, approved, executed and verified, with a per-order outcome."""

    fallback: str | None = None
    """A run the model did not plan says so first (never silently)."""
    run_id: str | None = None
    status: str
    stop: str | None = None
    """Why the run stopped early (a budget, a refused plan)."""
    source: str | None = None
    triage: dict[str, Any] | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    plan: ReportPlan = Field(default_factory=ReportPlan)
    tokens_used: int | None = None
    steps: list[ReportStep] = Field(default_factory=list)
    decisions: list[ReportDecision] = Field(default_factory=list)
    approval: ApprovalSummary | None = None
    stays: dict[str, str] = Field(default_factory=dict)
    verification: Verification | None = None
    ledger: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    orders: dict[str, str] = Field(default_factory=dict)
    """order id -> what the run did to it ("reroute_orders: done", "not planned (...)")."""

    @classmethod
    def of(cls, report: dict[str, Any]) -> RunReport:
        """The typed view of a report dict (from a checkpoint, the runs index or the API)."""
        return cls.model_validate(report)

    @property
    def triage_kind(self) -> str | None:
        kind = (self.triage or {}).get("kind")
        return str(kind) if kind is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, as ``--json`` and the API print it: for a parsed report,
        the keys it was read from (no defaults added)."""
        return self.model_dump(mode="json", exclude_unset=True)
