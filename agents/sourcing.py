"""Sourcing decisions: which node (and carrier service) should fulfil an order, and why.

One scoring function prices every candidate in the same currency — US dollars, lower is better:
cost to serve (the node's pick/pack plus shipping by zone and weight, from
:meth:`tools.twin.TwinView.fulfil`, the arithmetic the write tools' previews and the carrier
adapter use), plus a price on lateness (days after the promise), on the risk of missing the
promise (from the ship date the node's backlog allows and the carrier's on-time record), on
distance, on congested nodes and on splitting an order. The weights are a
:class:`SourcingWeights` value: defaults here, overridable from a YAML file.

Every decision carries reason codes (``CHEAPEST``, ``MEETS_PROMISE``, ``LATE_BY_2D``,
``NO_STOCK``, ``NODE_CLOSED``, ``CARRIER_OUTAGE``, ``CONGESTED``...) and the alternatives it
beat, so a person reading an approval card sees the trade-off, not just the answer.

Batch-first: :func:`rank_nodes` decides thousands of orders from one :class:`TwinView` and one ATP
read, consuming ATP greedily (and adding the work to each target's backlog) so two orders are
never promised the same units. This module only reads; it never changes the network.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.plan import Alternative
from core.domain import RESERVING_STATUSES, NodeStatus, Order
from core.errors import ConfigurationError, NotFound, ValidationFailed
from core.trusted import trusted_model
from tools.base import ToolEnv
from tools.twin import Fulfilment, TwinView


class Reason(StrEnum):
    """Stable reason codes (``LATE_BY_<n>D`` is built by :func:`late_by`)."""

    CHEAPEST = "CHEAPEST"
    FASTEST = "FASTEST"
    NEAREST = "NEAREST"
    BEST_SCORE = "BEST_SCORE"
    BEST_PLAN = "BEST_PLAN"
    """Chosen by the batch optimiser: best for the batch as a whole (stock and queues shared)."""
    MEETS_PROMISE = "MEETS_PROMISE"
    CURRENT_NODE = "CURRENT_NODE"
    CONGESTED = "CONGESTED"
    SPLIT = "SPLIT"
    NO_STOCK = "NO_STOCK"
    NODE_CLOSED = "NODE_CLOSED"
    CARRIER_OUTAGE = "CARRIER_OUTAGE"
    CARRIER_EXCLUDED = "CARRIER_EXCLUDED"
    HAZMAT_AIR = "HAZMAT_AIR"
    NO_SERVICE = "NO_SERVICE"
    LOWER_CARBON = "LOWER_CARBON"
    """The option with the least estimated CO2e among those kept (when they differ)."""


def late_by(days: int) -> str:
    return f"LATE_BY_{days}D"


# Default emission intensities (kg CO2e per tonne-km, tank-to-wheel), from the GLEC Framework
# (Smart Freight Centre): road, truckload / dry van, 0.073 (GLEC default fuel efficiency and CO2e
# intensity factors, 2019); air freight over 1,500 km, freighter, 0.498 (GLEC Framework v3.0,
# 2023, Table 1, IATA RP1678), with GLEC's +95 km added to the great-circle distance for air.
# Road distance is the great-circle distance times ROAD_CIRCUITY, an assumption of this module.
CO2E_KG_PER_TKM_ROAD = 0.073
CO2E_KG_PER_TKM_AIR = 0.498
AIR_DISTANCE_ADD_KM = 95.0
ROAD_CIRCUITY = 1.2
KM_PER_MILE = 1.609344


def co2e_kg(*, air: bool, miles: float, weight_kg: float) -> float:
    """Estimated kg CO2e of one shipment: tonnes x km x the mode's default intensity. An estimate
    for comparing options, not an emissions report."""
    km = miles * KM_PER_MILE
    tonnes = max(0.0, weight_kg) / 1000.0
    if air:
        return tonnes * (km + AIR_DISTANCE_ADD_KM) * CO2E_KG_PER_TKM_AIR
    return tonnes * km * ROAD_CIRCUITY * CO2E_KG_PER_TKM_ROAD


class SourcingWeights(BaseModel):
    """Prices (USD) the scorer puts on what is not money, so every term adds up to one score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cost: float = Field(default=1.0, ge=0, description="Multiplier on the cost to serve (USD).")
    late_day: float = Field(default=40.0, ge=0, description="Per day the ETA falls after the promise.")
    miss_risk: float = Field(default=30.0, ge=0, description="Times the probability of missing the promise.")
    distance_per_1000mi: float = Field(default=1.0, ge=0, description="Per 1,000 miles from node to customer.")
    congested: float = Field(default=20.0, ge=0, description="Flat penalty for a node marked congested.")
    split: float = Field(default=12.0, ge=0, description="Per extra shipment when an order is split.")
    carbon_per_kg: float = Field(
        default=0.0, ge=0, description="Per kg CO2e (estimated); 0 leaves carbon out of the score."
    )
    alternatives: int = Field(default=3, ge=0, le=20, description="Alternatives kept with each decision.")
    batch_optimizer: bool = Field(
        default=True,
        description="Plan batches (congestion) with the HiGHS optimiser, keeping greedy when it is no better.",
    )
    optimizer_time_limit_s: float = Field(
        default=10.0, ge=0, description="Time limit of one optimiser solve; past it (or at 0) greedy plans."
    )

    @classmethod
    def from_yaml(cls, path: Path) -> SourcingWeights:
        """Weights from a YAML mapping (missing keys keep their defaults); a bad file is a
        :class:`ConfigurationError`, never a silent default."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read sourcing weights {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"sourcing weights {path} must be a mapping")
        try:
            return cls.model_validate(data.get("sourcing_weights", data))
        except ValidationError as exc:
            raise ConfigurationError(f"invalid sourcing weights in {path}: {exc}") from exc

    @classmethod
    def load(cls, path: Path | None) -> SourcingWeights:
        """The weights in ``path`` (e.g. ``Settings.sourcing_weights_path``), or the defaults."""
        return cls() if path is None else cls.from_yaml(path)


@dataclass(frozen=True)
class Candidate:
    """One scored way to fulfil an order: a node (and the carrier service it would use)."""

    node_id: str
    service_id: str | None
    feasible: bool
    score: float
    cost: Decimal = Decimal(0)
    eta: date | None = None
    late_days: int = 0
    p_on_time: float = 0.0
    distance_mi: float = 0.0
    reasons: tuple[str, ...] = ()
    co2e_kg: float = 0.0
    """Estimated kg CO2e of the shipment (see :func:`co2e_kg`)."""
    split_legs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """For a split: (node, skus) per leg."""

    @property
    def meets_promise(self) -> bool:
        return self.feasible and self.late_days == 0

    def alternative(self) -> Alternative:
        return Alternative(
            node_id=self.node_id,
            carrier_service_id=self.service_id,
            score=round(self.score, 2),
            reasons=list(self.reasons),
            co2e_kg=round(self.co2e_kg, 3),
        )


def feasible_candidate(
    node_id: str,
    service_id: str | None,
    score: float,
    cost: Decimal,
    eta: date,
    late_days: int,
    p_on_time: float,
    distance_mi: float,
    reasons: tuple[str, ...],
    co2e_kg: float,
    split_legs: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> Candidate:
    """A feasible :class:`Candidate`, equal to ``Candidate(node_id, service_id, True, ...)`` but
    built without the frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field: ~1.7
    against ~0.8 us); the batch paths build ~200k of them for a 100k-order plan. Only for values
    typed by our own code (score matrix arrays turned into Python values, a shifted candidate)."""
    c = _new_object(Candidate)
    _set_attr(c, "__dict__", {
        "node_id": node_id, "service_id": service_id, "feasible": True, "score": score, "cost": cost, "eta": eta,
        "late_days": late_days, "p_on_time": p_on_time, "distance_mi": distance_mi, "reasons": reasons,
        "co2e_kg": co2e_kg, "split_legs": split_legs,
    })  # fmt: skip
    return c


_new_object = object.__new__
_set_attr = object.__setattr__


class RouteDecision(BaseModel):
    """Where one order should ship from, with the reasons and the alternatives it beat."""

    order_id: str
    current_node_id: str | None
    current_service_id: str | None
    promised_date: date
    node_id: str | None = Field(description="Chosen node; None when no candidate can serve the order whole.")
    carrier_service_id: str | None = None
    score: float | None = Field(default=None, description="USD-equivalent; lower is better.")
    cost: Decimal | None = None
    eta: date | None = None
    meets_promise: bool = False
    p_on_time: float = 0.0
    co2e_kg: float | None = Field(default=None, description="Estimated kg CO2e of the chosen option.")
    reasons: list[str] = Field(default_factory=list)
    alternatives: list[Alternative] = Field(default_factory=list)
    rejected: dict[str, list[str]] = Field(default_factory=dict, description="node -> why it cannot serve")
    split_legs: dict[str, list[str]] = Field(default_factory=dict, description="node -> skus, for a split")

    @property
    def moves(self) -> bool:
        return self.node_id is not None and not self.split_legs and self.node_id != self.current_node_id

    @property
    def is_split(self) -> bool:
        return bool(self.split_legs)


def p_on_time(on_time_rate: float, slack_days: int) -> float:
    """Chance the parcel arrives by the promise: none when the ETA is already late, the carrier's
    on-time rate with no slack, and each spare day absorbs another slip."""
    if slack_days < 0:
        return 0.0
    miss = max(0.0, min(1.0, 1.0 - on_time_rate))
    return 1.0 - miss ** (slack_days + 1)


def order_needs(order: Order) -> dict[str, int]:
    need: dict[str, int] = defaultdict(int)
    for ln in order.lines:
        need[ln.sku] += ln.quantity
    return dict(need)


@dataclass
class Sourcer:
    """Scores candidates for many orders from one twin view and one ATP snapshot.

    ``assign`` records a decision: the units leave the running ATP and the order joins the target
    node's queue (pushing its ship date out once a day's capacity fills), so later orders in the
    same batch see what earlier ones took.
    """

    view: TwinView
    atp: dict[str, dict[str, int]]
    weights: SourcingWeights = field(default_factory=SourcingWeights)
    added: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        self.atp = {sku: dict(by_node) for sku, by_node in self.atp.items()}

    # --- stock ------------------------------------------------------------------------------

    def has_stock(self, order: Order, node_id: str) -> bool:
        """Whether ``node_id`` can serve every line; an order's own reservation counts at its node."""
        if node_id == order.node_id and order.status in RESERVING_STATUSES:
            return True
        return all(self.atp.get(sku, {}).get(node_id, 0) >= qty for sku, qty in order_needs(order).items())

    def assign(self, order: Order, node_id: str) -> None:
        if node_id == order.node_id:
            return
        for sku, qty in order_needs(order).items():
            by_node = self.atp.setdefault(sku, {})
            by_node[node_id] = by_node.get(node_id, 0) - qty
        self.added[node_id] += 1

    # --- scoring ----------------------------------------------------------------------------

    def _shift(self, node_id: str) -> int:
        """Days the work assigned in this batch adds to the node's ship date."""
        added = self.added.get(node_id, 0)
        node = self.view.nodes[node_id]
        if not added or node.daily_capacity <= 0:
            return 0
        cap = node.daily_capacity
        return math.ceil((node.backlog + added) / cap) - math.ceil(node.backlog / cap)

    def score(
        self,
        order: Order,
        node_id: str,
        *,
        service_id: str | None = None,
        exclude_carriers: Iterable[str] = (),
        check_stock: bool = True,
    ) -> Candidate:
        """Score shipping ``order`` from ``node_id`` (with ``service_id``, or as the twin would
        choose: its own service if available, else the cheapest of its level)."""
        return self._score(
            order, node_id, service_id, set(exclude_carriers), self._blocked(order, node_id, check_stock)
        )

    def _score(
        self, order: Order, node_id: str, service_id: str | None, excluded: set[str], node_blocked: list[str]
    ) -> Candidate:
        """:meth:`score` with the node's own refusals (:meth:`_blocked`) already known: they are the
        same for every service of the node."""
        view = self.view
        blocked = node_blocked + self._service_blocked(order, service_id, excluded)
        if blocked:
            return Candidate(node_id, service_id, False, math.inf, reasons=tuple(blocked))
        f = view.fulfil(order, node_id, service_id=service_id)
        if not f.available or f.quote is None:
            code = Reason.CARRIER_OUTAGE if "outage" in f.reason else Reason.NO_SERVICE
            return Candidate(node_id, service_id, False, math.inf, reasons=(code,))
        if service_id is None and f.quote.carrier_id in excluded:
            return Candidate(node_id, f.quote.carrier_service_id, False, math.inf, reasons=(Reason.CARRIER_EXCLUDED,))
        return self._priced(order, node_id, f)

    def _blocked(self, order: Order, node_id: str, check_stock: bool) -> list[str]:
        """Why the node itself cannot serve the order (closed, no stock), checked before any quote
        so a refused pair costs no pricing. An unknown node is a :class:`NotFound`."""
        node = self.view.nodes.get(node_id)
        if node is None:
            raise NotFound("node", node_id)
        blocked: list[str] = []
        if node.status is NodeStatus.CLOSED:
            blocked.append(Reason.NODE_CLOSED)
        if check_stock and not self.has_stock(order, node_id):
            blocked.append(Reason.NO_STOCK)
        return blocked

    def _service_blocked(self, order: Order, service_id: str | None, excluded: set[str]) -> list[str]:
        """Why a service the caller named cannot carry the order (its carrier excluded, hazmat by
        air); none when the twin chooses the service. An unknown service is a :class:`NotFound`."""
        if service_id is None:
            return []
        svc = self.view.services.get(service_id)
        if svc is None:
            raise NotFound("carrier service", service_id)
        blocked: list[str] = []
        if svc.carrier_id in excluded:
            blocked.append(Reason.CARRIER_EXCLUDED)
        if svc.air and self.view.hazmat(order):
            blocked.append(Reason.HAZMAT_AIR)
        return blocked

    def _priced(self, order: Order, node_id: str, f: Fulfilment, extra: float = 0.0) -> Candidate:
        view, w = self.view, self.weights
        q = f.quote
        eta = f.eta
        assert q is not None
        assert eta is not None
        node = view.nodes[node_id]
        shift = self._shift(node_id)
        if shift:
            eta += timedelta(days=shift)
        cost = f.cost  # a sum, computed on each access
        slack = (order.promised_date - eta).days
        late = max(0, -slack)
        p = p_on_time(view.carriers[q.carrier_id].on_time_rate, slack)
        miles = view.miles(node, view.addresses[order.ship_to_id])
        reasons: list[str] = [Reason.MEETS_PROMISE if late == 0 else late_by(late)]
        penalty = extra
        if node.status is NodeStatus.CONGESTED:
            reasons.append(Reason.CONGESTED)
            penalty += w.congested
        if node_id == order.node_id:
            reasons.append(Reason.CURRENT_NODE)
        co2 = co2e_kg(air=view.services[q.carrier_service_id].air, miles=miles, weight_kg=order.weight_kg)
        score = w.cost * float(cost) + w.late_day * late + w.miss_risk * (1 - p)
        score += w.distance_per_1000mi * miles / 1000 + w.carbon_per_kg * co2
        return feasible_candidate(
            node_id, q.carrier_service_id, score + penalty, cost, eta, late, p, miles, tuple(reasons), co2
        )

    def candidates(
        self,
        order: Order,
        node_ids: Sequence[str],
        *,
        per_service: bool = False,
        exclude_carriers: Iterable[str] = (),
    ) -> list[Candidate]:
        """Every (node, service) option for ``order`` among ``node_ids``, scored."""
        out: list[Candidate] = []
        if not per_service:
            excluded = tuple(exclude_carriers)
            return [self.score(order, node_id, exclude_carriers=excluded) for node_id in node_ids]
        # Per service: the level's services and the set of excluded carriers are found once per
        # order, the node's own refusals (closed, no stock) once per node.
        services = sorted(s.id for s in self.view.services.values() if s.level is order.service_level)
        excluded_set = set(exclude_carriers)
        for node_id in node_ids:
            if not services:
                out.append(Candidate(node_id, None, False, math.inf, reasons=(Reason.NO_SERVICE,)))
                continue
            node_blocked = self._blocked(order, node_id, True)
            out.extend(self._score(order, node_id, s, excluded_set, node_blocked) for s in services)
        return out

    def split(self, order: Order, node_ids: Sequence[str]) -> Candidate | None:
        """The best two-node split of an order no single node can serve: the node that covers the
        most lines, the rest from the best node that covers all of them."""
        if len(order.lines) < 2:
            return None
        need = order_needs(order)
        open_nodes = [n for n in node_ids if self.view.nodes[n].status is not NodeStatus.CLOSED]

        def covers(node_id: str) -> list[str]:
            return [s for s, q in need.items() if self.atp.get(s, {}).get(node_id, 0) >= q]

        ranked = sorted(open_nodes, key=lambda n: (-len(covers(n)), n))
        best: Candidate | None = None
        for first in ranked[:3]:
            first_skus = covers(first)
            rest = [s for s in need if s not in first_skus]
            if not first_skus or not rest:
                continue
            for second in open_nodes:
                if second == first or any(self.atp.get(s, {}).get(second, 0) < need[s] for s in rest):
                    continue
                legs = ((first, tuple(first_skus)), (second, tuple(rest)))
                cand = self._split_candidate(order, legs)
                if cand is not None and (best is None or cand.score < best.score):
                    best = cand
        return best

    def _split_candidate(self, order: Order, legs: tuple[tuple[str, tuple[str, ...]], ...]) -> Candidate | None:
        total = 0.0
        co2 = 0.0
        cost = Decimal(0)
        eta: date | None = None
        late = 0
        p = 1.0
        for node_id, skus in legs:
            lines = tuple(ln for ln in order.lines if ln.sku in skus)
            weight = sum(self.view.products[ln.sku].weight_kg * ln.quantity for ln in lines)
            part = order.model_copy(update={"lines": lines, "weight_kg": round(weight, 3)})
            cand = self.score(part, node_id, check_stock=False)
            if not cand.feasible or cand.eta is None:
                return None
            total += cand.score
            co2 += cand.co2e_kg
            cost += cand.cost
            eta = cand.eta if eta is None else max(eta, cand.eta)
            late = max(late, cand.late_days)
            p *= cand.p_on_time
        label = "+".join(n for n, _ in legs)
        reasons = (Reason.SPLIT, Reason.MEETS_PROMISE if late == 0 else late_by(late))
        return Candidate(
            node_id=label,
            service_id=None,
            feasible=True,
            score=total + self.weights.split * (len(legs) - 1),
            cost=cost,
            eta=eta,
            late_days=late,
            p_on_time=p,
            reasons=reasons,
            co2e_kg=co2,
            split_legs=legs,
        )

    def rank(
        self,
        order: Order,
        node_ids: Sequence[str],
        *,
        per_service: bool = False,
        exclude_carriers: Iterable[str] = (),
        allow_split: bool = False,
    ) -> RouteDecision:
        """Decide ``order`` among ``node_ids`` without consuming anything (see :meth:`assign`)."""
        cands = self.candidates(order, node_ids, per_service=per_service, exclude_carriers=exclude_carriers)
        return self.decide(order, cands, allow_split=allow_split, node_ids=node_ids)

    def decide(
        self,
        order: Order,
        cands: list[Candidate],
        *,
        allow_split: bool = False,
        node_ids: Sequence[str] = (),
        chosen: Candidate | None = None,
    ) -> RouteDecision:
        """The decision among ``cands``: the best-scoring one, or ``chosen`` when a batch optimiser
        picked it (reason ``BEST_PLAN``; the others stay as alternatives, best first)."""
        feasible = sorted((c for c in cands if c.feasible), key=lambda c: (c.score, c.node_id, c.service_id or ""))
        if chosen is not None:
            feasible = [chosen, *(c for c in feasible if c.node_id != chosen.node_id)]
        rejected = {
            (c.node_id if c.service_id is None else f"{c.node_id}/{c.service_id}"): _plain(c.reasons)
            for c in cands
            if not c.feasible
        }
        if not feasible and allow_split:
            sp = self.split(order, node_ids)
            if sp is not None:
                feasible = [sp]
        if not feasible:
            reasons: list[str] = sorted({r for c in cands for r in c.reasons}) or [Reason.NO_SERVICE]
            # Built once (no validate-then-assign); the fields set are the ones given, as before.
            return RouteDecision.model_construct(
                order_id=order.id,
                current_node_id=order.node_id,
                current_service_id=order.carrier_service_id,
                promised_date=order.promised_date,
                node_id=None,
                reasons=reasons,
                rejected=rejected,
            )
        keep = feasible[: 1 + self.weights.alternatives]
        tags = _tags(feasible, keep)
        best = keep[0]
        return trusted_decision(
            {
                "order_id": order.id,
                "current_node_id": order.node_id,
                "current_service_id": order.carrier_service_id,
                "promised_date": order.promised_date,
                "node_id": None if best.split_legs else best.node_id,
                "carrier_service_id": best.service_id,
                "score": round(best.score, 2),
                "cost": best.cost,
                "eta": best.eta,
                "meets_promise": best.meets_promise,
                "p_on_time": round(best.p_on_time, 4),
                "co2e_kg": round(best.co2e_kg, 3),
                "reasons": [Reason.BEST_PLAN if chosen is not None else Reason.BEST_SCORE, *best.reasons, *tags[0]],
                "alternatives": [_alternative(c, extra) for c, extra in zip(keep[1:], tags[1:], strict=True)],
                "rejected": rejected,
                "split_legs": {n: list(s) for n, s in best.split_legs},
            }
        )


_DECISION_FIELDS = frozenset(RouteDecision.model_fields)


def trusted_decision(values: dict[str, object]) -> RouteDecision:
    """A :class:`RouteDecision` from every field's value, built as ``model_construct`` builds it
    but without its per-field Python loop (~4.7 us against ~0.9 us; a 100k-order plan builds ~45k
    decisions). Every value comes from an already validated Order or from this module's own
    Candidates, typed by our code, so validating them again (as the old validate-then-copy build
    did) only cost time. ``values`` must hold every field in declaration order (the dump's order);
    tests/agents/test_sourcing.py checks the result against ``model_construct`` and validation."""
    return trusted_model(RouteDecision, values, _DECISION_FIELDS)


def _plain(reasons: Iterable[str]) -> list[str]:
    """Reason codes as plain ``str``, as pydantic's validation of ``list[str]`` leaves them (a
    :class:`Reason` member becomes its value), for a decision built without validation."""
    return [str(r) for r in reasons]


def _alternative(c: Candidate, extra: tuple[str, ...]) -> Alternative:
    """``c.alternative()`` with the tags ``extra`` added to its reasons, validated (pydantic's
    build of this small model is faster than ``model_construct``'s, ~2.0 against ~2.4 us)."""
    return Alternative(
        node_id=c.node_id,
        carrier_service_id=c.service_id,
        score=round(c.score, 2),
        reasons=[*c.reasons, *extra],
        co2e_kg=round(c.co2e_kg, 3),
    )


def _tags(ranked: list[Candidate], keep: list[Candidate]) -> list[tuple[str, ...]]:
    """The CHEAPEST / FASTEST / NEAREST / LOWER_CARBON tags each of ``keep`` earns among all of
    ``ranked`` (computed once per kept candidate; no candidate is rebuilt to carry them)."""
    cheapest, fastest, nearest, greenest, carbon_differs = _extremes(ranked)
    out: list[tuple[str, ...]] = []
    for c in keep:
        extra: list[str] = []
        if c.cost == cheapest:
            extra.append(Reason.CHEAPEST)
        if c.eta == fastest:
            extra.append(Reason.FASTEST)
        if not c.split_legs and c.distance_mi == nearest:
            extra.append(Reason.NEAREST)
        if carbon_differs and c.co2e_kg <= greenest + 1e-9:
            extra.append(Reason.LOWER_CARBON)
        out.append(tuple(extra))
    return out


def _extremes(ranked: list[Candidate]) -> tuple[Decimal, date | None, float | None, float, bool]:
    """In one pass (three ``min`` with a key each cost ~3x as much): the lowest cost, the earliest
    ETA (``None`` when none has one: those without one then count as fastest, as before), the
    shortest distance of a single-node candidate (``None``: there is none), the least CO2e and
    whether the CO2e differ at all."""
    first = ranked[0]
    cheapest, fastest, nearest = first.cost, first.eta, None if first.split_legs else first.distance_mi
    greenest = brownest = first.co2e_kg
    for c in ranked:
        if c.cost < cheapest:
            cheapest = c.cost
        if c.eta is not None and (fastest is None or c.eta < fastest):
            fastest = c.eta
        if not c.split_legs and (nearest is None or c.distance_mi < nearest):
            nearest = c.distance_mi
        greenest, brownest = min(greenest, c.co2e_kg), max(brownest, c.co2e_kg)
    return cheapest, fastest, nearest, greenest, greenest < brownest - 1e-9


def read_atp(env: ToolEnv, orders: Iterable[Order], node_ids: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """One ATP read for every SKU these orders need (chunked under the WMS read's limits)."""
    skus = sorted({ln.sku for o in orders for ln in o.lines})
    atp: dict[str, dict[str, int]] = {}
    for start in range(0, len(skus), 1000):
        atp.update(env.adapters.wms.atp(skus[start : start + 1000], node_ids))
    return atp


def rank_nodes(
    orders: Sequence[Order],
    view: TwinView,
    candidates: Sequence[str],
    atp: Mapping[str, Mapping[str, int]],
    weights: SourcingWeights | None = None,
    *,
    per_service: bool = False,
    exclude_carriers: Iterable[str] = (),
) -> list[RouteDecision]:
    """Decide every order among the ``candidates`` nodes, in the order given (put the orders that
    matter most first), consuming ATP and capacity greedily as each is assigned.

    ``view`` must be prepared for ``orders``; ``atp`` is ``{sku: {node: units}}`` from one read.
    An order whose best option is its current node stays (and consumes nothing).
    """
    src = Sourcer(view, {k: dict(v) for k, v in atp.items()}, weights or SourcingWeights())
    excluded = tuple(exclude_carriers)
    out: list[RouteDecision] = []
    for order in orders:
        d = src.rank(order, candidates, per_service=per_service, exclude_carriers=excluded)
        if d.node_id is not None:
            src.assign(order, d.node_id)
        out.append(d)
    return out


def decide_route(
    order_id: str, env: ToolEnv, weights: SourcingWeights | None = None, *, candidates: Sequence[str] | None = None
) -> RouteDecision:
    """The best node and carrier service for one order right now, with reasons and alternatives
    (every service of the order's level at every node; a two-node split when no node can serve it
    whole). Served by the API as ``POST /v1/decide/route``. Reads only."""
    if not order_id:
        raise ValidationFailed("order_id must not be empty")
    order = env.adapters.oms.get_order(order_id)
    view = TwinView.load(env.adapters, env.clock)
    view.prepare([order])
    node_ids = list(candidates) if candidates is not None else sorted(view.nodes)
    return decide_order(order, view, read_atp(env, [order], node_ids), weights, candidates=node_ids)


def decide_order(
    order: Order,
    view: TwinView,
    atp: Mapping[str, Mapping[str, int]],
    weights: SourcingWeights | None = None,
    *,
    candidates: Sequence[str] | None = None,
    exclude_carriers: Iterable[str] = (),
    allow_split: bool = True,
) -> RouteDecision:
    """:func:`decide_route` on a view and an ATP read the caller already holds (the decision API
    keeps one view in memory; ``view`` must be prepared for ``order``). Reads only; the view's
    reference data is not changed (only its caches fill)."""
    node_ids = list(candidates) if candidates is not None else sorted(view.nodes)
    for n in node_ids:
        if n not in view.nodes:
            raise NotFound("node", n)
    if not order.lines:
        raise ValidationFailed(f"order {order.id} has no lines to source")
    # Sourcer copies both levels itself (__post_init__): no second copy here.
    src = Sourcer(view, cast("dict[str, dict[str, int]]", atp), weights or SourcingWeights())
    return src.rank(order, node_ids, per_service=True, allow_split=allow_split, exclude_carriers=exclude_carriers)
