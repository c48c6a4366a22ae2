"""The congestion and closure playbooks' greedy ranking ("latest first, best node each"), read from
one score matrix instead of quoting every (order, node) pair.

:meth:`agents.sourcing.Sourcer.rank` quotes every target for every order (a carrier quote per
service, Decimal money, a great-circle distance: ~40 us a pair), and the greedy congestion plan
spent ~90% of its time there. What a pair costs, which service it ships with, its ETA before any
queue shift, its distance and CO2e do not change while the batch is planned; only the stock left
and each target's queue do. So :class:`MatrixRanker` takes those fixed numbers from one
:func:`agents.score_matrix.score_matrix` and redoes, per order, only the stock check (against the
:class:`~agents.sourcing.Sourcer`'s running ATP) and the score with the target's current queue
shift, in the scorer's own Python arithmetic (numpy's ``power`` differs from Python's in the last
bit for ~5% of inputs, and a plan must not depend on which one priced it): the decisions are the
scalar greedy's, bit for bit. A :class:`~agents.sourcing.RouteDecision`, with its reasons and
alternatives, is built only for the moves a plan keeps (when the optimiser's plan wins, greedy's
are never needed).

Orders whose pairs the matrix cannot price the way the scorer would (a node closed, no service, a
carrier down) are ranked by the scalar scorer, on the same running state. It only reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from agents.score_matrix import ScoreMatrix
from agents.sourcing import Candidate, Reason, RouteDecision, Sourcer, late_by, order_needs, p_on_time
from core.domain import RESERVING_STATUSES, Order


class Pick(Protocol):
    """One order's greedy choice: where it would go (``None``: nowhere), whether it meets its
    promise there and its ETA; the full decision when a plan shows it."""

    @property
    def node_id(self) -> str | None: ...

    @property
    def meets_promise(self) -> bool: ...

    @property
    def eta(self) -> date | None: ...

    def decision(self) -> RouteDecision: ...


@dataclass(frozen=True)
class _Decided:
    """A pick the scalar scorer made: the decision is already there."""

    made: RouteDecision

    @property
    def node_id(self) -> str | None:
        return self.made.node_id

    @property
    def meets_promise(self) -> bool:
        return self.made.meets_promise

    @property
    def eta(self) -> date | None:
        return self.made.eta

    def decision(self) -> RouteDecision:
        return self.made


class ScalarRanker:
    """Ranks with the scalar scorer (the reference, and the path when the matrix cannot be built)."""

    def __init__(self, src: Sourcer, targets: list[str]) -> None:
        self.src = src
        self.targets = targets

    def stay(self, order: Order, node_id: str) -> Candidate:
        return self.src.score(order, node_id, check_stock=False)

    def rank(self, order: Order) -> Pick:
        return _Decided(self.src.rank(order, self.targets))

    def assign(self, order: Order, node_id: str) -> None:
        self.src.assign(order, node_id)


@dataclass(frozen=True)
class _Lazy:
    """A pick made from the matrix: the decision is built from the options it saw, when asked."""

    ranker: MatrixRanker
    order: Order
    row: int
    options: tuple[tuple[int, int], ...]
    """(target column, queue shift in days) of each target with stock for every line, as it was."""
    best: int
    """Index into ``options`` of the chosen one; -1: none."""
    late_days: int
    eta_ordinal: int

    @property
    def node_id(self) -> str | None:
        return None if self.best < 0 else self.ranker.targets[self.options[self.best][0]]

    @property
    def meets_promise(self) -> bool:
        return self.best >= 0 and self.late_days == 0

    @property
    def eta(self) -> date | None:
        return None if self.best < 0 else date.fromordinal(self.eta_ordinal)

    def decision(self) -> RouteDecision:
        return self.ranker.decision(self)


class MatrixRanker:
    """Ranks each order among ``targets`` from the score matrix's fixed numbers, with the running
    stock and queue shifts of ``src`` (which records every move through :meth:`assign`).

    ``matrix`` has one column per target, then any more columns (the source nodes, for each
    order's score where it is); its rows are the batch's orders."""

    def __init__(self, src: Sourcer, matrix: ScoreMatrix, targets: list[str]) -> None:
        self.src = src
        self.matrix = matrix
        self.targets = targets
        self.columns = {t: j for j, t in enumerate(matrix.targets)}
        self.row = {o.id: i for i, o in enumerate(matrix.orders)}
        m = matrix
        # Plain lists: the loop reads single pairs, where list indexing is far cheaper than numpy's.
        assert m.serviceable is not None
        self.serviceable = m.serviceable.tolist()
        self.cents = m.cost_cents.tolist()
        self.eta0 = m.eta.tolist()
        self.rate = m.on_time_rate.tolist()
        self.miles = m.miles.tolist()
        self.co2e = m.co2e.tolist()
        self.service = m.service.tolist()
        self.congested = m.congested.tolist()
        self.promised = [o.promised_date.toordinal() for o in m.orders]
        self.shifts = [src._shift(t) for t in targets]

    # --- pricing, as Sourcer._priced does it ------------------------------------------------

    def _score(self, i: int, j: int, shift: int) -> tuple[float, int, int, float]:
        """The scorer's score of order ``i`` at column ``j`` shipped ``shift`` days later, with its
        late days, ETA (an ordinal) and chance of arriving on time: :meth:`Sourcer._priced`'s
        arithmetic, term for term."""
        w = self.src.weights
        eta = self.eta0[i][j] + shift
        slack = self.promised[i] - eta
        late = max(0, -slack)
        p = p_on_time(self.rate[i][j], slack)
        score = w.cost * (self.cents[i][j] / 100.0) + w.late_day * late + w.miss_risk * (1 - p)
        score += w.distance_per_1000mi * self.miles[i][j] / 1000 + w.carbon_per_kg * self.co2e[i][j]
        penalty = 0.0
        if self.congested[j]:
            penalty += w.congested
        return score + penalty, late, eta, p

    def candidate(self, i: int, j: int, shift: int) -> Candidate:
        """The scorer's :class:`Candidate` for order ``i`` at column ``j`` (a serviceable pair)."""
        score, late, eta, p = self._score(i, j, shift)
        node_id = self.matrix.targets[j]
        reasons: list[str] = [Reason.MEETS_PROMISE if late == 0 else late_by(late)]
        if self.congested[j]:
            reasons.append(Reason.CONGESTED)
        if node_id == self.matrix.orders[i].node_id:
            reasons.append(Reason.CURRENT_NODE)
        return Candidate(
            node_id, self.matrix.service_ids[self.service[i][j]], True, score,
            Decimal(self.cents[i][j]).scaleb(-2), date.fromordinal(eta), late, p, self.miles[i][j], tuple(reasons),
            self.co2e[i][j],
        )  # fmt: skip

    # --- the ranker's protocol ---------------------------------------------------------------

    def stay(self, order: Order, node_id: str) -> Candidate:
        """The order's score where it is (stock not checked), as ``src.score(..., check_stock=False)``."""
        i, j = self.row.get(order.id), self.columns.get(node_id)
        if i is None or j is None or not self.serviceable[i][j]:
            return self.src.score(order, node_id, check_stock=False)
        return self.candidate(i, j, self.src._shift(node_id))

    def rank(self, order: Order) -> Pick:
        """The best target for ``order`` now (lowest score, then node, then service), as
        ``src.rank(order, targets)`` would find it."""
        i = self.row.get(order.id)
        if i is None or not all(self.serviceable[i][: len(self.targets)]):
            return _Decided(self.src.rank(order, self.targets))
        atp = self.src.atp
        needs = order_needs(order).items()
        # An order's own reservation counts at its own node (as Sourcer.has_stock has it).
        own = order.node_id if order.status in RESERVING_STATUSES else None
        options: list[tuple[int, int]] = []
        best, key, late_best, eta_best = -1, (math.inf, "", ""), 0, 0
        for j, t in enumerate(self.targets):
            if t != own and not all(atp.get(sku, {}).get(t, 0) >= qty for sku, qty in needs):
                continue
            shift = self.shifts[j]
            score, late, eta, _ = self._score(i, j, shift)
            options.append((j, shift))
            k = (score, t, self.matrix.service_ids[self.service[i][j]])
            if k < key:
                best, key, late_best, eta_best = len(options) - 1, k, late, eta
        return _Lazy(self, order, i, tuple(options), best, late_best, eta_best)

    def assign(self, order: Order, node_id: str) -> None:
        self.src.assign(order, node_id)
        j = self.columns.get(node_id)
        if j is not None and j < len(self.targets):
            self.shifts[j] = self.src._shift(node_id)

    def decision(self, pick: _Lazy) -> RouteDecision:
        """``src.decide`` over the candidates the pick saw: the stocked targets priced with their
        shift then, the others refused for stock, in the targets' order."""
        shift_of = dict(pick.options)
        cands = [
            self.candidate(pick.row, j, shift_of[j])
            if j in shift_of
            else Candidate(t, None, False, math.inf, reasons=(Reason.NO_STOCK,))
            for j, t in enumerate(self.targets)
        ]
        return self.src.decide(pick.order, cands)
