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

import numpy as np
import numpy.typing as npt

from agents.score_matrix import ScoreMatrix, move_reasons, needs_layout
from agents.sourcing import (
    Candidate,
    Reason,
    RouteDecision,
    Sourcer,
    SourcingWeights,
    feasible_candidate,
    order_needs,
    p_on_time,
)
from core.domain import RESERVING_STATUSES, Order

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def exact_p_on_time(rate: FloatArray, slack: IntArray) -> FloatArray:
    """:func:`agents.sourcing.p_on_time` over arrays, each value from the Python function itself
    (numpy's ``power`` differs from Python's in the last bit for ~5% of inputs): one call per
    distinct (rate, slack), of which a batch has a few hundred."""
    if rate.size == 0:
        return np.zeros(rate.shape)
    rates, rate_id = np.unique(rate, return_inverse=True)
    lo = int(slack.min())
    span = int(slack.max()) - lo + 1
    keys, inverse = np.unique(rate_id.reshape(rate.shape) * span + (slack - lo), return_inverse=True)
    table = np.array([p_on_time(float(rates[k // span]), int(k % span) + lo) for k in keys.tolist()])
    out: FloatArray = table[inverse.reshape(rate.shape)]
    return out


def exact_scores(
    w: SourcingWeights, cents: IntArray, slack: IntArray, rate: FloatArray, miles: FloatArray, co2e: FloatArray,
    congested: bool,
) -> FloatArray:  # fmt: skip
    """:meth:`Sourcer._priced`'s score over arrays, term for term in its order: IEEE addition,
    multiplication and division are the same in numpy as in Python, and the one power comes from
    :func:`exact_p_on_time`, so each value is the scalar scorer's to the bit."""
    late = np.maximum(0, -slack)
    p = exact_p_on_time(rate, slack)
    score = w.cost * (cents / 100.0) + w.late_day * late + w.miss_risk * (1 - p)
    score = score + (w.distance_per_1000mi * miles / 1000 + w.carbon_per_kg * co2e)
    penalty = 0.0
    if congested:
        penalty += w.congested
    out: FloatArray = score + penalty
    return out


class Pick(Protocol):
    """One order's greedy choice: where it would go (``None``: nowhere), whether it meets its
    promise there and its ETA; the full decision when a plan shows it."""

    @property
    def node_id(self) -> str | None: ...

    @property
    def meets_promise(self) -> bool: ...

    @property
    def eta(self) -> date | None: ...

    @property
    def rejected(self) -> dict[str, list[str]]: ...

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

    @property
    def rejected(self) -> dict[str, list[str]]:
        return self.made.rejected

    def decision(self) -> RouteDecision:
        return self.made


class ScalarRanker:
    """Ranks with the scalar scorer (the reference, and the path when the matrix cannot be built)."""

    def __init__(self, src: Sourcer, targets: list[str]) -> None:
        self.src = src
        self.targets = targets

    def stays(self, orders: list[Order], node_id: str) -> dict[str, Candidate]:
        return {o.id: self.src.score(o, node_id, check_stock=False) for o in orders}

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

    @property
    def rejected(self) -> dict[str, list[str]]:
        """The targets refused (all for stock: a pick from the matrix saw every target serviceable)."""
        if not self.options:
            return self.ranker.all_refused
        stocked = {j for j, _ in self.options}
        return {t: [Reason.NO_STOCK] for j, t in enumerate(self.ranker.targets) if j not in stocked}

    def decision(self) -> RouteDecision:
        return self.ranker.decision(self)


class MatrixRanker:
    """Ranks each order among ``targets`` from the score matrix's fixed numbers, with the running
    stock and queue shifts of ``src`` (which records every move through :meth:`assign`).

    ``matrix`` has one column per target, then any more columns (the source nodes, for each
    order's score where it is); its rows are the batch's orders, scored before any was assigned.
    Scores are kept as arrays, each column at its target's current shift, computed with the
    scorer's arithmetic (see :func:`exact_scores`): equal to :meth:`Sourcer.score`'s, bit for bit."""

    def __init__(self, src: Sourcer, matrix: ScoreMatrix, targets: list[str]) -> None:
        self.src = src
        self.matrix = matrix
        self.targets = targets
        self.columns = {t: j for j, t in enumerate(matrix.targets)}
        self.row = {o.id: i for i, o in enumerate(matrix.orders)}
        m, T = matrix, len(targets)
        assert m.serviceable is not None
        self.promised_arr = np.array([o.promised_date.toordinal() for o in m.orders], dtype=np.int64)
        self.shifts = [src._shift(t) for t in targets]
        self.current = np.empty((len(m.orders), T))
        for j in range(T):
            self.current[:, j] = self._column(j, self.shifts[j])
        # Plain lists: the loop reads single pairs, where list indexing is far cheaper than numpy's.
        self.serviceable: list[bool] = np.all(m.serviceable[:, :T], axis=1).tolist()
        self.serviceable_at = m.serviceable
        self.stocked = m.feasible[:, :T].tolist()
        """Targets with stock for every line before the batch: stock only runs out from there."""
        self.congested = m.congested.tolist()
        self.promised: list[int] = self.promised_arr.tolist()
        # Each order's needs as the matrix worked them out (no order_needs per rank and per move).
        self.needs = m.needs if m.needs is not None else needs_layout(m.orders)
        self.sku_index = self.needs.index
        self.atp = [[src.atp.get(sku, {}).get(t, 0) for t in targets] for sku in self.needs.skus]
        """Running units per (SKU, target), as ``src.atp`` holds them, read as plain lists."""
        self.own_col = [-1] * len(m.orders)
        """Each order's own target column while it holds a reservation there (-1: none)."""
        for i, o in enumerate(m.orders):
            if o.status in RESERVING_STATUSES and o.node_id in self.columns and self.columns[o.node_id] < T:
                self.own_col[i] = self.columns[o.node_id]
        self._why: dict[tuple[int, bool, bool], tuple[str, ...]] = {}
        self._money: dict[int, Decimal] = {}
        self._days: dict[int, date] = {}
        self.all_refused: dict[str, list[str]] = {t: [Reason.NO_STOCK] for t in targets}
        """The refusals of an order no target has stock for (once stock runs out, most of a big batch)."""

    def _column(self, j: int, shift: int, rows: IntArray | None = None) -> FloatArray:
        """Every order's (or ``rows``') exact score at column ``j`` shipped ``shift`` days later."""
        m = self.matrix
        sel = slice(None) if rows is None else rows
        eta = m.eta[sel, j] + shift
        slack = self.promised_arr[sel] - eta
        return exact_scores(
            self.src.weights, m.cost_cents[sel, j], slack, m.on_time_rate[sel, j], m.miles[sel, j], m.co2e[sel, j],
            bool(m.congested[j]),
        )  # fmt: skip

    # --- single pairs, as Sourcer._priced prices them ---------------------------------------------

    def _pairs(self, rows: IntArray, cols: IntArray | int) -> list[tuple[int, int, float, float, float, int]]:
        """(ETA before any shift, cents, on-time rate, miles, CO2e, service) of the pairs ``rows`` x
        ``cols``, as Python values (gathered in one go: numpy scalar access costs ~1 us a value)."""
        m = self.matrix
        return list(
            zip(
                m.eta[rows, cols].tolist(), m.cost_cents[rows, cols].tolist(), m.on_time_rate[rows, cols].tolist(),
                m.miles[rows, cols].tolist(), m.co2e[rows, cols].tolist(), m.service[rows, cols].tolist(), strict=True,
            )
        )  # fmt: skip

    def candidate(self, i: int, j: int, shift: int) -> Candidate:
        """The scorer's :class:`Candidate` for order ``i`` at column ``j`` (a serviceable pair)."""
        pair = self._pairs(np.array([i]), j)[0]
        return self._candidate(i, j, shift, self._price(i, j, shift, pair), pair)

    def _price(self, i: int, j: int, shift: int, pair: tuple[int, int, float, float, float, int]) -> float:
        """The pair's score shipped ``shift`` days later: :meth:`Sourcer._priced`'s arithmetic, term for term."""
        w = self.src.weights
        eta0, cents, rate, miles, co2e, _ = pair
        slack = self.promised[i] - (eta0 + shift)
        late = max(0, -slack)
        p = p_on_time(rate, slack)
        score = w.cost * (cents / 100.0) + w.late_day * late + w.miss_risk * (1 - p)
        score += w.distance_per_1000mi * miles / 1000 + w.carbon_per_kg * co2e
        penalty = 0.0
        if self.congested[j]:
            penalty += w.congested
        return score + penalty

    def _candidate(
        self, i: int, j: int, shift: int, score: float, pair: tuple[int, int, float, float, float, int]
    ) -> Candidate:
        """:meth:`candidate` with its score and the pair's values already there."""
        eta0, cents, rate, miles, co2e, service = pair
        eta = eta0 + shift
        slack = self.promised[i] - eta
        late = max(0, -slack)
        node_id = self.matrix.targets[j]
        # Reason tuples, money and dates are immutable and shared by many candidates: built once
        # per distinct value, and the candidate without the frozen dataclass's __init__ (the
        # stays build one per affected order).
        key = (late, self.congested[j], node_id == self.matrix.orders[i].node_id)
        reasons = self._why.get(key)
        if reasons is None:
            reasons = self._why[key] = move_reasons(*key)
        cost = self._money.get(cents)
        if cost is None:
            cost = self._money[cents] = Decimal(cents).scaleb(-2)
        day = self._days.get(eta)
        if day is None:
            day = self._days[eta] = date.fromordinal(eta)
        return feasible_candidate(
            node_id, self.matrix.service_ids[service], score, cost, day, late, p_on_time(rate, slack), miles, reasons,
            co2e,
        )  # fmt: skip

    # --- the ranker's protocol ---------------------------------------------------------------

    def stays(self, orders: list[Order], node_id: str) -> dict[str, Candidate]:
        """Each order's score where it is (stock not checked), as ``src.score(..., check_stock=False)``."""
        j = self.columns.get(node_id)
        if j is None:
            return {o.id: self.src.score(o, node_id, check_stock=False) for o in orders}
        shift = self.src._shift(node_id)
        rows = np.array([self.row.get(o.id, -1) for o in orders], dtype=np.int64)
        ok = rows >= 0
        ok[ok] = self.serviceable_at[rows[ok], j]
        good = rows[ok]
        priced = iter(zip(good.tolist(), self._column(j, shift, good).tolist(), self._pairs(good, j), strict=True))
        out: dict[str, Candidate] = {}
        for o, served in zip(orders, ok.tolist(), strict=True):
            if served:
                i, score, pair = next(priced)
                out[o.id] = self._candidate(i, j, shift, score, pair)
            else:
                out[o.id] = self.src.score(o, node_id, check_stock=False)
        return out

    def rank(self, order: Order) -> Pick:
        """The best target for ``order`` now (lowest score, then node, then service), as
        ``src.rank(order, targets)`` would find it."""
        i = self.row.get(order.id)
        if i is None or not self.serviceable[i]:
            return _Decided(self.src.rank(order, self.targets))
        ok = self._stocked_now(i, order)
        if not any(ok):
            return _Lazy(self, order, i, (), -1, 0, 0)
        scores = self.current[i].tolist()
        shifts, targets = self.shifts, self.targets
        options = [(j, shifts[j]) for j, stocked in enumerate(ok) if stocked]
        # Lowest score, then node: the key Sourcer.decide sorts by (its third, the service, never
        # decides here: each target is one candidate).
        best, key = -1, (math.inf, "")
        for b, (j, _) in enumerate(options):
            k = (scores[j], targets[j])
            if k < key:
                best, key = b, k
        if best < 0:
            return _Lazy(self, order, i, (), -1, 0, 0)
        j, shift = options[best]
        eta = int(self.matrix.eta[i, j]) + shift
        return _Lazy(self, order, i, tuple(options), best, max(0, eta - self.promised[i]), eta)

    def _stocked_now(self, i: int, order: Order) -> list[bool]:
        """Which targets still have every unit order ``i`` needs (its own node always does when it
        holds a reservation there, as Sourcer.has_stock has it)."""
        ok = list(self.stocked[i])
        own = self.own_col[i]
        if own >= 0:
            ok[own] = True
        if not any(ok):
            return ok
        needs, atp = self.needs, self.atp
        for p in range(needs.ptr[i], needs.ptr[i + 1]):
            qty = needs.qty[p]
            ok = [stocked and units >= qty for stocked, units in zip(ok, atp[needs.sku[p]], strict=True)]
        if own >= 0:
            ok[own] = True
        return ok

    def assign(self, order: Order, node_id: str) -> None:
        """Record a move: its units leave the target's stock, it joins the target's queue (the
        target's scores follow when its ship date moves).

        ``src`` records it as :meth:`Sourcer.assign` does (units off ``src.atp``, one more in
        ``src.added``), from the needs the matrix worked out instead of the order's lines again;
        tests/agents/test_greedy_matrix.py holds the two together."""
        i = self.row.get(order.id)
        if node_id == order.node_id:
            return
        j = self.columns.get(node_id, -1)
        if j >= len(self.targets):
            j = -1
        if i is None:
            self.src.assign(order, node_id)
            for sku, qty in order_needs(order).items():
                k = self.sku_index.get(sku)
                if k is not None and j >= 0:
                    self.atp[k][j] -= qty
        else:
            needs, src_atp = self.needs, self.src.atp
            for p in range(needs.ptr[i], needs.ptr[i + 1]):
                k, qty = needs.sku[p], needs.qty[p]
                by_node = src_atp.setdefault(needs.skus[k], {})
                by_node[node_id] = by_node.get(node_id, 0) - qty
                if j >= 0:
                    self.atp[k][j] -= qty
            added = self.src.added
            added[node_id] = added.get(node_id, 0) + 1
        if j < 0:
            return
        shift = self.src._shift(node_id)
        if shift != self.shifts[j]:
            self.shifts[j] = shift
            self.current[:, j] = self._column(j, shift)

    def decision(self, pick: _Lazy) -> RouteDecision:
        """``src.decide`` over the candidates the pick saw: the stocked targets priced with their
        shift then, the others refused for stock, in the targets' order."""
        i, cols = pick.row, [j for j, _ in pick.options]
        pairs = dict(zip(cols, self._pairs(np.full(len(cols), i), np.array(cols, dtype=np.int64)), strict=True))
        shift_of = dict(pick.options)
        cands = [
            self._candidate(i, j, shift_of[j], self._price(i, j, shift_of[j], pairs[j]), pairs[j])
            if j in shift_of
            else Candidate(t, None, False, math.inf, reasons=(Reason.NO_STOCK,))
            for j, t in enumerate(self.targets)
        ]
        return self.src.decide(pick.order, cands)
