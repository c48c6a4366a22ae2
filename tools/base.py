"""The contract every tool follows, and the simulation preview a write tool must produce.

A tool is a typed function the agents may call. Its pydantic ``Args`` model validates what a
model proposes (malformed arguments fail closed before anything runs), and its docstring is the
description the model reads — so it is written like a prompt: short and exact.

Write tools add three duties: ``simulate`` (the exact effect on the digital twin, for the approval
card and for policy facts), ``execute`` (the change itself, called by the gateway only, exactly
once per idempotency key) and, where one exists, a compensating call that undoes it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from core.clock import Clock
from guardrails.approvals import preview_hash
from guardrails.calls import CallFacts, RiskClass
from tools.adapters.protocols import Adapters

MAX_BATCH = 100_000


@dataclass(frozen=True)
class ToolEnv:
    """What a tool may use: the systems and the clock. Nothing else (no settings, no sessions)."""

    adapters: Adapters
    clock: Clock


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderSetArgs(ToolArgs):
    """Arguments of a write that acts on a set of orders."""

    order_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH, description="Orders to act on.")
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")


class PreviewItem(BaseModel):
    """The predicted effect on one order."""

    id: str
    ok: bool
    reason: str = ""
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    cost_delta: Decimal = Decimal(0)
    late_before: bool = False
    late_after: bool = False


class Preview(BaseModel):
    """The exact effect a write would have, computed on the twin without changing it."""

    tool: str
    summary: str
    items: list[PreviewItem]
    cost_delta: Decimal = Decimal(0)
    late_before: int = 0
    late_after: int = 0
    inventory_moved: dict[str, int] = Field(default_factory=dict, description="sku -> units moved")
    facts: CallFacts

    @property
    def affected(self) -> list[str]:
        return [i.id for i in self.items if i.ok]

    @property
    def skipped(self) -> dict[str, str]:
        return {i.id: i.reason for i in self.items if not i.ok}

    def digest(self) -> str:
        """Hash of everything a person approves on the card; any change in the network that moves
        a number here changes the digest."""
        return preview_hash(self)


class WriteResult(BaseModel):
    """What a write did: which orders changed, which were skipped and why."""

    tool: str
    done: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)


A = TypeVar("A", bound=ToolArgs)
R = TypeVar("R", bound=BaseModel)


class ReadTool(ABC, Generic[A, R]):
    name: ClassVar[str]
    risk: ClassVar[RiskClass] = RiskClass.READ
    args_model: ClassVar[type[ToolArgs]]

    @property
    def description(self) -> str:
        return (type(self).__doc__ or self.name).strip()

    @abstractmethod
    def run(self, env: ToolEnv, args: A) -> R: ...


@dataclass(frozen=True)
class Compensation:
    """The call that undoes a write, where one exists."""

    tool: str
    args: dict[str, Any]


class WriteTool(ABC, Generic[A]):
    name: ClassVar[str]
    risk: ClassVar[RiskClass]
    args_model: ClassVar[type[ToolArgs]]

    @property
    def description(self) -> str:
        return (type(self).__doc__ or self.name).strip()

    @abstractmethod
    def simulate(self, env: ToolEnv, args: A) -> Preview:
        """The effect ``execute`` would have now, without changing anything."""

    @abstractmethod
    def execute(self, env: ToolEnv, args: A) -> WriteResult:
        """Apply the change. Called only by the gateway, after policy and approval."""

    def items(self, args: A) -> list[str]:
        """The ids a subset approval chooses from (order ids for order-set tools)."""
        return list(getattr(args, "order_ids", []))

    def restrict(self, args: A, subset: Sequence[str]) -> A:
        """The same call narrowed to ``subset`` of its items (for partial approvals)."""
        keep = set(subset)
        return args.model_copy(update={"order_ids": [i for i in self.items(args) if i in keep]})

    def compensation(self, args: A, result: WriteResult) -> Compensation | None:
        """How to undo ``result``; None when the change cannot be undone (a cancel, a notification)."""
        return None

    def compensations(self, args: A, result: WriteResult) -> list[Compensation]:
        """Every call that together undoes ``result`` (a reroute from several nodes needs one per
        node); empty when it cannot be undone."""
        one = self.compensation(args, result)
        return [one] if one is not None else []
