"""Batch sourcing as an optimisation: the plan that is best for the batch, not for each order in turn.

The greedy playbooks decide orders one at a time ("latest first, best node each"), each taking
the stock and the queue room it likes best. That is a sound business rule, but it is not what
the sourcing scorer adds up: an early order can take the only units a later order needed, or
push a node's queue past a day when another node would have done nearly as well. This module
solves the batch as one model and keeps greedy as the fallback and the explainer.

The model (an assignment with queues), all as numpy arrays: every order is scored at every
target at once (:mod:`agents.score_matrix`) and the rest is vector arithmetic:

* an order either stays at its (congested) node, at its stay score, or moves to one target node
  (no splits: the congestion playbook never splits);
* a target's queue is cut into day buckets: the first holds the room left in today's work, each
  next one a day's capacity; an order in bucket ``k`` ships ``k`` days later, exactly the shift
  :meth:`agents.sourcing.Sourcer._shift` applies, so its score is the scorer's with that shift;
* ATP per node x SKU is never exceeded; an order that meets its promise where it is never moves
  to where it would be late (the playbook's rule); each source moves at least as many orders as
  greedy did (the plan relieves the node no less) and at most its backlog target allows.

HiGHS solves the LP relaxation under a time limit, with one column per move plus one per (queue
class, day bucket) (see :class:`_Model`) and by column generation (see
:func:`_column_generation`); a small batch is then solved as an integer programme. The solution
is rounded, then repaired greedily so no constraint is broken, and the result is kept only when it
breaks nothing and scores better than greedy under the same arithmetic (on a tie greedy's plan
stands). Every outcome says how it was made: ``{"method", "objective", "bound", "gap", "solve_s"}``
with ``gap = (objective - bound) / |bound|``; the bound is the LP's (or the integer programme's),
over plans that queue no order more than :data:`MAX_BUCKETS` - 1 days behind the batch.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agents.plan import Alternative
from agents.score_matrix import ScoreMatrix, move_reasons, needs_layout, score_matrix
from agents.sourcing import (
    Candidate,
    Reason,
    RouteDecision,
    Sourcer,
    feasible_candidate,
    late_by,
    p_on_time,
    trusted_decision,
)
from core.domain import Order
from core.trusted import trusted_model

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MIP_MAX_COLUMNS = 2000
"""Batches whose model has at most this many columns are solved as integer programmes..."""
MIP_TIME_LIMIT_S = 0.5
"""... for at most this long (then the LP's rounded answer stands)."""
MAX_BUCKETS = 8
"""Day buckets per target queue: an order shipping 7+ days late from a target is not worth a model."""
EPS = 1e-6
CG_JOIN_SHARE = 16
"""Column generation adds at most one move per this many orders a round (at least CG_MIN_JOINS):
at 100k orders, capping a round at 12.5k joins cut the LP's CPU time from ~6.7 to ~4.4 s (one
round adding ~30k orders' rows at once needed ~18k dual simplex pivots); 6.25k joins (7 rounds
instead of 6) took it from ~1.85 to ~1.70 s more (seventh session; 1/32 was slower again, 10
rounds, and 10k orders are the same at 1/8 and 1/16: the 1,000 floor)."""
CG_MIN_JOINS = 1000
SOLVER_OPTIONS: dict[str, Any] = {}
"""HiGHS options set on every solve (after ``time_limit`` and ``threads``)."""


@dataclass
class Instance:
    """One batch, as arrays. ``n`` orders, ``T`` targets, ``S`` sources, ``E`` (order, target) edges."""

    order_source: IntArray
    """(n,) index of each order's source node."""
    stay_score: FloatArray
    """(n,) the scorer's score for the order where it is."""
    stay_meets: BoolArray
    """(n,) whether it meets its promise where it is (then it may not move to a late option)."""
    edge_order: IntArray
    edge_target: IntArray
    edge_base: FloatArray
    """(E,) the scorer's score with no queue shift."""
    edge_slack: IntArray
    """(E,) days between ETA (no shift) and the promise; negative: late."""
    edge_rate: FloatArray
    """(E,) on-time rate of the carrier that edge ships with."""
    need_ptr: IntArray
    """(n+1,) CSR pointers into need_sku / need_qty: each order's units per SKU."""
    need_sku: IntArray
    need_qty: FloatArray
    atp: FloatArray
    """(SKUs, T) units available to promise at each target."""
    backlog: IntArray
    """(T,) each target's queued orders."""
    capacity: IntArray
    """(T,) orders a day; <= 0: no queue effect."""
    move_lo: IntArray
    """(S,) fewest orders each source must move."""
    move_hi: IntArray
    """(S,) most orders each source may move."""
    stay_cost: FloatArray
    """(n,) cost to serve (USD) where it is."""
    edge_cost: FloatArray
    """(E,) cost to serve (USD) from that target."""
    late_day: float = 40.0
    miss_risk: float = 30.0
    stay_co2e: FloatArray = field(default_factory=lambda: np.zeros(0))
    """(n,) estimated kg CO2e where it is (empty: not known)."""
    edge_co2e: FloatArray = field(default_factory=lambda: np.zeros(0))
    """(E,) estimated kg CO2e from that target (empty: not known)."""

    @property
    def n(self) -> int:
        return len(self.order_source)

    @property
    def targets(self) -> int:
        return len(self.backlog)


@dataclass
class Solution:
    """Where each order goes (``-1``: stays), its queue position's shift, and how it was found."""

    target: IntArray
    shift: IntArray
    edge: IntArray
    """Index of the chosen edge, ``-1`` for an order that stays."""
    objective: float
    info: dict[str, Any] = field(default_factory=dict)


def bucket_sizes(backlog: int, capacity: int, buckets: int) -> list[int]:
    """Orders each day bucket of a target queue holds, matching the scorer's shift: position ``p``
    (0-based, in this batch) ships ``ceil((backlog + p) / cap) - ceil(backlog / cap)`` days later."""
    if capacity <= 0:
        return [10**9] + [0] * (buckets - 1)
    first = math.ceil(backlog / capacity) * capacity - backlog + 1
    return [first] + [capacity] * (buckets - 1)


def _terms(inst: Instance, slack: IntArray, rate: FloatArray) -> FloatArray:
    """The scorer's terms that move with the ship date: lateness and the risk of missing the
    promise (as :meth:`Sourcer._priced` computes them) at ``slack`` days before the promise."""
    miss = np.clip(1.0 - rate, 0.0, 1.0)
    late = np.maximum(0, -slack)
    p = np.where(slack < 0, 0.0, 1.0 - miss ** (np.maximum(slack, 0) + 1))
    out: FloatArray = inst.late_day * late + inst.miss_risk * (1.0 - p)
    return out


def edge_scores(inst: Instance, edges: IntArray, shifts: IntArray) -> FloatArray:
    """The scorer's score of each edge when its order ships ``shift`` days later: lateness and miss
    risk follow the shift, everything else is fixed."""
    slack0 = inst.edge_slack[edges]
    rate = inst.edge_rate[edges]
    result: FloatArray = inst.edge_base[edges] - _terms(inst, slack0, rate) + _terms(inst, slack0 - shifts, rate)
    return result


def evaluate(inst: Instance, edge_of_order: IntArray, queue_rank: FloatArray) -> Solution:
    """Score a plan exactly: each order's edge (``-1``: stays), queued at its target in the order of
    ``queue_rank`` (lower first), each position shifted as the scorer shifts it."""
    n = inst.n
    target = np.full(n, -1, dtype=np.int64)
    shift = np.zeros(n, dtype=np.int64)
    moved = np.flatnonzero(edge_of_order >= 0)
    target[moved] = inst.edge_target[edge_of_order[moved]]
    for t in np.unique(target[moved]):
        mine = moved[target[moved] == t]
        mine = mine[np.argsort(queue_rank[mine], kind="stable")]
        b, cap = int(inst.backlog[t]), int(inst.capacity[t])
        if cap > 0:
            pos = np.arange(len(mine))
            shift[mine] = np.ceil((b + pos) / cap).astype(np.int64) - math.ceil(b / cap)
    total = float(inst.stay_score.sum())
    if len(moved):
        s = edge_scores(inst, edge_of_order[moved], shift[moved])
        total += float((s - inst.stay_score[moved]).sum())
    return Solution(target=target, shift=shift, edge=edge_of_order.copy(), objective=total)


def metrics(inst: Instance, sol: Solution) -> dict[str, float]:
    """Score, late orders, cost to serve and estimated CO2e of a plan over the whole batch (moved and staying)."""
    moved = sol.edge >= 0
    e = sol.edge[moved]
    late_moved = int(((inst.edge_slack[e] - sol.shift[moved]) < 0).sum())
    late_stay = int((~inst.stay_meets[~moved]).sum())
    cost = float(inst.edge_cost[e].sum() + inst.stay_cost[~moved].sum())
    co2e = float(inst.edge_co2e[e].sum() + inst.stay_co2e[~moved].sum()) if len(inst.edge_co2e) else 0.0
    return {
        "score": round(sol.objective, 2),
        "late": late_moved + late_stay,
        "cost": round(cost, 2),
        "co2e_kg": round(co2e, 1),
        "moved": int(moved.sum()),
    }


def _feasible(inst: Instance, edge_of_order: IntArray, shift: IntArray) -> list[str]:
    """What a plan breaks (empty: nothing): ATP, move bounds, lateness rule. For tests and asserts."""
    problems: list[str] = []
    used = np.zeros_like(inst.atp)
    moved = np.flatnonzero(edge_of_order >= 0)
    nz = inst.need_ptr[moved + 1] - inst.need_ptr[moved]
    pos = np.repeat(inst.need_ptr[moved], nz) + (np.arange(int(nz.sum())) - np.repeat(np.cumsum(nz) - nz, nz))
    np.add.at(used, (inst.need_sku[pos], np.repeat(inst.edge_target[edge_of_order[moved]], nz)), inst.need_qty[pos])
    if (used > inst.atp + EPS).any():
        problems.append("ATP exceeded")
    counts = np.bincount(inst.order_source[moved], minlength=len(inst.move_lo))
    if (counts > inst.move_hi).any():
        problems.append("a source moves more than its backlog target allows")
    if (counts < inst.move_lo).any():
        problems.append("a source moves fewer orders than greedy")
    if len(moved):
        late = (inst.edge_slack[edge_of_order[moved]] - shift[moved]) < 0
        if (late & inst.stay_meets[moved]).any():
            problems.append("an on-time order moved to a late option")
    return problems


def check(inst: Instance, sol: Solution) -> list[str]:
    return _feasible(inst, sol.edge, sol.shift)


def solve(inst: Instance, *, time_limit_s: float = 10.0) -> Solution | None:
    """The LP relaxation with HiGHS, rounded and repaired; ``None`` when HiGHS is missing, fails or
    runs out of time (the caller keeps greedy). ``info`` carries the LP bound and timings."""
    started = time.perf_counter()
    if time_limit_s <= 0:
        return None
    try:
        import highspy
    except ImportError:
        return None
    if inst.n == 0 or len(inst.edge_order) == 0:
        return None
    model = _model(inst)
    if model is None:
        return None
    build_s = time.perf_counter() - started
    t0 = time.perf_counter()
    lp = _column_generation(highspy, model, inst.n, started + time_limit_s)
    lp_s = time.perf_counter() - t0
    if lp is None:
        return None
    x, objective, rounds = lp
    bound = objective + float(inst.stay_score.sum())
    fractional = int(((x > EPS) & (x < 1 - EPS)).sum())
    moves = x[: len(model.edges)]
    mip_s: float | None = None
    if model.lp.ncol <= MIP_MAX_COLUMNS and fractional:
        # A small batch is solved exactly: rounding a few fractional moves can leave a source
        # short of its minimum where stock is tight, and the integer model costs milliseconds here.
        t0 = time.perf_counter()
        mip = _mip(highspy, model, started + time_limit_s)
        mip_s = time.perf_counter() - t0
        if mip is not None:
            moves = mip[0]
            bound = max(bound, mip[1] + float(inst.stay_score.sum()))
    t0 = time.perf_counter()
    sol = _round_and_repair(inst, model, moves, highspy, time_limit_s - (t0 - started))
    sol.info = {
        "bound": bound,
        "lp_s": lp_s,
        "build_s": build_s,
        "round_s": time.perf_counter() - t0,
        "columns": model.lp.ncol,
        "rows": model.lp.nrow,
        "fractional": fractional,
        "lp_rounds": rounds,
        "mip_s": mip_s,
    }
    return sol


@dataclass
class _LP:
    """A linear programme in HiGHS's column-wise form (rows' bounds, columns' costs and entries)."""

    row_lo: FloatArray
    row_hi: FloatArray
    cost: FloatArray
    col_hi: FloatArray
    start: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]
    value: FloatArray

    @property
    def nrow(self) -> int:
        return len(self.row_lo)

    @property
    def ncol(self) -> int:
        return len(self.cost)


def _csc(nrow: int, ncol: int, rows: IntArray, cols: IntArray, vals: FloatArray) -> tuple[Any, Any, FloatArray]:
    """Column starts, row indices and values, sorted by column (HiGHS's column-wise matrix)."""
    order = np.argsort(cols, kind="stable")
    start = np.searchsorted(cols[order], np.arange(ncol)).astype(np.int32)
    return start, rows[order].astype(np.int32), vals[order].astype(np.float64)


@dataclass
class _Model:
    """The batch as an LP over moves and queue places.

    An order's score at a target is a part fixed by its edge plus a part that depends only on how
    many days its place in the queue adds, and on the edge's class (target, days of slack, carrier
    on-time rate, whether the order must stay on time). So instead of one column per (edge, day
    bucket), which is 8x the edges, there is one column per edge (``x``: the order moves there)
    and one per (class, bucket) (``y``: how many of the class's moves queue in that bucket), tied
    by one row per class (its moves = its queue places). Orders of one class are interchangeable
    in the queue, so both models have the same optimum and the same bound, with ~1/8 the columns.
    """

    lp: _LP
    edges: IntArray
    """Edges that have a column (their class has a bucket it may use)."""
    edge_class: IntArray
    """(E,) class of every edge."""
    c_target: IntArray
    c_slack: IntArray
    c_rate: FloatArray
    c_strict: BoolArray
    """Whether the class's orders meet their promise where they are (no late bucket)."""
    q_class: IntArray
    q_bucket: IntArray
    sizes: IntArray


def _model(inst: Instance) -> _Model | None:
    n, T, K = inst.n, inst.targets, MAX_BUCKETS
    sizes = np.array([bucket_sizes(int(inst.backlog[t]), int(inst.capacity[t]), K) for t in range(T)])
    # A bucket no plan can reach (the ones before it already hold every move allowed) is dropped.
    before = np.cumsum(sizes, axis=1) - sizes
    sizes[before >= int(inst.move_hi.sum())] = 0
    rates, rate_id = np.unique(inst.edge_rate, return_inverse=True)
    strict = inst.stay_meets[inst.edge_order]
    # A class is also one source's: a source's moves are then its classes' queue places, so the
    # move-count row holds a few queue columns instead of every move (a row over every column
    # made each dual simplex iteration touch all of them: ~3 ms an iteration at 100k orders).
    e_source = inst.order_source[inst.edge_order]
    span = int(inst.edge_slack.max()) - int(inst.edge_slack.min()) + 1
    key = inst.edge_target * span + (inst.edge_slack - inst.edge_slack.min())
    key = ((key * len(rates) + rate_id.reshape(-1)) * 2 + strict) * len(inst.move_lo) + e_source
    # One integer key per edge (a 1-D unique sorts ~10x faster than np.unique over stacked rows).
    _, first, edge_class = np.unique(key, return_index=True, return_inverse=True)
    edge_class = edge_class.reshape(-1)
    c_target, c_slack, c_rate = inst.edge_target[first], inst.edge_slack[first], inst.edge_rate[first]
    c_strict, c_source = strict[first], e_source[first]
    C = len(first)
    q_class = np.repeat(np.arange(C), K)
    q_bucket = np.tile(np.arange(K), C)
    keep = sizes[c_target[q_class], q_bucket] > 0
    keep &= ~(c_strict[q_class] & (c_slack[q_class] - q_bucket < 0))
    q_class, q_bucket = q_class[keep], q_bucket[keep]
    usable = np.bincount(q_class, minlength=C) > 0
    edges = np.flatnonzero(usable[edge_class])
    if len(edges) == 0:
        return None
    X, Q = len(edges), len(q_class)
    o_idx = inst.edge_order[edges]
    t_idx = inst.edge_target[edges]
    x_cost = (
        inst.edge_base[edges] - _terms(inst, inst.edge_slack[edges], inst.edge_rate[edges]) - inst.stay_score[o_idx]
    )
    y_cost = _terms(inst, c_slack[q_class] - q_bucket, c_rate[q_class])
    # Rows: orders, sources, (target, bucket), classes, binding (sku, target) pairs.
    S = len(inst.move_lo)
    r_src, r_bucket = n, n + S
    r_class = r_bucket + T * K
    r_atp = r_class + C
    # Only stock that could run out needs a row: (SKU, target) pairs whose demand, every order
    # with an edge there taken together, exceeds the units to promise.
    nz = inst.need_ptr[o_idx + 1] - inst.need_ptr[o_idx]
    rep_col = np.repeat(np.arange(X), nz)
    pos = np.repeat(inst.need_ptr[o_idx], nz) + (np.arange(len(rep_col)) - np.repeat(np.cumsum(nz) - nz, nz))
    pairs = inst.need_sku[pos] * T + t_idx[rep_col]
    demand = np.bincount(pairs, weights=inst.need_qty[pos], minlength=inst.atp.size)
    tight = (demand > inst.atp.reshape(-1) + EPS)[pairs]
    rep_col, pos, pairs = rep_col[tight], pos[tight], pairs[tight]
    uniq, inverse = np.unique(pairs, return_inverse=True)
    ones_x, ones_q = np.ones(X), np.ones(Q)
    rows = np.concatenate(
        [o_idx, r_class + edge_class[edges], r_atp + inverse.reshape(-1),
         r_src + c_source[q_class], r_bucket + c_target[q_class] * K + q_bucket, r_class + q_class]
    )  # fmt: skip
    cols = np.concatenate([np.arange(X)] * 2 + [rep_col] + [X + np.arange(Q)] * 3)
    vals = np.concatenate([ones_x, ones_x, inst.need_qty[pos], ones_q, ones_q, -ones_q])
    nrow = r_atp + len(uniq)
    row_lo = np.concatenate(
        [np.full(n, -np.inf), inst.move_lo.astype(float), np.full(T * K, -np.inf), np.zeros(C),
         np.full(len(uniq), -np.inf)]
    )  # fmt: skip
    row_hi = np.concatenate(
        [np.ones(n), inst.move_hi.astype(float), sizes.reshape(-1).astype(float), np.zeros(C),
         inst.atp[uniq // T, uniq % T]]
    )  # fmt: skip
    start, index, value = _csc(nrow, X + Q, rows, cols, vals)
    col_hi = np.concatenate([np.ones(X), sizes[c_target[q_class], q_bucket].astype(float)])
    lp = _LP(row_lo, row_hi, np.concatenate([x_cost, y_cost]), col_hi, start, index, value)
    return _Model(lp, edges, edge_class, c_target, c_slack, c_rate, c_strict, q_class, q_bucket, sizes)


def _run_lp(highspy: Any, lp: _LP, time_limit_s: float) -> tuple[FloatArray, float, FloatArray] | None:
    """Solve ``lp`` (all columns >= 0): its solution, objective and row duals (HiGHS's sign: reduced
    cost = cost - A'dual), or ``None`` (infeasible, failed, timed out)."""
    if time_limit_s <= 0:
        return None
    h = _highs(highspy, time_limit_s)
    h.addRows(lp.nrow, lp.row_lo, lp.row_hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.addCols(lp.ncol, lp.cost, np.zeros(lp.ncol), lp.col_hi, len(lp.index), lp.start, lp.index, lp.value)
    try:
        h.run()
    except Exception:  # any solver failure means: keep greedy
        return None
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = h.getSolution()
    return (
        np.asarray(solution.col_value),
        float(h.getInfo().objective_function_value),
        np.asarray(solution.row_dual),
    )


def _highs(highspy: Any, time_limit_s: float) -> Any:
    """A quiet single-threaded HiGHS (dual simplex) with a time limit."""
    # The core class, not ``highspy.Highs``: that wrapper prints a banner to stdout when built
    # (breaking ``--json`` output) and wires callbacks this solve does not use.
    h = highspy._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(0.0, float(time_limit_s)))
    h.setOptionValue("threads", 1)
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("simplex_strategy", 1)
    # Presolve removes little from these assignment-shaped LPs, and would run again each round.
    h.setOptionValue("presolve", "off")
    for key, value in SOLVER_OPTIONS.items():
        h.setOptionValue(key, value)
    return h


def _column_generation(highspy: Any, model: _Model, n: int, deadline: float) -> tuple[FloatArray, float, int] | None:
    """The full LP's optimum, solved over a few of its columns at a time (column generation).

    Most orders end up on their best target, so the LP starts with each order's single most
    promising move (an order with one move needs no row of its own: its column's bound is 1) and
    every queue column. Each round prices every move against the round's duals, vectorised: the
    moves whose reduced cost is negative (they would improve the LP) join, with their orders' rows,
    and HiGHS carries on from its last basis. When none joins, the restricted LP's optimum is the
    full LP's, and so is its bound. ``None`` when out of time, infeasible or failed."""
    lp, X = model.lp, len(model.edges)
    ncol, nrow = lp.ncol, lp.nrow
    counts: IntArray = np.diff(np.append(lp.start.astype(np.int64), len(lp.index)))
    e_col = np.repeat(np.arange(ncol), counts)
    e_row = lp.index.astype(np.int64)
    on_order_row = e_row < n
    x_order = np.zeros(X, dtype=np.int64)
    x_order[e_col[on_order_row]] = e_row[on_order_row]
    coupling = ~on_order_row
    # HiGHS's row and column of each of the model's (-1: not in it yet).
    hrow = np.full(nrow, -1, dtype=np.int64)
    hrow[n:] = np.arange(nrow - n)
    hcol = np.full(ncol, -1, dtype=np.int64)
    h = _highs(highspy, deadline - time.perf_counter())
    h.addRows(nrow - n, lp.row_lo[n:], lp.row_hi[n:], 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    added = 0

    def add_cols(cols: IntArray) -> None:
        nonlocal added
        hcol[cols] = added + np.arange(len(cols))
        added += len(cols)
        take = np.zeros(ncol, dtype=np.bool_)
        take[cols] = True
        keep = take[e_col] & (hrow[e_row] >= 0)
        kc = hcol[e_col[keep]] - hcol[cols[0]]
        h.addCols(
            len(cols), lp.cost[cols], np.zeros(len(cols)), lp.col_hi[cols], int(keep.sum()),
            np.searchsorted(kc, np.arange(len(cols))).astype(np.int32), hrow[e_row[keep]].astype(np.int32),
            lp.value[keep],
        )  # fmt: skip

    def add_order_rows(orders: IntArray) -> None:
        """Rows for these orders, holding the moves of theirs already in the model."""
        hrow[orders] = h.getNumRow() + np.arange(len(orders))
        present = np.flatnonzero(hcol[:X] >= 0)
        mine = present[np.isin(x_order[present], orders)]
        mine = mine[np.argsort(hrow[x_order[mine]], kind="stable")]
        starts = np.searchsorted(hrow[x_order[mine]], hrow[orders]).astype(np.int32)
        h.addRows(
            len(orders), lp.row_lo[orders], lp.row_hi[orders], len(mine), starts,
            hcol[mine].astype(np.int32), np.ones(len(mine)),
        )  # fmt: skip

    # Start: each order's cheapest move (its fixed part plus its class's cheapest queue place).
    first = np.lexsort((lp.cost[:X], x_order))
    best_of_order = first[np.r_[True, x_order[first][1:] != x_order[first][:-1]]]
    add_cols(np.sort(np.concatenate([best_of_order, np.arange(X, ncol)])))
    cap = max(CG_MIN_JOINS, n // CG_JOIN_SHARE)
    rounds = 0
    while True:
        rounds += 1
        # HiGHS's time limit runs on its own clock, which keeps counting across runs.
        h.setOptionValue("time_limit", float(h.getRunTime()) + max(0.0, deadline - time.perf_counter()))
        try:
            h.run()
        except Exception:  # any solver failure means: keep greedy
            return None
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            missing = np.flatnonzero(hcol[:X] < 0)
            if status != highspy.HighsModelStatus.kInfeasible or len(missing) == 0:
                return None
            # The first moves alone cannot meet the constraints (stock, a source's minimum):
            # every move joins, and the full LP decides.
            need_row = np.unique(x_order[missing])
            add_order_rows(need_row[hrow[need_row] < 0])
            add_cols(missing)
            continue
        solution = h.getSolution()
        dual = np.zeros(nrow)
        present_rows = np.flatnonzero(hrow >= 0)
        dual[present_rows] = np.asarray(solution.row_dual)[hrow[present_rows]]
        # Reduced costs of every move, leaving its order's row out.
        priced = (
            lp.cost[:X]
            - np.bincount(e_col[coupling], weights=lp.value[coupling] * dual[e_row[coupling]], minlength=ncol)[:X]
        )
        # An order with no row of its own: its dual is its one move's reduced cost, when negative.
        order_dual = dual[:n].copy()
        single = np.flatnonzero((hcol[:X] >= 0) & (hrow[x_order] < 0))
        order_dual[x_order[single]] = np.minimum(0.0, priced[single])
        reduced = priced - order_dual[x_order]
        joins = _joins(np.flatnonzero((hcol[:X] < 0) & (reduced < -1e-7)), reduced, x_order, cap)
        if len(joins) == 0:
            x = np.zeros(ncol)
            present = np.flatnonzero(hcol >= 0)
            x[present] = np.asarray(solution.col_value)[hcol[present]]
            return x, float(h.getInfo().objective_function_value), rounds
        if time.perf_counter() >= deadline:
            return None
        need_row = np.unique(x_order[joins])
        add_order_rows(need_row[hrow[need_row] < 0])
        add_cols(joins)


def _joins(joins: IntArray, reduced: FloatArray, x_order: IntArray, cap: int) -> IntArray:
    """The moves that join this round, from those that would improve the LP (``joins``): one per
    order (its most negative reduced cost: fewer columns, far fewer pivots), and at most ``cap``
    of them, the most negative first (a round that adds tens of thousands of orders' rows at once
    costs the dual simplex more pivots than several smaller rounds)."""
    if len(joins) == 0:
        return joins
    pick = np.lexsort((reduced[joins], x_order[joins]))
    joins = np.sort(joins[pick[np.r_[True, x_order[joins][pick][1:] != x_order[joins][pick][:-1]]]])
    if len(joins) > cap:
        joins = np.sort(joins[np.argsort(reduced[joins], kind="stable")[:cap]])
    return joins


def _mip(highspy: Any, model: _Model, deadline: float) -> tuple[FloatArray, float] | None:
    """The batch as an integer programme (moves 0/1; queue places follow): the moves and HiGHS's
    dual bound, or ``None`` when not solved to optimality in time."""
    lp, X = model.lp, len(model.edges)
    h = _highs(highspy, min(MIP_TIME_LIMIT_S, deadline - time.perf_counter()))
    h.setOptionValue("presolve", "on")
    h.addRows(lp.nrow, lp.row_lo, lp.row_hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.addCols(lp.ncol, lp.cost, np.zeros(lp.ncol), lp.col_hi, len(lp.index), lp.start, lp.index, lp.value)
    h.changeColsIntegrality(X, np.arange(X, dtype=np.int32), np.ones(X, dtype=np.uint8))
    try:
        h.run()
    except Exception:  # any solver failure means: keep the LP's answer
        return None
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.rint(np.asarray(h.getSolution().col_value)[:X]), float(h.getInfo().mip_dual_bound)


class _Repair:
    """The rounding's running state as plain Python lists (ATP, queue room, moves per source, each
    order's move and bucket): the repair walks candidate moves one at a time, where list indexing
    is far cheaper than numpy scalar access."""

    def __init__(self, inst: Instance, model: _Model) -> None:
        self.inst = inst
        self.e_order = inst.edge_order.tolist()
        self.e_target = inst.edge_target.tolist()
        self.e_slack = inst.edge_slack.tolist()
        self.strict = inst.stay_meets.tolist()
        self.source = inst.order_source.tolist()
        self.ptr = inst.need_ptr.tolist()
        self.n_sku, self.n_qty = inst.need_sku.tolist(), inst.need_qty.tolist()
        self.atp = inst.atp.tolist()
        self.room = model.sizes.tolist()
        self.hi = inst.move_hi.tolist()
        self.moved = [0] * len(self.hi)
        self.edge_of = [-1] * inst.n
        self.bucket_of = [0] * inst.n

    def slot(self, e: int) -> int:
        """The latest bucket the move may use that has room (-1: none), keeping early places for
        orders that must stay on time."""
        t = self.e_target[e]
        last = min(MAX_BUCKETS - 1, self.e_slack[e]) if self.strict[self.e_order[e]] else MAX_BUCKETS - 1
        room = self.room[t]
        for k in range(last, -1, -1):
            if room[k] > 0:
                return k
        return -1

    def _stocked(self, o: int, t: int) -> bool:
        """Whether target ``t`` still has every unit order ``o`` needs."""
        atp, n_sku, n_qty = self.atp, self.n_sku, self.n_qty
        return all(atp[n_sku[i]][t] >= n_qty[i] - EPS for i in range(self.ptr[o], self.ptr[o + 1]))

    def _take(self, e: int, k: int) -> None:
        """Record move ``e`` in bucket ``k``: its units leave the target's ATP, it fills a place."""
        o, t = self.e_order[e], self.e_target[e]
        for i in range(self.ptr[o], self.ptr[o + 1]):
            self.atp[self.n_sku[i]][t] -= self.n_qty[i]
        self.room[t][k] -= 1
        self.moved[self.source[o]] += 1
        self.edge_of[o], self.bucket_of[o] = e, k

    def try_edges(self, cands: IntArray, only_better: bool = False) -> None:
        """Take each move in ``cands`` in turn that still fits (order not yet moved, source under
        its limit, stock and a queue place at the target); with ``only_better``, only moves that
        lower the order's score."""
        for e in self._viable(cands).tolist():
            self._try(e, only_better)

    def _viable(self, cands: IntArray) -> IntArray:
        """``cands`` without the moves that cannot fit any more, found with array work: their order
        already moved, their source at its limit, or a line short at their target. Moves, stock and
        counts only ever go one way while the repair walks, so each move left out would have been
        refused at its turn: the walk takes the same moves, without checking the hopeless ones
        one at a time (once stock runs low they are most of a big batch)."""
        if len(cands) == 0:
            return cands
        inst = self.inst
        o, t = inst.edge_order[cands], inst.edge_target[cands]
        ok = np.asarray(self.edge_of, dtype=np.int64)[o] < 0
        src = inst.order_source[o]
        ok &= np.asarray(self.moved, dtype=np.int64)[src] < inst.move_hi[src]
        nz = inst.need_ptr[o + 1] - inst.need_ptr[o]
        rep = np.repeat(np.arange(len(cands)), nz)
        pos = np.repeat(inst.need_ptr[o], nz) + (np.arange(len(rep)) - np.repeat(np.cumsum(nz) - nz, nz))
        atp = np.asarray(self.atp, dtype=np.float64).reshape(inst.atp.shape)
        short = atp[inst.need_sku[pos], t[rep]] < inst.need_qty[pos] - EPS
        ok &= np.bincount(rep[short], minlength=len(cands)) == 0
        kept: IntArray = cands[ok]
        return kept

    def _try(self, e: int, only_better: bool) -> None:
        """Take move ``e`` if it still fits (see :meth:`try_edges`)."""
        o = self.e_order[e]
        s = self.source[o]
        if self.edge_of[o] >= 0 or self.moved[s] >= self.hi[s] or not self._stocked(o, self.e_target[e]):
            return
        k = self.slot(e)
        if k < 0:
            return
        inst = self.inst
        if only_better and float(edge_scores(inst, np.array([e]), np.array([k]))[0]) >= inst.stay_score[o] - EPS:
            return
        self._take(e, k)

    def top_up(self, edges: IntArray, cost0: FloatArray) -> None:
        """Give every source still short of its minimum its best remaining moves (lowest score
        change first) until it reaches it; the walk ends when no source is short any more (the
        rest of the list could not change anything)."""
        inst = self.inst
        lo = inst.move_lo.tolist()
        short = {s for s in range(len(self.hi)) if self.moved[s] < lo[s]}
        if not short:
            return
        mine = np.isin(inst.order_source[inst.edge_order[edges]], sorted(short))
        for e in edges[np.flatnonzero(mine)[np.argsort(cost0[mine], kind="stable")]].tolist():
            s = self.source[self.e_order[e]]
            if s not in short:
                continue
            self._try(e, False)
            if self.moved[s] >= lo[s]:
                short.discard(s)
                if not short:
                    return


def _round_and_repair(inst: Instance, model: _Model, x: FloatArray, highspy: Any, time_left_s: float) -> Solution:
    """Take the LP's moves, surest first, while they fit (ATP, queue room, source limits); top up
    any source still short of its minimum with its best remaining moves; then take any move that
    still lowers the score. Finally place the moves in their queues as well as they can go."""
    edges = model.edges
    rep = _Repair(inst, model)
    cost0 = edge_scores(inst, edges, np.zeros(len(edges), dtype=np.int64)) - inst.stay_score[inst.edge_order[edges]]
    # The LP's near-integral choices first, then whatever a source needs to reach its minimum,
    # then the LP's fractional choices, then any move that still lowers the score.
    sure = np.flatnonzero(x >= 0.5)
    rep.try_edges(edges[sure[np.lexsort((cost0[sure], -x[sure]))]])
    rep.top_up(edges, cost0)
    unsure = np.flatnonzero((x > EPS) & (x < 0.5))
    rep.try_edges(edges[unsure[np.lexsort((cost0[unsure], -x[unsure]))]])
    rep.top_up(edges, cost0)
    better = np.flatnonzero(cost0 < -EPS)
    rep.try_edges(edges[better[np.argsort(cost0[better], kind="stable")]], only_better=True)
    edge_arr = np.array(rep.edge_of, dtype=np.int64)
    buckets = _queue(inst, model, edge_arr, highspy, time_left_s)
    if buckets is None:
        buckets = np.array(rep.bucket_of, dtype=np.int64)
    # Queue each target by bucket, tightest promise (least slack) first within a bucket.
    slack = np.where(edge_arr >= 0, inst.edge_slack[np.maximum(edge_arr, 0)], 0)
    return evaluate(inst, edge_arr, (buckets * 10_000.0 + slack).astype(np.float64))


def _queue(inst: Instance, model: _Model, edge_of: IntArray, highspy: Any, time_left_s: float) -> IntArray | None:
    """The best queue places for the chosen moves: a small transportation LP (classes x buckets,
    integral at its optimum) placing each class's moves in the buckets its orders may use.
    ``None`` when it cannot be solved (the caller keeps the places the rounding found)."""
    moved = np.flatnonzero(edge_of >= 0)
    cls = model.edge_class[edge_of[moved]]
    count = np.bincount(cls, minlength=len(model.c_target)).astype(float)
    Q, C, T, K = len(model.q_class), len(model.c_target), inst.targets, MAX_BUCKETS
    rows = np.concatenate([model.c_target[model.q_class] * K + model.q_bucket, T * K + model.q_class])
    cols = np.concatenate([np.arange(Q)] * 2)
    start, index, value = _csc(T * K + C, Q, rows, cols, np.ones(2 * Q))
    lp = _LP(
        np.concatenate([np.full(T * K, -np.inf), count]),
        np.concatenate([model.sizes.reshape(-1).astype(float), count]),
        _terms(inst, model.c_slack[model.q_class] - model.q_bucket, model.c_rate[model.q_class]),
        np.full(Q, np.inf),
        start,
        index,
        value,
    )
    solved = _run_lp(highspy, lp, time_left_s)
    if solved is None:
        return None
    z = np.rint(solved[0]).astype(np.int64)
    if np.abs(solved[0] - z).max(initial=0.0) > 1e-6:
        return None
    out = np.zeros(inst.n, dtype=np.int64)
    # Hand each class's places out to its orders, earliest places to the least slack... all of
    # one class have the same slack, so any order of the class may take any of its places.
    for c in np.unique(cls):
        mine = moved[cls == c]
        places = np.repeat(model.q_bucket[model.q_class == c], z[model.q_class == c])
        if len(places) != len(mine):
            return None
        out[mine] = places
    return out


def rejection(inst: Instance, sol: Solution, greedy: Solution) -> str | None:
    """Why the optimiser's plan must not replace greedy's (``None``: it may): it breaks a constraint
    greedy honours, or it does not score better."""
    problems = check(inst, sol)
    if problems:
        return "the optimiser's plan " + "; ".join(problems)
    if sol.objective >= greedy.objective - EPS:
        return "the optimiser's plan is no better than greedy's"
    return None


def summary(method: str, objective: float, bound: float | None, solve_s: float, **extra: Any) -> dict[str, Any]:
    """The ``plan.optimizer`` record: how the plan was made and how far it can be from the best."""
    gap = None
    if bound is not None and abs(bound) > EPS:
        gap = round(max(0.0, objective - bound) / abs(bound), 6)
    elif bound is not None:
        gap = 0.0
    return {
        "method": method,
        "objective": round(objective, 2),
        "bound": None if bound is None else round(bound, 2),
        "gap": gap,
        "solve_s": round(solve_s, 4),
        **extra,
    }


@dataclass
class Batch:
    """An :class:`Instance` built from orders with the scorer, and what turns its answer back into
    decisions: the orders, target ids and each edge's scored :class:`Candidate`."""

    instance: Instance
    orders: list[Order]
    targets: list[str]
    candidate: Callable[[int], Candidate]
    """The scorer's candidate behind an edge (no queue shift)."""
    by_order: list[list[int]]
    """Each order's edges."""
    score_s: float = 0.0
    candidates: Callable[[IntArray], list[Candidate]] | None = None
    """:attr:`candidate` for many edges at once (``None``: one at a time)."""
    matrix: ScoreMatrix | None = None
    """The score matrix the edges were gathered from (row-major: edges sorted by order), when
    there is one; the decisions are then built from its arrays (see :func:`_matrix_decisions`)."""

    def many(self, edges: IntArray) -> list[Candidate]:
        """The scorer's candidates behind ``edges``."""
        if self.candidates is not None:
            return self.candidates(edges)
        return [self.candidate(e) for e in edges.tolist()]


def _needs_layout(
    orders: Sequence[Order], matrix: ScoreMatrix | None = None
) -> tuple[dict[str, int], list[int], list[int], list[int]]:
    """Every order's SKU needs as flat arrays (CSR: the SKU indexes in ``sku_index`` and quantities
    of order ``i`` lie between ``ptr[i]`` and ``ptr[i + 1]``), so ATP checks need no dicts. Taken
    from the score matrix when it worked them out for these orders (same layout)."""
    needs = matrix.needs if matrix is not None and matrix.needs is not None else needs_layout(orders)
    return needs.index, needs.ptr, needs.sku, needs.qty


def _matrix_edges(matrix: ScoreMatrix, n: int) -> tuple[dict[str, npt.NDArray[Any]], list[list[int]]]:
    """The batch's edges (feasible order x target pairs, by order) gathered from the score matrix."""
    nz_order, nz_target = np.nonzero(matrix.feasible)
    edges: dict[str, npt.NDArray[Any]] = {
        "order": nz_order, "target": nz_target, "base": matrix.score[nz_order, nz_target],
        "slack": matrix.slack[nz_order, nz_target], "rate": matrix.on_time_rate[nz_order, nz_target],
        "cost": matrix.cost_cents[nz_order, nz_target] / 100.0, "co2e": matrix.co2e[nz_order, nz_target],
    }  # fmt: skip
    ptr = np.searchsorted(nz_order, np.arange(n + 1)).tolist()
    return edges, [list(range(ptr[i], ptr[i + 1])) for i in range(n)]


def _scalar_edges(
    src: Sourcer, orders: Sequence[Order], targets: Sequence[str]
) -> tuple[dict[str, npt.NDArray[Any]], list[Candidate], list[list[int]]]:
    """The batch's edges scored one pair at a time with the scalar scorer (when the data cannot be
    held in the score matrix's arrays exactly), with each edge's :class:`Candidate`."""
    view = src.view
    t_index = {t: i for i, t in enumerate(targets)}
    cols: dict[str, list[Any]] = {k: [] for k in ("order", "target", "base", "slack", "rate", "cost", "co2e")}
    cands: list[Candidate] = []
    by_order: list[list[int]] = []
    for i, o in enumerate(orders):
        mine: list[int] = []
        for t in targets:
            c = src.score(o, t)
            if not c.feasible or c.eta is None or c.service_id is None:
                continue
            mine.append(len(cands))
            cands.append(c)
            for key, value in (
                ("order", i), ("target", t_index[t]), ("base", c.score), ("slack", (o.promised_date - c.eta).days),
                ("rate", view.carriers[view.services[c.service_id].carrier_id].on_time_rate),
                ("cost", float(c.cost)), ("co2e", c.co2e_kg),
            ):  # fmt: skip
                cols[key].append(value)
        by_order.append(mine)
    ints = ("order", "target", "slack")
    edges = {k: np.array(v, dtype=np.int64 if k in ints else np.float64) for k, v in cols.items()}
    return edges, cands, by_order


def _atp_table(src: Sourcer, sku_index: Mapping[str, int], targets: Sequence[str]) -> FloatArray:
    """ATP before the batch as a (SKU x target) array (negative ATP counts as none)."""
    t_index = {t: j for j, t in enumerate(targets)}
    atp = np.zeros((max(1, len(sku_index)), len(targets)))
    for sku, k in sku_index.items():
        by_node = src.atp.get(sku, {})
        for t, j in t_index.items():
            atp[k, j] = max(0, by_node.get(t, 0))
    return atp


def build_batch(
    src: Sourcer,
    orders: Sequence[Order],
    stay: Mapping[str, Candidate],
    targets: Sequence[str],
    move_lo: Mapping[str, int],
    move_hi: Mapping[str, int],
    *,
    vectorised: bool = True,
    matrix: ScoreMatrix | None = None,
) -> Batch:
    """Score every order at every target once (ATP as it stands before the batch, no queue shift)
    and lay the batch out as arrays. ``stay`` is each order's candidate where it is; ``move_lo`` /
    ``move_hi`` bound each source's moves. Scores come from :func:`score_matrix` (vectorised),
    or from the scalar scorer when the data cannot be held in its arrays exactly. A ``matrix``
    the caller already scored for exactly these orders and targets (before any was assigned) is
    used as it is."""
    started = time.perf_counter()
    if matrix is not None and not (
        matrix.targets == list(targets)
        and len(matrix.orders) == len(orders)
        and all(a.id == b.id for a, b in zip(matrix.orders, orders, strict=True))
    ):
        matrix = None
    if matrix is None and vectorised:
        matrix = score_matrix(src, list(orders), list(targets))
    view = src.view
    sources = sorted(move_lo)
    s_index = {s: i for i, s in enumerate(sources)}
    sku_index, need_ptr, need_sku, need_qty = _needs_layout(orders, matrix)
    cands: list[Candidate] = []
    if matrix is not None:
        edges, by_order = _matrix_edges(matrix, len(orders))
    else:
        edges, cands, by_order = _scalar_edges(src, orders, targets)
    atp = _atp_table(src, sku_index, targets)
    stay_c = [stay[o.id] for o in orders]
    inst = Instance(
        order_source=np.array([s_index[o.node_id or ""] for o in orders], dtype=np.int64),
        stay_score=np.array([c.score if c.feasible else 0.0 for c in stay_c], dtype=np.float64),
        stay_meets=np.array([c.meets_promise for c in stay_c], dtype=np.bool_),
        edge_order=edges["order"].astype(np.int64),
        edge_target=edges["target"].astype(np.int64),
        edge_base=edges["base"].astype(np.float64),
        edge_slack=edges["slack"].astype(np.int64),
        edge_rate=edges["rate"].astype(np.float64),
        need_ptr=np.array(need_ptr, dtype=np.int64),
        need_sku=np.array(need_sku, dtype=np.int64),
        need_qty=np.array(need_qty, dtype=np.float64),
        atp=atp,
        backlog=np.array([view.nodes[t].backlog for t in targets], dtype=np.int64),
        capacity=np.array([view.nodes[t].daily_capacity for t in targets], dtype=np.int64),
        move_lo=np.array([move_lo[s] for s in sources], dtype=np.int64),
        move_hi=np.array([move_hi[s] for s in sources], dtype=np.int64),
        stay_cost=np.array([float(c.cost) for c in stay_c], dtype=np.float64),
        edge_cost=edges["cost"].astype(np.float64),
        stay_co2e=np.array([c.co2e_kg for c in stay_c], dtype=np.float64),
        edge_co2e=edges["co2e"].astype(np.float64),
        late_day=src.weights.late_day,
        miss_risk=src.weights.miss_risk,
    )
    if matrix is not None:
        m = matrix

        def candidate(e: int) -> Candidate:
            return m.candidate(int(inst.edge_order[e]), int(inst.edge_target[e]))

        def candidates(edges: IntArray) -> list[Candidate]:
            return m.candidates(inst.edge_order[edges], inst.edge_target[edges])

        took = time.perf_counter() - started
        return Batch(inst, list(orders), list(targets), candidate, by_order, took, candidates, m)
    return Batch(inst, list(orders), list(targets), cands.__getitem__, by_order, time.perf_counter() - started)


def shifted(c: Candidate, days: int, inst: Instance, edge: int) -> Candidate:
    """``c`` when its order ships ``days`` later (queued behind the batch's other orders)."""
    if days == 0 or c.eta is None:
        return c
    return _shifted(c, days, inst, edge, float(edge_scores(inst, np.array([edge]), np.array([days]))[0]))


def _shifted(c: Candidate, days: int, inst: Instance, edge: int, score: float) -> Candidate:
    """:func:`shifted` with the shifted score already computed (for many edges at once)."""
    if days == 0 or c.eta is None:
        return c
    eta = c.eta + timedelta(days=days)
    slack = int(inst.edge_slack[edge]) - days
    late = max(0, -slack)
    reasons = tuple(r for r in c.reasons if r != Reason.MEETS_PROMISE and not r.startswith("LATE_BY_"))
    first = Reason.MEETS_PROMISE if late == 0 else late_by(late)
    # Built as score_matrix builds them (dataclasses.replace by keyword cost ~3x as much).
    return feasible_candidate(
        c.node_id, c.service_id, score, c.cost, eta, late, p_on_time(float(inst.edge_rate[edge]), slack),
        c.distance_mi, (first, *reasons), c.co2e_kg, c.split_legs,
    )  # fmt: skip


class Placed(Protocol):
    """Where greedy placed an order (a :class:`RouteDecision`, or a pick whose decision is built later)."""

    @property
    def node_id(self) -> str | None: ...


@dataclass
class Outcome:
    """What :func:`optimise_moves` found: the ``plan.optimizer`` record, and the optimiser's moves
    (order, decision) when they beat greedy's (``None``: keep greedy's)."""

    summary: dict[str, Any]
    moves: list[tuple[Order, RouteDecision]] | None
    greedy_objective: float = 0.0


def optimise_moves(
    src: Sourcer,
    orders: Sequence[Order],
    stays: Mapping[str, Candidate],
    targets: Sequence[str],
    bounds: Mapping[str, tuple[int, int]],
    greedy: Sequence[tuple[Order, Placed]],
    not_planned: dict[str, str],
    *,
    time_limit_s: float | None = None,
    matrix: ScoreMatrix | None = None,
) -> Outcome:
    """Re-plan a congestion batch greedy has planned: the same orders, stock and targets, each source
    moving between greedy's count and its backlog target (``bounds``: source -> (lo, hi)).

    ``src`` must hold the ATP as it was before greedy consumed any. When the optimiser's plan scores
    lower (better) than greedy's under the same arithmetic, its moves are returned with decisions
    that keep the scorer's reasons and alternatives (``BEST_PLAN`` first), and ``not_planned`` is
    updated for the orders whose fate changed; otherwise greedy's plan stands and the record says why.
    Only where greedy placed each order is read from ``greedy``. ``matrix``: the batch's orders
    already scored at ``targets`` from that same ATP (see :func:`build_batch`), or ``None``.
    """
    # The plan builds hundreds of thousands of small acyclic objects (lists from arrays, candidates,
    # decisions); with the cyclic collector running, its passes over the growing heap were ~45% of
    # the decisions' CPU time. Nothing here makes cycles that must be freed before the plan is done.
    with gc_paused():
        return _optimise_moves(
            src, orders, stays, targets, bounds, greedy, not_planned, time_limit_s=time_limit_s, matrix=matrix
        )


class _GcPause:
    """Counted pauses of the process-wide cyclic collector, safe across threads.

    Workers plan in several threads at once. A plain save-disable-restore per plan could leave the
    collector off for good: plan A pauses it, plan B starts and saves "off", A ends and turns it on,
    B ends and restores "off". So the first pause records the collector's state and the last one to
    end restores it; a pause the caller took outside (collector already off) stays a pause."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._was_enabled:
                    gc.enable()


gc_paused = _GcPause()
"""The one counted pause: the optimiser, the congestion playbook (over its whole plan) and the A/B
replay share it, so a second counter can never leave the collector off."""


def _optimise_moves(
    src: Sourcer,
    orders: Sequence[Order],
    stays: Mapping[str, Candidate],
    targets: Sequence[str],
    bounds: Mapping[str, tuple[int, int]],
    greedy: Sequence[tuple[Order, Placed]],
    not_planned: dict[str, str],
    *,
    time_limit_s: float | None = None,
    matrix: ScoreMatrix | None = None,
) -> Outcome:
    """:func:`optimise_moves` with the collector paused."""
    started, cpu0 = time.perf_counter(), time.process_time()
    limit = src.weights.optimizer_time_limit_s if time_limit_s is None else time_limit_s
    movable = [o for o in orders if o.id in stays and (o.node_id or "") in bounds]
    batch = build_batch(
        src, movable, stays, targets, {s: b[0] for s, b in bounds.items()}, {s: b[1] for s, b in bounds.items()},
        matrix=matrix,
    )  # fmt: skip
    inst = batch.instance
    index = {o.id: i for i, o in enumerate(movable)}
    t_index = {t: j for j, t in enumerate(targets)}
    edge_of = _greedy_edges(inst, [(index.get(o.id, -1), t_index.get(d.node_id or "", -1)) for o, d in greedy])
    if edge_of is None:
        return Outcome(
            summary("greedy", 0.0, None, time.perf_counter() - started, reason="greedy plan outside the model"), None
        )
    rank = np.zeros(inst.n, dtype=np.float64)
    rank[[index[o.id] for o, _ in greedy]] = np.arange(len(greedy), dtype=np.float64)
    g = evaluate(inst, edge_of, rank)
    sol = solve(inst, time_limit_s=limit)
    elapsed = time.perf_counter() - started
    common = {
        "greedy": metrics(inst, g),
        "orders": inst.n,
        "score_s": round(batch.score_s, 4),
        # CPU seconds of this process: on shared cores, what the solve costs apart from waiting.
        "cpu_s": round(time.process_time() - cpu0, 4),
    }
    if sol is None:
        why = "optimiser off (time limit 0)" if limit <= 0 else "HiGHS unavailable, failed or out of time"
        return Outcome(summary("greedy", g.objective, None, elapsed, reason=why, **common), None, g.objective)
    bound = float(sol.info["bound"])
    extra = {
        **common,
        "optimizer": metrics(inst, sol),
        "lp_s": round(float(sol.info["lp_s"]), 4),
        "fractional": sol.info["fractional"],
    }
    rejected = rejection(inst, sol, g)
    if rejected is not None:
        return Outcome(summary("greedy", g.objective, bound, elapsed, reason=rejected, **extra), None, g.objective)
    t0, c0 = time.perf_counter(), time.process_time()
    moves = _decisions(src, batch, sol, movable)
    for o, _ in moves:
        not_planned.pop(o.id, None)
    for oi in np.flatnonzero(sol.edge < 0).tolist():
        o = movable[oi]
        if o.id not in not_planned:
            not_planned[o.id] = (
                f"stays at {o.node_id}: the batch plan scores better moving other orders "
                "(stock and target queues are shared)"
            )
    # The decisions (reasons, alternatives) are part of the optimiser's answer: their time is
    # counted in, beside the solve's.
    extra["decide_s"] = round(time.perf_counter() - t0, 4)
    extra["cpu_s"] = round(float(extra["cpu_s"]) + time.process_time() - c0, 4)
    elapsed = time.perf_counter() - started
    return Outcome(summary("highs", sol.objective, bound, elapsed, **extra), moves, g.objective)


def _greedy_edges(inst: Instance, picks: list[tuple[int, int]]) -> IntArray | None:
    """Each order's edge in greedy's plan (``-1``: stays) from its (order, target) indices;
    ``None`` when greedy chose a move the model has no edge for."""
    edge_of = np.full(inst.n, -1, dtype=np.int64)
    if not picks:
        return edge_of
    at = np.full((inst.n, inst.targets), -1, dtype=np.int64)
    # The first edge of an (order, target) pair wins, as a scan of the order's edges would find it.
    at[inst.edge_order[::-1], inst.edge_target[::-1]] = np.arange(len(inst.edge_order))[::-1]
    pairs = np.array(picks, dtype=np.int64).reshape(-1, 2)
    if (pairs < 0).any():
        return None
    found = at[pairs[:, 0], pairs[:, 1]]
    if (found < 0).any():
        return None
    edge_of[pairs[:, 0]] = found
    return edge_of


def _decisions(
    src: Sourcer, batch: Batch, sol: Solution, movable: Sequence[Order]
) -> list[tuple[Order, RouteDecision]]:
    """The scorer's decision for every order the plan moves: its chosen edge, shifted by its queue
    place, first (``BEST_PLAN``), its other options as alternatives. Candidates are built for all
    moved orders at once."""
    if batch.matrix is not None:
        return _matrix_decisions(src.weights.alternatives, batch.matrix, batch.instance, sol, movable)
    inst = batch.instance
    moved = np.flatnonzero(sol.edge >= 0)
    counts = [len(batch.by_order[i]) for i in moved.tolist()]
    flat = np.array([e for i in moved.tolist() for e in batch.by_order[i]], dtype=np.int64)
    cands = batch.many(flat)
    chosen_edges = sol.edge[moved]
    shift_of = sol.shift[moved]
    new_scores = edge_scores(inst, chosen_edges, shift_of).tolist()
    out: list[tuple[Order, RouteDecision]] = []
    ends = np.cumsum(counts, dtype=np.int64).tolist()
    for k, (oi, e, days) in enumerate(zip(moved.tolist(), chosen_edges.tolist(), shift_of.tolist(), strict=True)):
        mine = cands[ends[k] - counts[k] : ends[k]]
        chosen = _shifted(mine[batch.by_order[oi].index(e)], days, inst, e, new_scores[k])
        o = movable[oi]
        out.append((o, src.decide(o, mine, chosen=chosen)))
    return out


def _matrix_decisions(
    alternatives: int, m: ScoreMatrix, inst: Instance, sol: Solution, movable: Sequence[Order]
) -> list[tuple[Order, RouteDecision]]:
    """:func:`_decisions` from the score matrix's arrays, equal to ``src.decide(o, cands,
    chosen=...)`` field for field: per moved order, its chosen edge shifted by its queue place
    first, then its other edges by (score, node) (the matrix has one edge per target, so the
    service never breaks a tie), ``alternatives`` of them kept; the CHEAPEST / FASTEST / NEAREST /
    LOWER_CARBON tags from the extremes over all of them. Sorting, extremes and tags are array
    work; only the kept options become Python objects (a :class:`Candidate` per edge and the
    scalar decide cost ~2/3 of the decisions' time)."""
    moved = np.flatnonzero(sol.edge >= 0)
    if len(moved) == 0:
        return []
    ptr = np.searchsorted(inst.edge_order, np.arange(inst.n + 1))
    cnt = ptr[moved + 1] - ptr[moved]
    owner = np.repeat(np.arange(len(moved)), cnt)
    flat = np.repeat(ptr[moved], cnt) + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    rows, cols = inst.edge_order[flat], inst.edge_target[flat]
    chosen_e, days = sol.edge[moved], sol.shift[moved]
    is_chosen = flat == chosen_e[owner]
    shift = np.where(is_chosen, days[owner], 0)
    # The chosen edge's score at its shift (the unshifted score when it ships on time: as _shifted).
    score = m.score[rows, cols].astype(np.float64)
    ch = np.flatnonzero(is_chosen & (shift != 0))
    if len(ch):
        score[ch] = edge_scores(inst, flat[ch], shift[ch])
    slack = m.slack[rows, cols] - shift
    eta = m.eta[rows, cols] + shift
    cents, miles, co2 = m.cost_cents[rows, cols], m.miles[rows, cols], m.co2e[rows, cols]
    node_rank = np.argsort(np.argsort(np.array(m.targets, dtype=object), kind="stable"), kind="stable")
    order = np.lexsort((node_rank[cols], score, ~is_chosen, owner))
    start = np.cumsum(cnt) - cnt
    pos = np.arange(len(order)) - start[owner[order]]
    tags = _tag_codes(owner[order], start, cents[order], eta[order], miles[order], co2[order])
    keep = order[pos <= alternatives]
    p = m.p_on_time[rows, cols]
    for k in ch.tolist():
        p[k] = p_on_time(float(inst.edge_rate[flat[k]]), int(slack[k]))
    kept = {
        "owner": owner[keep], "row": rows[keep], "col": cols[keep], "score": score[keep],
        "late": np.maximum(0, -slack[keep]), "eta": eta[keep], "cents": cents[keep], "p": p[keep], "co2": co2[keep],
        "svc": m.service[rows, cols][keep], "tags": tags[pos <= alternatives],
    }  # fmt: skip
    return _build_decisions(m, movable, {k: v.tolist() for k, v in kept.items()})


def _tag_codes(
    owner: IntArray, start: IntArray, cents: IntArray, eta: IntArray, miles: FloatArray, co2: FloatArray
) -> IntArray:
    """Each option's tags as bits (1 CHEAPEST, 2 FASTEST, 4 NEAREST, 8 LOWER_CARBON), against the
    extremes over its order's options (``owner``: options grouped by order, ``start``: where each
    order's begin), compared as :func:`agents.sourcing._tags` compares them."""
    cheapest = np.minimum.reduceat(cents, start)[owner]
    fastest = np.minimum.reduceat(eta, start)[owner]
    nearest = np.minimum.reduceat(miles, start)[owner]
    greenest = np.minimum.reduceat(co2, start)
    differs = (greenest < np.maximum.reduceat(co2, start) - 1e-9)[owner]
    code: IntArray = (
        (cents == cheapest) * 1 + (eta == fastest) * 2 + (miles == nearest) * 4
        + (differs & (co2 <= greenest[owner] + 1e-9)) * 8
    ).astype(np.int64)  # fmt: skip
    return code


_TAGS = [
    tuple(r for bit, r in ((1, Reason.CHEAPEST), (2, Reason.FASTEST), (4, Reason.NEAREST), (8, Reason.LOWER_CARBON))
          if code & bit)
    for code in range(16)
]  # fmt: skip


_ALTERNATIVE_FIELDS = frozenset(Alternative.model_fields)


def _trusted_alternative(
    node_id: str, service_id: str, score: float, reasons: list[str], co2e_kg: float
) -> Alternative:
    """``Alternative(node_id=..., carrier_service_id=..., score=..., reasons=..., co2e_kg=...)``
    without validating what this module built itself from the score matrix (plain ``str`` reason
    codes, rounded floats): the object validation would give, field for field and in its set of
    fields given (~2.0 against ~0.6 us; a 100k-order plan builds ~150k)."""
    return trusted_model(
        Alternative,
        {"node_id": node_id, "carrier_service_id": service_id, "score": score, "reasons": reasons, "co2e_kg": co2e_kg},
        _ALTERNATIVE_FIELDS,
    )


def _build_decisions(
    m: ScoreMatrix, movable: Sequence[Order], kept: dict[str, list[Any]]
) -> list[tuple[Order, RouteDecision]]:
    """The decisions from the kept options (as Python lists: grouped by order, chosen first), as
    :meth:`Sourcer.decide` builds them: the chosen option is the decision (``BEST_PLAN`` first),
    the others its alternatives; nothing is refused (every option is a feasible edge)."""
    targets, service_ids, congested = m.targets, m.service_ids, m.congested.tolist()
    why: dict[tuple[int, bool, bool], tuple[str, ...]] = {}
    money: dict[int, Decimal] = {}
    dates: dict[int, date] = {}
    texts: dict[tuple[tuple[str, ...], int], list[str]] = {}
    out: list[tuple[Order, RouteDecision]] = []
    alts: list[Alternative] = []
    current = -1
    for who, i, j, score, late, eta, cents, p, co2, svc, tags in zip(
        kept["owner"], kept["row"], kept["col"], kept["score"], kept["late"], kept["eta"], kept["cents"],
        kept["p"], kept["co2"], kept["svc"], kept["tags"], strict=True,
    ):  # fmt: skip
        o = movable[i]
        key = (late, congested[j], targets[j] == o.node_id)
        reasons = why.get(key)
        if reasons is None:
            reasons = why[key] = move_reasons(*key)
        if who == current:
            plain = texts.get((reasons, tags))
            if plain is None:
                plain = texts[(reasons, tags)] = [str(r) for r in (*reasons, *_TAGS[tags])]
            alts.append(_trusted_alternative(targets[j], service_ids[svc], round(score, 2), list(plain), round(co2, 3)))
            continue
        current, alts = who, []
        cost = money.get(cents)
        if cost is None:
            cost = money[cents] = Decimal(cents).scaleb(-2)
        day = dates.get(eta)
        if day is None:
            day = dates[eta] = date.fromordinal(eta)
        decision = trusted_decision(
            {
                "order_id": o.id, "current_node_id": o.node_id, "current_service_id": o.carrier_service_id,
                "promised_date": o.promised_date, "node_id": targets[j], "carrier_service_id": service_ids[svc],
                "score": round(score, 2), "cost": cost, "eta": day, "meets_promise": late == 0,
                "p_on_time": round(p, 4), "co2e_kg": round(co2, 3),
                "reasons": [Reason.BEST_PLAN, *reasons, *_TAGS[tags]], "alternatives": alts, "rejected": {},
                "split_legs": {},
            }
        )  # fmt: skip
        out.append((o, decision))
    return out
