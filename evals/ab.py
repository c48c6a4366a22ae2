"""A/B replay of sourcing configurations on the digital twin.

The same historical orders (a seeded network's orders) are replayed through two
:class:`~agents.sourcing.SourcingWeights`: each arm decides every order with the sourcing scorer
(the :func:`~agents.sourcing.rank_nodes` loop: one twin view, one stock snapshot, consumed greedily
in the same order, splitting an order over two nodes only when no node can serve it whole). Orders
are replayed as if they had just arrived: no node yet, carrier chosen by the twin, stock as on
hand before any reservation. Per arm: cost to serve, on-time rate, split rate and CO2e per order, each with a
seeded bootstrap confidence interval, and the paired difference B - A with its own interval (the
same resampled orders in both arms), which is what says whether the arms really differ.

This module only reads the network; nothing it does is a write.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from agents.optimize import gc_paused
from agents.score_matrix import ScoreMatrix, rescored, score_matrix
from agents.sourcing import Sourcer, SourcingWeights, order_needs, p_on_time
from core.clock import Clock
from core.db import Database
from core.domain import NodeStatus, Order, OrderStatus
from tools.adapters.embedded.oms import list_order_records, validate_orders
from tools.adapters.protocols import Adapters, OrderFilter
from tools.twin import TwinView


@dataclass(frozen=True)
class Outcome:
    """One order's decision in one arm."""

    served: bool
    cost: float
    on_time: bool
    split: bool
    co2e_kg: float = 0.0
    """Estimated kg CO2e of the chosen option(s) (0 when not served)."""


class Interval(BaseModel):
    mean: float
    low: float
    high: float

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high


class ArmReport(BaseModel):
    name: str
    weights: dict[str, float | int]
    orders: int
    served: int
    cost_to_serve: Interval
    """Mean cost to serve (USD) per served order."""
    on_time_rate: Interval
    split_rate: Interval
    co2e_per_order: Interval
    """Mean estimated kg CO2e per served order."""


class ABReport(BaseModel):
    orders: int
    resamples: int
    seed: int
    confidence: float
    a: ArmReport
    b: ArmReport
    diff: dict[str, Interval] = Field(description="B - A per metric, paired bootstrap")

    def significant(self, metric: str) -> bool:
        """Whether the paired interval of B - A excludes zero."""
        d = self.diff[metric]
        return d.low > 0 or d.high < 0


def replay_orders(adapters: Adapters, today: date, *, limit: int | None = None) -> list[Order]:
    """The network's orders (oldest first), reset to "just arrived" today: no node, no carrier,
    and the promise as many days out as it was when the order was placed."""
    orders = adapters.oms.list_orders(OrderFilter(), limit=limit or 1_000_000, with_lines=True)
    out = []
    for o in orders:
        if not o.lines:
            continue
        lead = max(0, (o.promised_date - o.created_at.date()).days)
        out.append(
            o.model_copy(
                update={
                    "node_id": None,
                    "carrier_service_id": None,
                    "status": OrderStatus.CREATED,
                    "promised_date": today + timedelta(days=lead),
                }
            )
        )
    return out


REPLAY_LIMIT = 1_000_000
"""At most this many orders are replayed (:func:`replay_orders` asks the OMS for as many)."""


def read_replay_orders(db: Database, today: date, *, limit: int | None = None) -> list[Order]:
    """:func:`replay_orders` read as the OMS adapter's records (two queries: the orders, then
    their lines), reset, then validated in one call
    (:func:`~tools.adapters.embedded.oms.validate_orders`): the same orders, equal field by
    field (a test holds them together).

    Resetting the records, not the models, builds each order once instead of building it in the
    OMS and copying it with a new promise (at 50k orders that copy was ~2 s of the replay's ~6.5 s).
    Read-only."""
    records = list_order_records(db, OrderFilter(), limit=limit or REPLAY_LIMIT, with_lines=True)
    out: list[dict[str, Any]] = []
    for rec in records:
        if not rec["lines"]:
            continue
        lead = max(0, (rec["promised_date"] - rec["created_at"].date()).days)
        rec.update(status=OrderStatus.CREATED, node_id=None, carrier_service_id=None)
        rec["promised_date"] = today + timedelta(days=lead)
        out.append(rec)
    return validate_orders(out)


def stock_on_hand(adapters: Adapters) -> dict[str, dict[str, int]]:
    atp: dict[str, dict[str, int]] = defaultdict(dict)
    for p in adapters.wms.inventory():
        atp[p.sku][p.node_id] = p.on_hand
    return dict(atp)


def decide_all(
    orders: Sequence[Order],
    view: TwinView,
    stock: dict[str, dict[str, int]],
    weights: SourcingWeights,
    *,
    vectorised: bool = True,
) -> list[Outcome]:
    """Every order decided in turn, consuming stock and capacity as it goes.

    Vectorised (the default), every order is scored at every node once with numpy
    (:func:`agents.score_matrix.score_matrix`) and the loop only checks the running stock and adds
    each node's queue shift to the few numbers of one order; an order no node can serve whole goes
    to the scalar scorer for its split. The decisions are the scalar loop's (a test holds them
    together); 50k orders take ~1 s an arm instead of ~15 s."""
    return decide_arms(orders, view, stock, [weights], vectorised=vectorised)[0]


def decide_arms(
    orders: Sequence[Order],
    view: TwinView,
    stock: dict[str, dict[str, int]],
    arms: Sequence[SourcingWeights],
    *,
    vectorised: bool = True,
) -> list[list[Outcome]]:
    """:func:`decide_all` for each arm's weights, from one snapshot of the orders into arrays (an
    arm only re-weighs the score, :func:`agents.score_matrix.rescored`)."""
    nodes = sorted(n.id for n in view.nodes.values() if n.status is not NodeStatus.CLOSED)
    base = None
    if vectorised and orders and nodes and arms:
        base = score_matrix(Sourcer(view, stock, arms[0]), list(orders), nodes)
    shared = None if base is None else _Shared.of(base)
    out: list[list[Outcome]] = []
    for weights in arms:
        src = Sourcer(view, stock, weights)
        if base is None or shared is None:
            out.append([_decide_one(src, o, nodes) for o in orders])
        else:
            out.append(_Replay(src, rescored(base, weights), nodes, shared).run())
    return out


def _decide_one(src: Sourcer, o: Order, nodes: list[str]) -> Outcome:
    """One order with the scalar scorer: its best node (or split), consumed from ``src``."""
    d = src.rank(o, nodes, allow_split=True)
    if d.node_id is not None:
        src.assign(o, d.node_id)
    elif d.split_legs:
        need = order_needs(o)
        for node_id, skus in d.split_legs.items():
            for sku in skus:
                src.atp.setdefault(sku, {})[node_id] = src.atp.get(sku, {}).get(node_id, 0) - need[sku]
            src.added[node_id] += 1
    served = d.node_id is not None or bool(d.split_legs)
    return Outcome(
        served=served,
        cost=float(d.cost or Decimal(0)) if served else 0.0,
        on_time=served and d.meets_promise,
        split=bool(d.split_legs),
        co2e_kg=float(d.co2e_kg or 0.0) if served else 0.0,
    )


UNSERVED = Outcome(served=False, cost=0.0, on_time=False, split=False)


@functools.lru_cache(maxsize=4096)
def _terms(late_w: float, miss_w: float, slack: int, rate: float) -> float:
    """The score's lateness and miss-risk terms at ``slack`` days (a handful of (slack, carrier
    rate) pairs recur ~200k times an arm at 50k orders, hence the cache)."""
    late = max(0, -slack)
    return late_w * late + miss_w * (1.0 - p_on_time(rate, slack))


@dataclass(frozen=True)
class _Shared:
    """What every arm reads of one score matrix, turned into Python lists once (only the score
    differs between arms): each order's needs, the targets that could serve it (service, and the
    stock before the replay), and per (order, target) slack, carrier on-time rate, cents and CO2e."""

    needs: list[dict[str, int]]
    feasible: list[list[int]]
    slack: list[list[int]]
    rate: list[list[float]]
    cents: list[list[int]]
    co2: list[list[float]]

    @classmethod
    def of(cls, m: ScoreMatrix) -> _Shared:
        targets = range(len(m.targets))
        return cls(
            needs=[order_needs(o) for o in m.orders],
            feasible=[list(compress(targets, row)) for row in m.feasible.tolist()],
            slack=m.slack.tolist(),
            rate=m.on_time_rate.tolist(),
            cents=m.cost_cents.tolist(),
            co2=m.co2e.tolist(),
        )


class _Replay:
    """The scalar loop's decisions from a score matrix: per order, the nodes that can serve it
    (service, and the stock still left), each scored with its queue shift so far, the lowest
    score winning (the first node by id on a tie, as :meth:`Sourcer.decide` sorts).

    The running stock is kept per SKU as one list over the targets, so checking an order's lines at
    every target reads list items instead of two dict lookups per (line, target); ``src.atp`` (what
    the scalar split reads) is brought up to date for an order's SKUs only when it goes to the split."""

    def __init__(self, src: Sourcer, m: ScoreMatrix, nodes: list[str], shared: _Shared) -> None:
        self.src, self.m, self.nodes, self.shared = src, m, nodes, shared
        self.shift = [src._shift(nd) for nd in nodes]
        w = src.weights
        self.late_w, self.miss_w = w.late_day, w.miss_risk
        skus = {s for need in shared.needs for s in need}
        self.stock = {s: [src.atp.get(s, {}).get(nd, 0) for nd in nodes] for s in skus}

    def _moved(self, score: float, slack: int, rate: float, days: int) -> tuple[float, int]:
        """Score and slack when the order ships ``days`` later (lateness and miss risk move)."""
        new = slack - days
        w, m = self.late_w, self.miss_w
        return score - _terms(w, m, slack, rate) + _terms(w, m, new, rate), new

    def _split(self, o: Order, need: dict[str, int], rows: list[tuple[list[int], int]]) -> Outcome:
        """No node can serve ``o`` whole: the scalar scorer's split, as :meth:`Sourcer.decide`
        takes it when every candidate is refused (the candidates need not be scored again).

        :meth:`Sourcer.split` finds none for an order of one SKU, nor when a SKU is short at every
        node (that SKU is left for the second leg, and no node can ship it): late in a long replay
        most orders are refused so, and the split's per-node ranking is not run for them."""
        if len(need) < 2 or any(max(row) < q for row, q in rows):
            return UNSERVED
        src = self.src
        for s, (row, _) in zip(need, rows, strict=True):
            src.atp.setdefault(s, {}).update(zip(self.nodes, row, strict=True))
        sp = src.split(o, self.nodes)
        if sp is None:
            return UNSERVED
        for node_id, skus in sp.split_legs:
            j = self.nodes.index(node_id)
            for s in skus:
                self.stock[s][j] -= need[s]
            src.added[node_id] += 1
        self.shift = [src._shift(nd) for nd in self.nodes]
        return Outcome(served=True, cost=float(sp.cost), on_time=sp.meets_promise, split=True,
                       co2e_kg=float(round(sp.co2e_kg, 3)))  # fmt: skip

    def _best(self, i: int, rows: list[tuple[list[int], int]], score: list[float]) -> tuple[int, int]:
        """The winning target of order ``i`` and its slack with the queue shift; (-1, 0) if none
        has service and every line in stock."""
        shift, best_j, best_sc, best_sl = self.shift, -1, 0.0, 0
        for j in self.shared.feasible[i]:
            for row, q in rows:
                if row[j] < q:
                    break
            else:
                sc, sl = score[j], self.shared.slack[i][j]
                if shift[j]:
                    sc, sl = self._moved(sc, sl, self.shared.rate[i][j], shift[j])
                if best_j < 0 or sc < best_sc:
                    best_j, best_sc, best_sl = j, sc, sl
        return best_j, best_sl

    def run(self) -> list[Outcome]:
        src, nodes, sh, stock = self.src, self.nodes, self.shared, self.stock
        score = self.m.score.tolist()
        out: list[Outcome] = []
        for i, need in enumerate(sh.needs):
            rows = [(stock[s], q) for s, q in need.items()]
            j, sl = self._best(i, rows, score[i])
            if j < 0:
                out.append(self._split(self.m.orders[i], need, rows))
                continue
            for row, q in rows:
                row[j] -= q
            src.added[nodes[j]] += 1
            self.shift[j] = src._shift(nodes[j])
            out.append(Outcome(True, sh.cents[i][j] / 100, sl >= 0, False, round(sh.co2[i][j], 3)))
        return out


METRICS = ("cost_to_serve", "on_time_rate", "split_rate", "co2e_per_order")
CHUNK_CELLS = 200_000
"""(resample, order) cells drawn at once: index array and counts of a chunk stay in the CPU cache
(32 resamples a chunk at 50k orders, ~20 MB, took 1.5 s of CPU for 1,000 resamples; 4, ~2 MB,
0.5 s). The draws, and so the intervals, do not depend on the chunk size."""


def _columns(rows: Sequence[Outcome]) -> npt.NDArray[np.float64]:
    """(5, n): served, cost (0 when not served), on time, split, CO2e (0 when not served)."""
    return np.array(
        [[r.served for r in rows], [r.cost if r.served else 0.0 for r in rows], [r.on_time for r in rows],
         [r.split for r in rows], [r.co2e_kg if r.served else 0.0 for r in rows]],
        dtype=np.float64,
    ).reshape(5, len(rows))  # fmt: skip


def _metrics(sums: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
    """(..., 4) metrics from column sums (..., 5) over ``n`` orders: mean cost per served order,
    on-time rate, split rate, mean CO2e per served order."""
    served = sums[..., 0]
    cost = np.divide(sums[..., 1], served, out=np.zeros_like(served), where=served > 0)
    co2e = np.divide(sums[..., 4], served, out=np.zeros_like(served), where=served > 0)
    return np.stack([cost, sums[..., 2] / max(n, 1), sums[..., 3] / max(n, 1), co2e], axis=-1)


def _interval(point: float, samples: npt.NDArray[np.float64], confidence: float) -> Interval:
    samples = np.sort(samples)
    lo = samples[int((1 - confidence) / 2 * (len(samples) - 1))]
    hi = samples[int((1 + confidence) / 2 * (len(samples) - 1))]
    return Interval(mean=round(point, 4), low=round(float(lo), 4), high=round(float(hi), 4))


def compare_arms(
    a: Sequence[Outcome],
    b: Sequence[Outcome],
    *,
    weights_a: SourcingWeights,
    weights_b: SourcingWeights,
    resamples: int = 1000,
    seed: int = 7,
    confidence: float = 0.95,
) -> ABReport:
    """Per-arm metrics and paired B - A differences with percentile bootstrap intervals.

    Vectorised: each resample is a row of order indices (the same rows for both arms, so the
    difference is paired), summed column-wise with numpy in chunks; 50k orders x 1,000 resamples
    takes about a second where the per-order Python loop took minutes."""
    n = len(a)
    ca, cb = _columns(a), _columns(b)
    rng = np.random.default_rng(seed)
    boot_a = np.zeros((resamples, len(METRICS)))
    boot_b = np.zeros((resamples, len(METRICS)))
    chunk = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        idx = rng.integers(0, max(n, 1), size=(k, n), dtype=np.int32) + (np.arange(k, dtype=np.int32) * n)[:, None]
        # How often each order is drawn in each resample; sums are then one matrix product.
        counts = np.bincount(idx.ravel(), minlength=k * n).reshape(k, n).astype(np.float64)
        boot_a[start : start + k] = _metrics(counts @ ca.T, n)
        boot_b[start : start + k] = _metrics(counts @ cb.T, n)
    pa, pb = _metrics(ca.sum(axis=1), n), _metrics(cb.sum(axis=1), n)
    diff = boot_b - boot_a

    def arm(name: str, rows: Sequence[Outcome], point: npt.NDArray[np.float64], boot: npt.NDArray[np.float64],
            w: SourcingWeights) -> ArmReport:  # fmt: skip
        return ArmReport(
            name=name,
            weights=w.model_dump(),
            orders=len(rows),
            served=sum(r.served for r in rows),
            **{m: _interval(float(point[i]), boot[:, i], confidence) for i, m in enumerate(METRICS)},
        )

    return ABReport(
        orders=n,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        a=arm("a", a, pa, boot_a, weights_a),
        b=arm("b", b, pb, boot_b, weights_b),
        diff={m: _interval(float(pb[i] - pa[i]), diff[:, i], confidence) for i, m in enumerate(METRICS)},
    )


def ab_replay(
    adapters: Adapters,
    clock: Clock,
    weights_a: SourcingWeights,
    weights_b: SourcingWeights,
    *,
    db: Database | None = None,
    limit: int | None = None,
    resamples: int = 1000,
    seed: int = 7,
    confidence: float = 0.95,
    on_phase: Callable[[str], None] | None = None,
) -> ABReport:
    """Replay the network's orders through both configurations and compare them.

    With ``db`` (the adapters' database) the orders are read in bulk (:func:`read_replay_orders`),
    else through the OMS. ``on_phase`` is called with ``"loaded"``, ``"decided"`` and
    ``"compared"`` as each phase ends (the bench times them).

    The cyclic garbage collector is paused throughout: the replay builds a million small acyclic
    objects (orders, lists from arrays, outcomes) and the collector's passes over that growing heap
    took about a third of its CPU time; they are freed before it runs again. The pause is the
    optimiser's (one counted pause per process, so overlapping pauses in other threads restore the
    collector once)."""
    mark = on_phase or (lambda _phase: None)
    with gc_paused():
        today = clock.today()
        orders = (
            replay_orders(adapters, today, limit=limit) if db is None else read_replay_orders(db, today, limit=limit)
        )
        view = TwinView.load(adapters, clock)
        view.prepare(orders)
        stock = stock_on_hand(adapters)
        mark("loaded")
        out_a, out_b = decide_arms(orders, view, stock, [weights_a, weights_b])
        mark("decided")
        report = compare_arms(
            out_a, out_b, weights_a=weights_a, weights_b=weights_b, resamples=resamples, seed=seed,
            confidence=confidence,
        )  # fmt: skip
        # Free the replay's objects while the collector is off (they hold no cycles: reference
        # counting frees them); alive when it is turned on again, its first pass would walk them all.
        del orders, view, stock, out_a, out_b
    mark("compared")
    return report


def render_ab(r: ABReport) -> str:
    pct = int(r.confidence * 100)
    lines = [
        f"# Sourcing A/B replay: {r.orders} orders, {r.resamples} bootstrap resamples (seed {r.seed}), {pct}% CIs",
        "",
        "| metric | A | B | B - A | differs |",
        "|---|---|---|---|---|",
    ]
    for m in METRICS:
        ia, ib, d = getattr(r.a, m), getattr(r.b, m), r.diff[m]
        lines.append(
            f"| {m} | {ia.mean:.4g} [{ia.low:.4g}, {ia.high:.4g}] | {ib.mean:.4g} [{ib.low:.4g}, {ib.high:.4g}] "
            f"| {d.mean:+.4g} [{d.low:+.4g}, {d.high:+.4g}] | {'yes' if r.significant(m) else 'no'} |"
        )
    lines += ["", f"A served {r.a.served} of {r.a.orders}; B served {r.b.served} of {r.b.orders}."]
    return "\n".join(lines) + "\n"
