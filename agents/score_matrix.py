"""Vectorised sourcing scores: every order at every candidate node, from one twin snapshot, as arrays.

:meth:`agents.sourcing.Sourcer.score` prices one (order, node) pair in Python (a quote per carrier
service, Decimal money, a great-circle distance): about 40 microseconds a pair, so a batch of
100k orders over 7 nodes spends half a minute there. This module computes the same numbers for
the whole batch with numpy: distances and zones once per (ship-to address, node), transit and
availability once per (service, address, node), money in exact integer units (a rate's base and
per-kg price in millionths of a dollar, weights in grams, rounded half up to the cent as
:func:`core.shipping.shipping_cost` does), the service chosen as :meth:`tools.twin.TwinView.fulfil`
chooses it (the order's own when it can ship, else the cheapest, then earliest, of its level).

Scores agree with the scalar scorer to floating-point rounding (a test holds them together); a
:class:`~agents.sourcing.Candidate` is built only for the pairs a plan shows. It only reads the
view; when the data cannot be held exactly in these units it returns ``None`` and the caller
scores with the scalar scorer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from agents.sourcing import (
    AIR_DISTANCE_ADD_KM,
    CO2E_KG_PER_TKM_AIR,
    CO2E_KG_PER_TKM_ROAD,
    KM_PER_MILE,
    ROAD_CIRCUITY,
    Candidate,
    Reason,
    Sourcer,
    SourcingWeights,
    feasible_candidate,
    late_by,
)
from core import geo
from core.domain import RESERVING_STATUSES, Carrier, CarrierService, CarrierStatus, Node, NodeStatus, Order
from core.shipping import DEGRADED_DELAY_DAYS, availability, ship_date
from tools.twin import TwinView

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MICRO = 1_000_000


def _micro(value: Decimal) -> int | None:
    """``value`` in millionths, or ``None`` when it has finer digits (then arrays are not exact)."""
    scaled = value * MICRO
    return int(scaled) if scaled == scaled.to_integral_value() else None


@dataclass
class ScoreMatrix:
    """(orders x targets) arrays of the scorer's numbers; ``feasible`` False where it would refuse."""

    orders: list[Order]
    targets: list[str]
    feasible: BoolArray
    score: FloatArray
    cost_cents: IntArray
    eta: IntArray
    """Date ordinals."""
    slack: IntArray
    """Days between ETA and promise (negative: late)."""
    on_time_rate: FloatArray
    p_on_time: FloatArray
    miles: FloatArray
    co2e: FloatArray
    service: IntArray
    service_ids: list[str]
    congested: BoolArray
    """(T,) targets marked congested."""
    serviceable: BoolArray | None = None
    """Where a service can ship and the node is open, stock aside (``feasible`` without the stock
    check: the scorer's ``check_stock=False``)."""
    needs: Needs | None = None
    """Every order's units per SKU, worked out once for the batch (greedy's stock checks and
    moves and the optimiser's batch read it instead of working them out again per order)."""

    def columns(self, cols: list[int]) -> ScoreMatrix:
        """The matrix for only these targets (in this order): one matrix scores the targets and the
        sources a plan needs, and each use takes its columns."""
        idx = np.asarray(cols, dtype=np.int64)
        pick = {
            name: getattr(self, name)[:, idx]
            for name in ("feasible", "score", "cost_cents", "eta", "slack", "on_time_rate", "p_on_time", "miles",
                         "co2e", "service")
        }  # fmt: skip
        serviceable = None if self.serviceable is None else self.serviceable[:, idx]
        return replace(
            self, targets=[self.targets[j] for j in cols], congested=self.congested[idx], serviceable=serviceable,
            **pick,
        )  # fmt: skip

    def candidates(self, rows: IntArray, cols: IntArray) -> list[Candidate]:
        """:meth:`candidate` for many pairs at once: the arrays are gathered and turned into Python
        values in one go (numpy scalar access per field cost ~25 us a candidate). The values
        candidates share (reason codes, money, dates: all immutable) are built once per distinct
        value, and each candidate without the frozen dataclass's ``__init__``."""
        slack = self.slack[rows, cols].tolist()
        congested = self.congested[cols].tolist()
        own = [self.targets[j] == self.orders[i].node_id for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]
        money: dict[int, Decimal] = {}
        days: dict[int, date] = {}
        why: dict[tuple[int, bool, bool], tuple[str, ...]] = {}
        targets, service_ids = self.targets, self.service_ids
        out: list[Candidate] = []
        for k, (j, score, cents, eta, p, mi, co2, svc) in enumerate(
            zip(
                cols.tolist(), self.score[rows, cols].tolist(), self.cost_cents[rows, cols].tolist(),
                self.eta[rows, cols].tolist(), self.p_on_time[rows, cols].tolist(), self.miles[rows, cols].tolist(),
                self.co2e[rows, cols].tolist(), self.service[rows, cols].tolist(), strict=True,
            )
        ):  # fmt: skip
            late = max(0, -slack[k])
            key = (late, congested[k], own[k])
            reasons = why.get(key)
            if reasons is None:
                reasons = why[key] = move_reasons(*key)
            cost = money.get(cents)
            if cost is None:
                cost = money[cents] = Decimal(cents).scaleb(-2)
            day = days.get(eta)
            if day is None:
                day = days[eta] = date.fromordinal(eta)
            out.append(feasible_candidate(targets[j], service_ids[svc], score, cost, day, late, p, mi, reasons, co2))
        return out

    def candidate(self, i: int, j: int) -> Candidate:
        """The scorer's :class:`Candidate` for order ``i`` at target ``j`` (feasible pairs only)."""
        late = max(0, -int(self.slack[i, j]))
        return Candidate(
            node_id=self.targets[j],
            service_id=self.service_ids[int(self.service[i, j])],
            feasible=True,
            score=float(self.score[i, j]),
            cost=Decimal(int(self.cost_cents[i, j])).scaleb(-2),
            eta=date.fromordinal(int(self.eta[i, j])),
            late_days=late,
            p_on_time=float(self.p_on_time[i, j]),
            distance_mi=float(self.miles[i, j]),
            reasons=move_reasons(late, bool(self.congested[j]), self.targets[j] == self.orders[i].node_id),
            co2e_kg=float(self.co2e[i, j]),
        )


@dataclass(frozen=True)
class Needs:
    """Every order's units per SKU as flat lists (CSR): order ``i``'s SKUs (indexes into ``skus``)
    and quantities lie between ``ptr[i]`` and ``ptr[i + 1]``, in the order
    :func:`agents.sourcing.order_needs` gives them (first line of each SKU first, repeated SKUs
    summed). SKUs are indexed in order of first appearance in the batch (the optimiser's rows
    follow that order, so its LP is laid out as before)."""

    skus: list[str]
    index: dict[str, int]
    ptr: list[int]
    sku: list[int]
    qty: list[int]

    def of(self, i: int) -> dict[str, int]:
        """Order ``i``'s needs as ``order_needs`` gives them."""
        skus, sku, qty = self.skus, self.sku, self.qty
        return {skus[sku[p]]: qty[p] for p in range(self.ptr[i], self.ptr[i + 1])}


def needs_layout(orders: Sequence[Order]) -> Needs:
    """The batch's :class:`Needs`, one pass over the orders' lines (a one-line order's needs are
    its line: no dict per order)."""
    index: dict[str, int] = {}
    ptr = [0]
    sku: list[int] = []
    qty: list[int] = []
    for o in orders:
        lines = o.lines
        if len(lines) == 1:
            line = lines[0]
            sku.append(index.setdefault(line.sku, len(index)))
            qty.append(line.quantity)
        else:
            mine: dict[str, int] = {}
            for ln in lines:
                mine[ln.sku] = mine.get(ln.sku, 0) + ln.quantity
            for s, q in mine.items():
                sku.append(index.setdefault(s, len(index)))
                qty.append(q)
        ptr.append(len(sku))
    return Needs(list(index), index, ptr, sku, qty)


def move_reasons(late: int, congested: bool, own: bool) -> tuple[str, ...]:
    """The scorer's reason codes of a feasible candidate (as :meth:`Sourcer._priced` gives them)."""
    reasons: list[str] = [Reason.MEETS_PROMISE if late == 0 else late_by(late)]
    if congested:
        reasons.append(Reason.CONGESTED)
    if own:
        reasons.append(Reason.CURRENT_NODE)
    return tuple(reasons)


def score_matrix(src: Sourcer, orders: list[Order], targets: list[str]) -> ScoreMatrix | None:
    """Score every order at every target with ATP and queues as ``src`` holds them (no batch
    shift: ``src`` must not have assigned anything). ``None`` when money cannot be held exactly."""
    if any(src.added.values()):
        return None
    view, w = src.view, src.weights
    n, T = len(orders), len(targets)
    nodes = [view.nodes[t] for t in targets]
    services = list(view.services.values())
    s_index = {s.id: k for k, s in enumerate(services)}
    S = len(services)
    pick_pack = [_micro(nd.pick_pack_cost) for nd in nodes]
    if any(p is None or p % 10_000 for p in pick_pack):
        return None
    # Per ship-to address and target: miles, zone, and each carrier's availability.
    addr_ids = sorted({o.ship_to_id for o in orders})
    a_index = {a: k for k, a in enumerate(addr_ids)}
    carriers = list(view.carriers.values())
    c_index = {c.id: k for k, c in enumerate(carriers)}
    miles_at, zone_at, up = _per_address(view, nodes, addr_ids, carriers)
    tables = _service_tables(view, services)
    if tables is None:
        return None
    transit, base, per_kg, has_rate = tables
    now = view.clock.now()
    shipped = np.array([ship_date(nd, now).toordinal() for nd in nodes], dtype=np.int64)
    # Per order.
    addr = np.array([a_index[o.ship_to_id] for o in orders], dtype=np.int64)
    grams = np.array([round(round(o.weight_kg, 3) * 1000) for o in orders], dtype=np.int64)
    weight = np.array([o.weight_kg for o in orders], dtype=np.float64)
    promised = np.array([o.promised_date.toordinal() for o in orders], dtype=np.int64)
    levels = sorted({s.level for s in services} | {o.service_level for o in orders})
    l_index = {lv: k for k, lv in enumerate(levels)}
    svc_level = np.array([l_index[s.level] for s in services], dtype=np.int64)
    level_of = np.array([l_index[o.service_level] for o in orders], dtype=np.int64)[:, None] == svc_level[None, :]
    own = np.array([s_index.get(o.carrier_service_id or "", -1) for o in orders], dtype=np.int64)
    miles = miles_at[addr]
    zone = zone_at[addr]
    # Every service's cost (cents, rounded half up as Decimal does), ETA and whether it can ship.
    big = np.iinfo(np.int64).max
    best_key = np.full((n, T), big, dtype=np.int64)
    best = np.full((n, T), -1, dtype=np.int64)
    own_ok = np.zeros((n, T), dtype=np.bool_)
    cents_all = np.zeros((S, n, T), dtype=np.int64)
    eta_all = np.zeros((S, n, T), dtype=np.int64)
    for k, svc in enumerate(services):
        micro_thousandths = base[k][zone] * 1000 + per_kg[k][zone] * grams[:, None]
        cents_all[k] = (micro_thousandths + 5_000_000) // 10_000_000
        eta_all[k] = shipped[None, :] + transit[k][zone]
        ok = has_rate[k][zone] & up[c_index[svc.carrier_id]][addr]
        own_ok |= (own == k)[:, None] & ok
        # Cheapest, then earliest; the first service in the view's order wins a tie.
        key = cents_all[k] * 100_000 + (eta_all[k] - shipped[None, :])
        better = ok & level_of[:, k][:, None] & (key < best_key)
        best_key = np.where(better, key, best_key)
        best = np.where(better, k, best)
    chosen = np.where(own_ok, own[:, None], best)
    feasible = chosen >= 0
    pick = np.maximum(chosen, 0)
    rows, cols = np.indices((n, T))
    cents = cents_all[pick, rows, cols] + np.array([p // 10_000 for p in pick_pack if p is not None])[None, :]
    eta = eta_all[pick, rows, cols]
    # Stock: every line at the target (an order's own reservation counts at its own node).
    needs = needs_layout(orders)
    atp = np.array([[src.atp.get(s, {}).get(t, 0) for t in targets] for s in needs.skus], dtype=np.int64)
    atp = atp.reshape(-1, T)
    ptr = np.array(needs.ptr, dtype=np.int64)
    sku_of = np.array(needs.sku, dtype=np.int64)
    qty_of = np.array(needs.qty, dtype=np.int64)
    short = np.zeros((n, T), dtype=np.int64)
    if len(sku_of):
        lacking = (atp[sku_of] < qty_of[:, None]).astype(np.int64)
        short = np.add.reduceat(lacking, ptr[:-1].clip(max=len(sku_of) - 1), axis=0) * (np.diff(ptr) > 0)[:, None]
    t_index = {t: j for j, t in enumerate(targets)}
    own_t = np.array(
        [t_index.get(o.node_id or "", -1) if o.status in RESERVING_STATUSES else -1 for o in orders], dtype=np.int64
    )
    feasible &= (short == 0) | (own_t[:, None] == np.arange(T)[None, :])
    closed = np.array([nd.status is NodeStatus.CLOSED for nd in nodes], dtype=np.bool_)
    feasible &= ~closed[None, :]
    serviceable = (chosen >= 0) & ~closed[None, :]
    # The score, term by term in the scorer's order.
    carrier_of = np.array([c_index[s.carrier_id] for s in services], dtype=np.int64)
    on_time = np.array([c.on_time_rate for c in carriers], dtype=np.float64)[carrier_of[pick]]
    slack = promised[:, None] - eta
    late = np.maximum(0, -slack)
    miss = np.clip(1.0 - on_time, 0.0, 1.0)
    p_on = np.where(slack < 0, 0.0, 1.0 - miss ** (np.maximum(slack, 0) + 1))
    air = np.array([s.air for s in services], dtype=np.bool_)[pick]
    km = miles * KM_PER_MILE
    tonnes = np.maximum(0.0, weight)[:, None] / 1000.0
    co2 = np.where(air, tonnes * (km + AIR_DISTANCE_ADD_KM) * CO2E_KG_PER_TKM_AIR,
                   tonnes * km * ROAD_CIRCUITY * CO2E_KG_PER_TKM_ROAD)  # fmt: skip
    congested = np.array([nd.status is NodeStatus.CONGESTED for nd in nodes], dtype=np.bool_)
    score = _score(w, cents, late, p_on, miles, co2, congested)
    return ScoreMatrix(
        orders=orders,
        targets=targets,
        feasible=feasible,
        score=np.where(feasible, score, math.inf),
        cost_cents=cents,
        eta=eta,
        slack=slack,
        on_time_rate=on_time,
        p_on_time=p_on,
        miles=miles,
        co2e=co2,
        service=pick,
        service_ids=[s.id for s in services],
        congested=congested,
        serviceable=serviceable,
        needs=needs,
    )


def _per_address(
    view: TwinView, nodes: list[Node], addr_ids: list[str], carriers: list[Carrier]
) -> tuple[FloatArray, IntArray, BoolArray]:
    """Miles and zone per (ship-to address, target), and whether each carrier can ship there:
    computed once per address, not per order (a batch has far fewer addresses than orders).
    Only carriers in an outage can be down, so only they are asked."""
    A, T = len(addr_ids), len(nodes)
    miles_at = np.zeros((A, T))
    zone_at = np.zeros((A, T), dtype=np.int64)
    up = np.ones((len(carriers), A, T), dtype=np.bool_)
    out = [(c, carrier) for c, carrier in enumerate(carriers) if carrier.status is CarrierStatus.OUTAGE]
    for a, addr_id in enumerate(addr_ids):
        address = view.addresses[addr_id]
        for j, nd in enumerate(nodes):
            miles_at[a, j] = geo.distance_miles(nd.lat, nd.lon, address.lat, address.lon)
            zone_at[a, j] = geo.zone_for_distance(float(miles_at[a, j]))
            for c, carrier in out:
                up[c, a, j] = availability(carrier, nd.state, address.state)[0]
    return miles_at, zone_at, up


def _service_tables(
    view: TwinView, services: list[CarrierService]
) -> tuple[IntArray, IntArray, IntArray, BoolArray] | None:
    """Per (service, zone): transit days (a degraded carrier's delay included), the rate's base and
    per-kg price in millionths of a dollar, and whether a rate exists. ``None`` when a rate has
    finer digits than millionths (then integer money would not be exact)."""
    S = len(services)
    transit = np.zeros((S, 9), dtype=np.int64)
    base = np.zeros((S, 9), dtype=np.int64)
    per_kg = np.zeros((S, 9), dtype=np.int64)
    has_rate = np.zeros((S, 9), dtype=np.bool_)
    for k, svc in enumerate(services):
        delay = DEGRADED_DELAY_DAYS if view.carriers[svc.carrier_id].status is CarrierStatus.DEGRADED else 0
        for z in range(9):
            days = svc.transit_days_by_zone[min(max(z - 2, 0), len(svc.transit_days_by_zone) - 1)]
            transit[k, z] = days + delay
            card = view.rates.get(svc.id, {}).get(z)
            if card is None:
                continue
            rb, rp = _micro(card.base), _micro(card.per_kg)
            if rb is None or rp is None:
                return None
            base[k, z], per_kg[k, z], has_rate[k, z] = rb, rp, True
    return transit, base, per_kg, has_rate


def _score(
    w: SourcingWeights, cents: IntArray, late: IntArray, p_on: FloatArray, miles: FloatArray, co2: FloatArray,
    congested: BoolArray,
) -> FloatArray:  # fmt: skip
    """The scorer's score, term by term in its order (so it agrees with it to the last bit we can)."""
    score = w.cost * (cents / 100.0) + w.late_day * late + w.miss_risk * (1 - p_on)
    score = score + (w.distance_per_1000mi * miles / 1000 + w.carbon_per_kg * co2)
    out: FloatArray = score + np.where(congested, w.congested, 0.0)[None, :]
    return out


def rescored(m: ScoreMatrix, w: SourcingWeights) -> ScoreMatrix:
    """``m`` scored with other weights: everything but the score is the same (services are chosen
    by cost and time, not by weights), so two A/B arms need one snapshot into arrays, not two."""
    score = _score(w, m.cost_cents, np.maximum(0, -m.slack), m.p_on_time, m.miles, m.co2e, m.congested)
    return replace(m, score=np.where(m.feasible, score, math.inf))
