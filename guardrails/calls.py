"""What the tool layer tells the policy engine about a tool call before it runs.

A :class:`ProposedCall` is filled in by code (the tool layer), never by the model: the model
proposes arguments, the tool layer resolves them against the network (how many orders, their
value, the customers' tiers, the carriers' services...) and asks the policy engine. The engine
only reads what is in here, so a fact the tool layer did not resolve cannot be "assumed safe":
safety-relevant facts have no defaults and must be given explicitly, even when the answer is
``None`` or ``False``.

Nothing here does I/O. :func:`digest_arguments` is the one helper that turns the model's
arguments into the digest an approval binds to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.domain import CustomerTier, NodeStatus

__all__ = [
    "TIER_RANK",
    "Actor",
    "CallFacts",
    "CarrierUse",
    "ProposedCall",
    "RiskClass",
    "RunTotals",
    "digest_arguments",
]


class RiskClass(StrEnum):
    """How much harm a tool can do; declared by the tool, not chosen by the model."""

    READ = "read"
    WRITE_LOW = "write_low"
    WRITE_HIGH = "write_high"
    DESTRUCTIVE = "destructive"


# Higher rank = more valuable customer. "max tier touched" is the highest rank among the orders.
TIER_RANK: dict[CustomerTier, int] = {
    CustomerTier.STANDARD: 0,
    CustomerTier.SILVER: 1,
    CustomerTier.GOLD: 2,
    CustomerTier.PLATINUM: 3,
}

Count = Annotated[int, Field(ge=0, strict=True)]
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
NonNegMoney = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    # revalidate_instances: the engine re-validates whatever it is handed, so a call built with
    # ``model_construct`` (skipping validation) or mutated after the fact still fails closed.
    model_config = ConfigDict(extra="forbid", frozen=True, revalidate_instances="always")


class Actor(_Strict):
    """Who proposes the call: an agent run or a person, and the roles it acts with."""

    kind: Literal["agent", "user"]
    id: NonEmpty
    """Agent run id, or user id."""
    roles: frozenset[NonEmpty] = frozenset()
    on_behalf_of: NonEmpty | None = None
    """For an agent run: the person who started it (they may not approve its calls either)."""


class CarrierUse(_Strict):
    """One carrier service the call would ship with (new services for a carrier change)."""

    carrier_id: NonEmpty
    service_id: NonEmpty
    air: bool


class CallFacts(_Strict):
    """Facts about what a write would touch. Every field is required: "unknown" is not "safe"."""

    order_count: Count
    order_value: NonNegMoney
    """Total merchandise value of the orders touched, in USD."""
    cost_delta: Money
    """Change in fulfilment cost the call causes, in USD; negative = saving."""
    max_tier: CustomerTier | None
    """Highest customer tier among the orders; ``None`` only when no order is touched."""
    carriers: tuple[CarrierUse, ...]
    target_node_id: NonEmpty | None
    target_node_status: NodeStatus | None
    hazmat: bool
    """Any order touched holds a hazmat line."""
    hazmat_by_air: bool
    """Some single order both holds a hazmat line and would ship by air. Judged per order: a batch
    with one hazmat order by ground and another order by air is not a dangerous-goods violation,
    which ``hazmat`` and ``any_air`` taken together cannot tell."""
    cold_chain: bool
    ship_to_states: frozenset[str]
    """Two-letter states the orders ship to."""

    @field_validator("ship_to_states")
    @classmethod
    def _states_upper(cls, v: frozenset[str]) -> frozenset[str]:
        bad = sorted(s for s in v if not (len(s) == 2 and s.isalpha()))
        if bad:
            raise ValueError(f"ship_to_states must be two-letter codes, got {bad}")
        return frozenset(s.upper() for s in v)

    @property
    def any_air(self) -> bool:
        return any(c.air for c in self.carriers)


class RunTotals(_Strict):
    """Running totals of the run *before* this call (the engine adds the call itself)."""

    tool_calls: Count
    orders_touched: Count
    spend: NonNegMoney
    """Sum of positive cost deltas of the run's earlier calls, in USD."""


class ProposedCall(_Strict):
    """A tool call about to run, described for the policy engine."""

    tool: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]
    risk: RiskClass
    actor: Actor
    args_digest: Annotated[str, Field(min_length=8, max_length=128)]
    """Digest of the exact arguments (see :func:`digest_arguments`); approvals bind to it."""
    facts: CallFacts | None = None
    """Required for every write; may be omitted for reads."""
    run: RunTotals


def digest_arguments(arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the arguments as canonical JSON (sorted keys, no spaces).

    Canonical so that the same arguments in another order give the same digest, and an approval
    given for one set of arguments cannot be replayed for another.
    """
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
