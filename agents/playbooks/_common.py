"""What every playbook shares: batch order reads, one twin view, and turning per-order decisions
into few grouped tool calls with reasons and alternatives.

Playbooks only read (through the adapters in the :class:`~tools.base.ToolEnv`, paged and
batched); every change they want is a :class:`~agents.plan.PlannedCall` the gateway judges.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain
from typing import Protocol

from agents.plan import Alternative, PlannedCall
from agents.sourcing import RouteDecision
from core.domain import Order
from tools.adapters.protocols import OrderFilter
from tools.base import MAX_BATCH, ToolEnv

PAGE = 50_000
MAX_PAGE = 250_000
MAX_REASON = 500


def load_orders(env: ToolEnv, flt: OrderFilter, *, page: int = PAGE) -> list[Order]:
    """Every order matching ``flt``, with lines, in pages (oldest first).

    The pages are as large as the count says the whole match is (up to :data:`MAX_PAGE`): each
    page's query finds and sorts every matching order before it skips to its offset, so 100k
    orders read in pages of 50k cost three such sorts (the third page empty), ~0.3 s each."""
    out: list[Order] = []
    offset = 0
    page = max(page, min(env.adapters.oms.count_orders(flt) + 1, MAX_PAGE))
    while True:
        batch = env.adapters.oms.list_orders(flt, limit=page, offset=offset, with_lines=True)
        out.extend(batch)
        if len(batch) < page:
            return out
        offset += page


def clip(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def merge_alternatives(decisions: Iterable[RouteDecision], keep: int = 3) -> list[Alternative]:
    """The alternatives a group of decisions weighed, most often seen first, with their mean score."""
    scores: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    co2e: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    # Each alternative's reason list is kept as it is and counted only for the alternatives
    # shown (a Counter update per alternative cost more than the rest of the merge together).
    reasons: dict[tuple[str, str | None], list[list[str]]] = defaultdict(list)
    for d in decisions:
        for alt in d.alternatives:
            key = (alt.node_id, alt.carrier_service_id)
            scores[key].append(alt.score)
            if alt.co2e_kg is not None:
                co2e[key].append(alt.co2e_kg)
            reasons[key].append(alt.reasons)
    ranked = sorted(scores, key=lambda k: (-len(scores[k]), sum(scores[k]) / len(scores[k]), k[0], k[1] or ""))
    out = []
    for key in ranked[:keep]:
        n = len(scores[key])
        top = [r for r, _ in Counter(chain.from_iterable(reasons[key])).most_common(4)]
        out.append(
            Alternative(
                node_id=key[0],
                carrier_service_id=key[1],
                score=round(sum(scores[key]) / n, 2),
                reasons=[*top, f"ALTERNATIVE_FOR_{n}_ORDERS"],
                co2e_kg=round(sum(co2e[key]) / len(co2e[key]), 3) if co2e[key] else None,
            )
        )
    return out


@dataclass
class Group:
    """Orders that go into one tool call (same tool, same target)."""

    decisions: list[RouteDecision] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [d.order_id for d in self.decisions]

    @property
    def on_time(self) -> int:
        return sum(d.meets_promise for d in self.decisions)

    @property
    def cost(self) -> Decimal:
        return sum((d.cost or Decimal(0) for d in self.decisions), Decimal(0))


def batched(ids: Sequence[str], size: int = MAX_BATCH) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def calls(
    tool: str, ids: Sequence[str], extra: dict[str, object], reason: str, alternatives: list[Alternative]
) -> list[PlannedCall]:
    """One call per batch of at most :data:`MAX_BATCH` orders."""
    return [
        PlannedCall(
            tool=tool,
            args={"order_ids": part, **extra, "reason": clip(reason)},
            reason=reason,
            alternatives=alternatives,
        )
        for part in batched(ids)
    ]


class Refused(Protocol):
    """What :func:`rejected_text` reads: node -> why it cannot serve (a :class:`RouteDecision`, or a
    greedy pick whose decision is not built)."""

    @property
    def rejected(self) -> dict[str, list[str]]: ...


def rejected_text(d: Refused, limit: int = 4) -> str:
    items = [f"{k}: {', '.join(v)}" for k, v in sorted(d.rejected.items())[:limit]]
    more = len(d.rejected) - limit
    return "; ".join(items) + (f"; and {more} more" if more > 0 else "")
