"""The shapes an exception run passes between its steps: alert, triage, plan, report.

Kept small and typed (ids and decisions, not tables) because they are stored in LangGraph
checkpoints and shown to people. Text that came from outside (an alert's description, an
operator's goal) is carried as data in ``Alert.text`` / ``Triage.quoted_text`` and must only ever
enter a prompt quoted, never as instructions.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tools.base import ToolEnv


class ExceptionKind(StrEnum):
    NODE_CONGESTION = "node_congestion"
    NODE_CLOSURE = "node_closure"
    CARRIER_OUTAGE = "carrier_outage"
    STOCKOUT = "stockout"
    STOCKOUT_RISK = "stockout_risk"
    """A stock-out projected within the lead time (a forecast's warning), before any order fails."""
    PROMISE_RISK = "promise_risk"
    COMPLIANCE = "compliance"
    UNDO = "undo"
    """Put back what an earlier run changed, by its tools' compensating calls."""
    UNKNOWN = "unknown"


class Alert(BaseModel):
    """An anomaly alert as OrderOps receives it (the API maps Alertmanager/Datadog onto this)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=200)
    kind: ExceptionKind = ExceptionKind.UNKNOWN
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict, description="node, carrier, region, states, sku, ...")
    summary: str = Field(default="", max_length=500)
    text: str = Field(default="", max_length=20_000, description="Free text from the sender: data, not instructions.")
    fired_at: datetime | None = None

    def fingerprint(self) -> str:
        """Alerts about the same thing share a fingerprint (dedup, storm coalescing)."""
        keys = ",".join(f"{k}={self.labels[k]}" for k in sorted(self.labels))
        return f"{self.kind.value}|{keys}"


class Scope(BaseModel):
    """What the exception is about. Empty fields mean "not restricted by this"."""

    model_config = ConfigDict(frozen=True)

    node_ids: list[str] = Field(default_factory=list)
    carrier_ids: list[str] = Field(default_factory=list)
    states: list[str] = Field(default_factory=list, description="Two-letter US states (outage regions).")
    skus: list[str] = Field(default_factory=list)
    order_ids: list[str] = Field(default_factory=list)
    units: int | None = Field(default=None, ge=1, description="Units short (a projected stock-out's shortfall).")


class Triage(BaseModel):
    """What kind of exception this is and what it touches."""

    model_config = ConfigDict(frozen=True)

    kind: ExceptionKind
    scope: Scope
    summary: str
    source: Literal["alert", "goal"]
    quoted_text: str = ""
    """The alert text or the operator's goal, verbatim; only ever shown to a model quoted."""
    findings: list[str] = Field(default_factory=list)
    """Anything odd about the input (e.g. instruction-like text in an alert)."""


class Alternative(BaseModel):
    """A candidate the sourcing scorer ranked below the chosen one, with its score and why."""

    node_id: str
    carrier_service_id: str | None = None
    score: float
    reasons: list[str] = Field(default_factory=list)
    co2e_kg: float | None = None
    """Estimated kg CO2e of shipping this way (mean over the orders it stands for), so a reviewer
    sees what the chosen node saves or costs in carbon; ``None`` when not known."""


class PlannedCall(BaseModel):
    """One write-tool call the planner proposes, with its reason and the alternatives it weighed."""

    tool: str
    args: dict[str, Any]
    reason: str
    alternatives: list[Alternative] = Field(default_factory=list)


class Plan(BaseModel):
    kind: ExceptionKind
    summary: str
    steps: list[PlannedCall]
    not_planned: dict[str, str] = Field(default_factory=dict, description="order id -> why nothing was planned")
    planner: str = Field(description="'playbook:<name>' or 'llm:<model>'")
    prompt_version: str | None = None
    model: str | None = None
    fallback_reason: str | None = None
    """Why a model-backed planner handed over to its fallback (endpoint down, token budget spent,
    no model configured); ``None`` when the planner named in ``planner`` planned as intended."""
    tokens_used: int | None = None
    """Model tokens spent on this plan (input + output, all repair rounds); ``None``: no model ran."""
    model_calls: list[dict[str, Any]] = Field(default_factory=list)
    """One entry per model request: latency, tokens in/out, the prompt size estimated before
    sending and the per-call budget it was checked against (empty: no model was asked)."""
    reads: list[dict[str, Any]] = Field(default_factory=list)
    """The read tools the model called through the gateway before it proposed (tool, arguments,
    status, tokens of the reply that asked, gateway call id): what it looked at, so a run is
    explainable. Empty: the planner read nothing beyond the fact sheet."""
    optimizer: dict[str, Any] | None = None
    """How a batch plan was made: ``{"method": "highs" | "greedy", "objective", "bound", "gap",
    "solve_s", ...}`` (see :mod:`agents.optimize`); ``None`` where no batch optimiser applies."""


class Planner(Protocol):
    """Turns a triaged exception into a plan. Proposes only: the gateway checks and executes."""

    name: str

    def plan(self, triage: Triage, env: ToolEnv) -> Plan: ...


@runtime_checkable
class TokenBudgetedPlanner(Protocol):
    """A planner that spends model tokens and can stop at a budget the run hands it.

    The run graph calls :meth:`plan_within` instead of ``plan`` when its budget sets
    ``max_tokens``; over the budget the planner falls back (and says why) rather than failing.
    """

    name: str

    def plan_within(self, triage: Triage, env: ToolEnv, *, max_tokens: int | None) -> Plan: ...
