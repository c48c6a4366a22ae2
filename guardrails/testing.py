"""Builders for proposed calls in tests (ours and the tool layer's): a small, safe call by default,
any fact overridable. Shipped in the package, like a fake, so tests elsewhere need no copy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.domain import CustomerTier
from guardrails.calls import Actor, CallFacts, CarrierUse, ProposedCall, RiskClass, RunTotals

__all__ = ["GROUND", "make_call", "make_facts", "make_run"]

GROUND = CarrierUse(carrier_id="RDG", service_id="RDG-GROUND", air=False)


def make_facts(**overrides: Any) -> CallFacts:
    """One standard-tier order worth $100 by UPS Ground to CA, nothing special."""
    values: dict[str, Any] = {
        "order_count": 1,
        "order_value": Decimal("100"),
        "cost_delta": Decimal("0"),
        "max_tier": CustomerTier.STANDARD,
        "carriers": (GROUND,),
        "target_node_id": None,
        "target_node_status": None,
        "hazmat": False,
        "hazmat_by_air": False,
        "cold_chain": False,
        "ship_to_states": frozenset({"CA"}),
    }
    values.update(overrides)
    return CallFacts(**values)


def make_run(tool_calls: int = 0, orders_touched: int = 0, spend: Decimal | int = 0) -> RunTotals:
    return RunTotals(tool_calls=tool_calls, orders_touched=orders_touched, spend=Decimal(spend))


def make_call(
    tool: str = "reroute_orders",
    risk: RiskClass | str = RiskClass.WRITE_LOW,
    *,
    actor: Actor | None = None,
    facts: CallFacts | None = None,
    run: RunTotals | None = None,
    no_facts: bool = False,
    **fact_overrides: Any,
) -> ProposedCall:
    """A proposed call; facts default to :func:`make_facts` (with ``fact_overrides``) unless ``no_facts``."""
    if facts is None and not no_facts:
        facts = make_facts(**fact_overrides)
    return ProposedCall(
        tool=tool,
        risk=RiskClass(risk),
        actor=actor or Actor(kind="agent", id="run-1", on_behalf_of="alice"),
        args_digest="0" * 64,
        facts=facts,
        run=run or make_run(),
    )
