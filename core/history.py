"""Generated operating history of the embedded network, with injected incidents kept as ground truth.

The twin (:mod:`core.netgen`) is a snapshot: today's nodes, stock and open orders. Detectors,
forecasts and risk scores need the days before it, so :func:`generate_history` draws them: daily
demand per node x SKU (trend, weekly and yearly seasonality, planned promotions, over-dispersed
noise), node intake, capacity, throughput and backlog, carrier on-time rate and transit days per
lane (carrier x destination region), inbound replenishment (lead times, overdue purchase orders,
on-hand stock and lost sales per node x SKU), cycle-count shrink per node, and a stream of customer
orders for order-risk scoring. Incidents (node congestion, carrier outage, demand spike, supplier
delay, stock drift) and risky orders are injected into those series, and what was injected is kept
(:attr:`History.incidents`, :attr:`OrderEvent.risk_case`) so detectors can be scored against it.

Ids come from the seeded network: the node, SKU, carrier and customer ids (and which node stocks
which SKU) are the ones :func:`core.netgen.generate_network` writes for the same
:class:`~core.netgen.NetworkSpec`, replayed without a database.

What this module must never do: read a database, the wall clock or the global ``random``; the
same ``(seed, days, network, incidents)`` gives the same history, value for value.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Table

from core.domain import NodeType
from core.errors import ValidationFailed
from core.geo import CITIES, STATES_BY_REGION
from core.netgen import _CARRIERS, NetworkSpec, _Generator, _no_progress

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HISTORY_VERSION = "history/1"
MIN_DAYS = 28
MAX_DAYS = 3 * 366
UNITS_PER_ORDER = 3.0
"""Average units per order: node intake (orders) is demand (units) divided by this."""
UTILISATION = 0.55
"""A node's average intake as a share of its daily capacity (Monday peaks stay just below 1)."""
WEEKDAY = (1.18, 1.12, 1.06, 1.02, 0.97, 0.42, 0.23)
"""Demand by weekday, Monday first (business buyers order on weekdays)."""
_WEEKDAY_MEAN = sum(WEEKDAY) / 7
DISPERSION = 8.0
"""Gamma shape of the demand noise: Poisson with a gamma-distributed rate (negative binomial)."""
REGIONS: tuple[str, ...] = tuple(sorted(STATES_BY_REGION))
_CARRIER_SHARE = (0.34, 0.28, 0.23, 0.15)  # same order as netgen's carriers
_STATES: tuple[str, ...] = tuple(sorted({c.state for c in CITIES}))
_REGION_TRANSIT = {"Midwest": 2.4, "Northeast": 2.6, "South": 2.5, "Southeast": 2.5, "West": 3.1}


class IncidentKind(StrEnum):
    NODE_CONGESTION = "node_congestion"
    """A node's capacity drops (staff shortage, WMS trouble): picks fall, backlog grows."""
    CARRIER_OUTAGE = "carrier_outage"
    """A carrier's lanes into one region run late: on-time rate falls, transit days rise."""
    DEMAND_SPIKE = "demand_spike"
    """Unplanned demand for one SKU (all nodes, or one), several times the usual."""
    SUPPLIER_DELAY = "supplier_delay"
    """Inbound stock to a node arrives days late: purchase orders go overdue, lead times grow."""
    STOCK_DRIFT = "stock_drift"
    """Recorded stock at a node drifts from what is on the shelves: cycle-count shrink creeps up."""


INCIDENT_KINDS: tuple[IncidentKind, ...] = tuple(IncidentKind)


@dataclass(frozen=True)
class Incident:
    """One injected incident: what, where, and the days it was active (``start_day``..``end_day``,
    both inclusive, as indexes into the history's days)."""

    kind: IncidentKind
    start_day: int
    end_day: int
    magnitude: float
    """Kind-specific: capacity factor (congestion), on-time factor (outage), demand factor (spike),
    days of delay (supplier), shrink added at the end of the ramp (drift)."""
    node: str | None = None
    carrier: str | None = None
    region: str | None = None
    sku: str | None = None

    @property
    def scope(self) -> str:
        """A stable label of where it happened (``node:DC-NEWARK``, ``lane:RDG/West``, ``sku:SKU-00012``)."""
        if self.kind is IncidentKind.CARRIER_OUTAGE:
            return f"lane:{self.carrier}/{self.region}"
        if self.kind is IncidentKind.DEMAND_SPIKE:
            return f"sku:{self.sku}" if self.node is None else f"sku:{self.sku}@{self.node}"
        return f"node:{self.node}"


@dataclass(frozen=True)
class Promotion:
    """A planned promotion: known in advance, so a forecast may use it and a detector must not alarm on it."""

    sku: str
    start_day: int
    end_day: int
    lift: float


@dataclass(frozen=True)
class Lane:
    carrier: str
    region: str

    @property
    def id(self) -> str:
        return f"{self.carrier}/{self.region}"


class RiskCase(StrEnum):
    """Why an injected risky order is risky (ground truth for order-risk scoring)."""

    NEW_SHIP_TO = "new_ship_to"
    """Ships to an address the customer never used, in a state the account has no site in."""
    VALUE_SPIKE = "value_spike"
    """Worth many times what the customer usually orders."""
    VELOCITY = "velocity"
    """One of a burst of orders within hours, far above the customer's usual pace."""
    ACCOUNT_TAKEOVER = "account_takeover"
    """New ship-to, new contact e-mail domain and a high value together."""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One customer order of the generated stream (what intake would see at creation)."""

    id: str
    day: int
    hour: float
    customer: str
    ship_to_state: str
    ship_to_key: str
    """The ship-to address (street line); equal keys are the same address."""
    email_domain: str
    value: float
    units: int
    risk_case: RiskCase | None = None
    """Ground truth: the injected risk, or None for an ordinary (possibly unusual but legitimate) order."""


@dataclass(frozen=True, eq=False)
class History:
    """Daily series of one network, oldest day first; day ``i`` is ``start + i`` days.

    Arrays are indexed ``[day, ...]``; node axes follow :attr:`nodes`, SKU axes :attr:`skus`, lane
    axes :attr:`lanes`. Pairs a node does not stock have zero demand and stock."""

    seed: int
    network: NetworkSpec
    start: date
    days: int
    nodes: tuple[str, ...]
    node_types: tuple[NodeType, ...]
    skus: tuple[str, ...]
    carriers: tuple[str, ...]
    lanes: tuple[Lane, ...]
    stocked: npt.NDArray[np.bool_]
    """[node, sku]: whether the node stocks the SKU."""
    demand: IntArray
    """[day, node, sku]: units ordered."""
    node_orders: IntArray
    """[day, node]: orders received."""
    node_capacity: IntArray
    """[day, node]: orders the node could pick and ship that day."""
    node_picked: IntArray
    """[day, node]: orders picked and shipped."""
    node_backlog: IntArray
    """[day, node]: orders waiting at the end of the day."""
    lane_shipments: IntArray
    """[day, lane]: parcels handed to the carrier for the region."""
    lane_on_time: IntArray
    """[day, lane]: of those, delivered by the promise."""
    lane_transit_days: FloatArray
    """[day, lane]: mean transit days of those parcels."""
    inbound_lead_days: FloatArray
    """[day, node]: mean lead time (days) of the purchase orders received that day; NaN if none."""
    inbound_overdue: IntArray
    """[day, node]: open purchase orders past their expected arrival at the end of the day."""
    inbound_expected_days: IntArray
    """[node]: the lead time the node plans with (days)."""
    on_hand: IntArray
    """[day, node, sku]: units on hand at the end of the day."""
    lost_sales: IntArray
    """[day, node, sku]: demand the node could not serve from stock that day."""
    shrink: FloatArray
    """[day, node]: cycle-count shortfall as a share of the units counted (positive is missing stock)."""
    promotions: tuple[Promotion, ...]
    incidents: tuple[Incident, ...]
    orders: tuple[OrderEvent, ...] = field(repr=False)
    customer_states: dict[str, frozenset[str]] = field(repr=False)
    """Customer id -> the states of its addresses in the network."""
    customer_domains: dict[str, str] = field(repr=False)
    customer_sites: dict[str, frozenset[str]] = field(repr=False)
    """Customer id -> its address ids in the network (the ship-to keys of its ordinary orders)."""

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def lane_on_time_rate(self) -> FloatArray:
        """[day, lane]: on-time share (1.0 on a day without parcels)."""
        ships = self.lane_shipments.astype(np.float64)
        out: FloatArray = np.where(ships > 0, self.lane_on_time / np.maximum(ships, 1.0), 1.0)
        return out

    @property
    def node_backlog_days(self) -> FloatArray:
        """[day, node]: end-of-day backlog in days of the node's normal capacity."""
        out: FloatArray = self.node_backlog / np.maximum(self.node_capacity.max(axis=0), 1)
        return out

    def node_index(self, node_id: str) -> int:
        return self.nodes.index(node_id)

    def sku_index(self, sku: str) -> int:
        return self.skus.index(sku)

    def lane_index(self, carrier: str, region: str) -> int:
        return self.lanes.index(Lane(carrier, region))

    def day_of(self, d: date) -> int:
        return (d - self.start).days


# --- the network, replayed without a database ---------------------------------------------------


class _Replay(_Generator):
    """netgen's generator with its writes dropped: the same rng draws give the same ids and stock plan."""

    def write(self, table: Table, columns: Any, rows: Any, key: str) -> int:
        return 0


@dataclass(frozen=True)
class _Net:
    node_ids: tuple[str, ...]
    node_types: tuple[NodeType, ...]
    capacity: tuple[int, ...]
    sku_ids: tuple[str, ...]
    sku_rank: tuple[int, ...]
    stocked: npt.NDArray[np.bool_]
    customers: tuple[str, ...]
    customer_states: dict[str, frozenset[str]]
    customer_addresses: dict[str, tuple[tuple[str, str], ...]]
    customer_domains: dict[str, str]
    customer_prices: dict[str, tuple[int, ...]]


_NET_CACHE: dict[str, _Net] = {}


def _network(spec: NetworkSpec) -> _Net:
    key = spec.to_json()
    if key in _NET_CACHE:
        return _NET_CACHE[key]
    g = _Replay(cast(Connection, None), spec, _no_progress, postgres=False)
    g.meta()
    g.gen_nodes()
    g.gen_catalogue()
    g.gen_customers()
    g.gen_carriers()
    g.plan_stock()
    stocked = np.zeros((len(g.nodes), len(g.sku_ids)), dtype=np.bool_)
    for k, nd in enumerate(g.nodes):
        stocked[k, sorted(nd.stock)] = True
    states: dict[str, frozenset[str]] = {}
    addrs: dict[str, tuple[tuple[str, str], ...]] = {}
    for c, cid in enumerate(g.customer_ids):
        mine = [g.addresses[a] for a in g.customer_addresses[c]]
        states[cid] = frozenset(a.site.state for a in mine)
        addrs[cid] = tuple((a.id, a.site.state) for a in mine)
    # Domains are not kept by the generator; the customer id stands for the account's own domain.
    domains = {cid: f"{cid.lower()}.example" for cid in g.customer_ids}
    net = _Net(
        node_ids=tuple(nd.id for nd in g.nodes),
        node_types=tuple(nd.type for nd in g.nodes),
        capacity=tuple(nd.capacity_floor for nd in g.nodes),
        sku_ids=tuple(g.sku_ids),
        sku_rank=tuple(g.sku_rank),
        stocked=stocked,
        customers=tuple(g.customer_ids),
        customer_states=states,
        customer_addresses=addrs,
        customer_domains=domains,
        customer_prices={cid: tuple(p) for cid, p in zip(g.customer_ids, g.customer_prices, strict=True)},
    )
    if len(_NET_CACHE) > 8:
        _NET_CACHE.clear()
    _NET_CACHE[key] = net
    return net


# --- public API ---------------------------------------------------------------------------------


def generate_history(
    seed: int,
    days: int = 180,
    network: NetworkSpec | None = None,
    *,
    incidents: bool = True,
    risky_orders: bool = True,
) -> History:
    """Draw ``days`` days of history ending the day before the network's business date.

    ``network`` is the twin's spec (default: the default embedded network); ``seed`` seeds the
    history only, so several histories of one network differ. ``incidents=False`` gives a clean
    history (no incidents injected: for false-alarm rates); ``risky_orders=False`` the same for
    the order stream. Raises :class:`ValidationFailed` for a bad ``days`` or spec.
    """
    spec = network or NetworkSpec()
    spec.validate()
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationFailed(f"days must be {MIN_DAYS}..{MAX_DAYS}, got {days}", days=days)
    net = _network(spec)
    return _Drawer(seed, days, spec, net, incidents=incidents, risky_orders=risky_orders).draw()


# --- drawing ------------------------------------------------------------------------------------


class _Drawer:
    """One history: owns the rngs (``random`` for choices, numpy for arrays), both seeded from ``seed``."""

    def __init__(self, seed: int, days: int, spec: NetworkSpec, net: _Net, *, incidents: bool, risky_orders: bool):
        self.seed, self.days, self.spec, self.net = seed, days, spec, net
        self.rng = random.Random(f"history/{seed}")
        self.np = np.random.default_rng([seed & 0xFFFFFFFF, 1801])
        self.with_incidents, self.with_risky = incidents, risky_orders
        self.start = spec.business_date - timedelta(days=days)
        self.n_nodes, self.n_skus = len(net.node_ids), len(net.sku_ids)
        self.lanes = tuple(Lane(c[0], r) for c in _CARRIERS for r in REGIONS)
        self._seq = 0

    def draw(self) -> History:
        promotions = self.promotions()
        incidents = self.incidents() if self.with_incidents else []
        demand = self.demand(promotions, incidents)
        orders_n, cap, picked, backlog = self.nodes(demand, incidents)
        ships, on_time, transit = self.carriers(picked, incidents)
        inv = self.inventory(demand, incidents)
        shrink = self.shrink(incidents)
        order_stream = self.order_stream()
        net = self.net
        return History(
            seed=self.seed,
            network=self.spec,
            start=self.start,
            days=self.days,
            nodes=net.node_ids,
            node_types=net.node_types,
            skus=net.sku_ids,
            carriers=tuple(c[0] for c in _CARRIERS),
            lanes=self.lanes,
            stocked=net.stocked,
            demand=demand,
            node_orders=orders_n,
            node_capacity=cap,
            node_picked=picked,
            node_backlog=backlog,
            lane_shipments=ships,
            lane_on_time=on_time,
            lane_transit_days=transit,
            inbound_lead_days=inv[0],
            inbound_overdue=inv[1],
            inbound_expected_days=inv[2],
            on_hand=inv[3],
            lost_sales=inv[4],
            shrink=shrink,
            promotions=tuple(promotions),
            incidents=tuple(sorted(incidents, key=lambda i: (i.start_day, i.kind.value, i.scope))),
            orders=order_stream,
            customer_states=dict(net.customer_states),
            customer_domains=dict(net.customer_domains),
            customer_sites={c: frozenset(a for a, _ in addrs) for c, addrs in net.customer_addresses.items()},
        )

    # --- plan: promotions and incidents ---

    def _popular(self) -> list[int]:
        """SKUs in the top 30% by popularity (where a spike or promotion stands out of the noise)."""
        n = self.n_skus
        return [s for s in range(n) if self.net.sku_rank[s] < max(1, int(0.3 * n))]

    def promotions(self) -> list[Promotion]:
        rng, out = self.rng, []
        for s in self._popular():
            if rng.random() < 0.15:
                for _ in range(max(1, self.days // 120)):
                    start = rng.randrange(7, self.days - 7)
                    out.append(
                        Promotion(
                            self.net.sku_ids[s], start, start + rng.randrange(2, 7), round(rng.uniform(1.3, 1.9), 2)
                        )
                    )
        return out

    def incidents(self) -> list[Incident]:
        """About one incident of each kind per 36 days, never in the first 28 days (a detector's
        warm-up) and never two on the same scope at once."""
        rng, net = self.rng, self.net
        per_kind = max(1, round(self.days / 36))
        out: list[Incident] = []
        busy: dict[str, list[tuple[int, int]]] = {}

        def place(length: int, make: Any) -> None:
            for _ in range(40):
                start = rng.randrange(MIN_DAYS, max(MIN_DAYS + 1, self.days - length))
                end = min(self.days - 1, start + length - 1)
                inc: Incident = make(start, end)
                spans = busy.setdefault(inc.scope, [])
                if all(end + 7 < a or start > b + 7 for a, b in spans):
                    spans.append((start, end))
                    out.append(inc)
                    return

        dcs = [k for k, t in enumerate(net.node_types) if t is NodeType.DC] or list(range(self.n_nodes))
        popular = self._popular()
        for _ in range(per_kind):
            place(
                rng.randrange(3, 9),
                lambda a, b: Incident(
                    IncidentKind.NODE_CONGESTION,
                    a,
                    b,
                    round(rng.uniform(0.4, 0.65), 2),
                    node=net.node_ids[rng.choice(dcs)],
                ),
            )
            place(
                rng.randrange(3, 8),
                lambda a, b: Incident(
                    IncidentKind.CARRIER_OUTAGE,
                    a,
                    b,
                    round(rng.uniform(0.35, 0.7), 2),
                    carrier=rng.choice(_CARRIERS)[0],
                    region=rng.choice(REGIONS),
                ),
            )
            place(
                rng.randrange(2, 6),
                lambda a, b: Incident(
                    IncidentKind.DEMAND_SPIKE,
                    a,
                    b,
                    round(rng.uniform(2.5, 4.5), 2),
                    sku=net.sku_ids[rng.choice(popular)],
                ),
            )
            place(
                rng.randrange(7, 15),
                lambda a, b: Incident(
                    IncidentKind.SUPPLIER_DELAY, a, b, float(rng.randrange(3, 9)), node=net.node_ids[rng.choice(dcs)]
                ),
            )
            place(rng.randrange(10, 21), lambda a, b: Incident(
                IncidentKind.STOCK_DRIFT, a, b, round(rng.uniform(0.012, 0.03), 4),
                node=net.node_ids[rng.randrange(self.n_nodes)]))  # fmt: skip
        return out

    # --- series ---

    def demand(self, promotions: list[Promotion], incidents: list[Incident]) -> IntArray:
        """Units per day, node and SKU: base rate x trend x weekday x yearly season x promotions x
        incidents, drawn negative-binomial (Poisson with a gamma rate)."""
        net, days, g = self.net, self.days, self.np
        stocked = net.stocked
        weight = np.array([1.0 / (r + 1) ** 0.9 for r in net.sku_rank])
        node_units = np.array(net.capacity, dtype=np.float64) * UTILISATION * UNITS_PER_ORDER
        share = stocked * weight[None, :]
        share /= np.maximum(share.sum(axis=1, keepdims=True), 1e-12)
        base = node_units[:, None] * share  # [node, sku], mean units per day
        t = np.arange(days, dtype=np.float64)
        growth = g.normal(0.06, 0.12, self.n_skus)  # per year
        trend = np.exp(np.outer(t / 365.0, np.log1p(np.clip(growth, -0.5, 1.0))))  # [day, sku]
        doy = np.array([(self.start + timedelta(days=int(i))).timetuple().tm_yday for i in t])
        amp, phase = g.uniform(0.0, 0.25, self.n_skus), g.uniform(0, 365, self.n_skus)
        yearly = 1.0 + amp[None, :] * np.sin(2 * math.pi * (doy[:, None] - phase[None, :]) / 365.25)
        weekday = np.array([WEEKDAY[(self.start + timedelta(days=int(i))).weekday()] / _WEEKDAY_MEAN for i in t])
        lift = np.ones((days, self.n_skus))
        for p in promotions:
            lift[p.start_day : p.end_day + 1, net.sku_ids.index(p.sku)] *= p.lift
        mean = base[None, :, :] * (trend * yearly * lift)[:, None, :] * weekday[:, None, None]
        for inc in incidents:
            if inc.kind is IncidentKind.DEMAND_SPIKE and inc.sku is not None:
                s = net.sku_ids.index(inc.sku)
                nodes = slice(None) if inc.node is None else net.node_ids.index(inc.node)
                mean[inc.start_day : inc.end_day + 1, nodes, s] *= inc.magnitude
        rate = mean * g.gamma(DISPERSION, 1.0 / DISPERSION, mean.shape)
        out: IntArray = g.poisson(rate).astype(np.int64) * stocked[None, :, :]
        return out

    def nodes(self, demand: IntArray, incidents: list[Incident]) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """Orders in, capacity, picks and backlog per node. Orders after the cutoff wait a day;
        a node picks what it has up to its capacity (which wobbles a few percent day to day)."""
        days, n, g = self.days, self.n_nodes, self.np
        orders = np.rint(demand.sum(axis=2) / UNITS_PER_ORDER).astype(np.int64)
        cap_floor = np.array(self.net.capacity, dtype=np.float64)
        factor = np.ones((days, n))
        for inc in incidents:
            if inc.kind is IncidentKind.NODE_CONGESTION and inc.node is not None:
                factor[inc.start_day : inc.end_day + 1, self.net.node_ids.index(inc.node)] *= inc.magnitude
        cap = np.rint(cap_floor[None, :] * factor * g.normal(1.0, 0.03, (days, n))).astype(np.int64)
        late_share = g.uniform(0.12, 0.25, (days, n))
        picked = np.zeros((days, n), dtype=np.int64)
        backlog = np.zeros((days, n), dtype=np.int64)
        prev = np.rint(orders[0] * 0.2).astype(np.int64)
        for d in range(days):
            ready = prev + np.rint(orders[d] * (1 - late_share[d])).astype(np.int64)
            picked[d] = np.minimum(ready, np.maximum(cap[d], 0))
            backlog[d] = prev + orders[d] - picked[d]
            prev = backlog[d]
        return orders, cap, picked, backlog

    def carriers(self, picked: IntArray, incidents: list[Incident]) -> tuple[IntArray, IntArray, FloatArray]:
        """Parcels per lane (the network's shipments split by carrier and region), on-time counts
        (binomial around the carrier's rate) and mean transit days."""
        g, days = self.np, self.days
        total = picked.sum(axis=1).astype(np.float64) * 1.3  # parcels: some orders ship in several
        region_share = np.array([sum(1 for c in CITIES if c.region == r) for r in REGIONS], dtype=np.float64)
        region_share /= region_share.sum()
        lane_share = np.array([_CARRIER_SHARE[ci] * region_share[ri]
                               for ci in range(len(_CARRIERS)) for ri in range(len(REGIONS))])  # fmt: skip
        ships = g.poisson(total[:, None] * lane_share[None, :]).astype(np.int64)
        p = np.array([c[4] - 0.01 for c in _CARRIERS for _ in REGIONS])
        p_day = np.clip(p[None, :] + g.normal(0, 0.006, (days, len(self.lanes))), 0.5, 0.995)
        transit = np.array([_REGION_TRANSIT.get(r, 2.6) for _ in _CARRIERS for r in REGIONS])
        t_day = transit[None, :] + g.normal(0, 0.08, (days, len(self.lanes)))
        for inc in incidents:
            if inc.kind is IncidentKind.CARRIER_OUTAGE:
                k = self.lanes.index(Lane(cast(str, inc.carrier), cast(str, inc.region)))
                span = slice(inc.start_day, inc.end_day + 1)
                p_day[span, k] *= inc.magnitude
                t_day[span, k] += (1.0 - inc.magnitude) * 4.0
        on_time = g.binomial(ships, p_day).astype(np.int64)
        return ships, on_time, np.round(t_day, 3)

    def inventory(
        self, demand: IntArray, incidents: list[Incident]
    ) -> tuple[FloatArray, IntArray, IntArray, IntArray, IntArray]:
        """Replenishment per node x SKU with an order-up-to policy reviewed daily. A supplier delay
        at a node pushes back every purchase order due there during the incident."""
        g, days, n, s = self.np, self.days, self.n_nodes, self.n_skus
        lead = np.array([{NodeType.DC: 7, NodeType.STORE: 3}.get(t, 4) for t in self.net.node_types], dtype=np.int64)
        lead = lead + g.integers(0, 3, n)
        mu = np.maximum(demand[: min(28, days)].mean(axis=0), 0.05)  # [node, sku]
        cover = (lead[:, None] + 1).astype(np.float64)
        sigma = np.sqrt(mu + mu**2 / DISPERSION)
        rop = np.ceil(mu * cover + 1.65 * sigma * np.sqrt(cover))
        up_to = rop + np.ceil(mu * 10)
        stocked = self.net.stocked
        on_hand = np.zeros((days, n, s), dtype=np.int64)
        lost = np.zeros((days, n, s), dtype=np.int64)
        horizon = days + 64
        arrivals = np.zeros((horizon, n, s), dtype=np.int64)
        recv_lead_sum = np.zeros((horizon, n))
        recv_count = np.zeros((horizon, n))
        delays = [(inc, self.net.node_ids.index(inc.node)) for inc in incidents
                  if inc.kind is IncidentKind.SUPPLIER_DELAY and inc.node is not None]  # fmt: skip
        cur = (up_to * stocked).astype(np.int64)
        on_order = np.zeros((n, s), dtype=np.int64)
        overdue = np.zeros((days, n), dtype=np.int64)
        open_expected: list[list[int]] = [[] for _ in range(n)]  # per node: (expected day) of open POs
        open_actual: list[list[int]] = [[] for _ in range(n)]
        for d in range(days):
            got = arrivals[d]
            cur += got
            on_order -= got
            served = np.minimum(cur, demand[d])
            lost[d] = demand[d] - served
            cur -= served
            on_hand[d] = cur
            position = cur + on_order
            need = (position < rop) & stocked
            qty = np.where(need, up_to - position, 0).astype(np.int64)
            for k in range(n):
                ks = np.nonzero(qty[k])[0]
                if not len(ks):
                    continue
                # Mostly a day either way; now and then a supplier runs two or three days late.
                jitter = g.integers(0, 2, len(ks)) + (g.random(len(ks)) < 0.08) * g.integers(1, 3, len(ks))
                arrive = d + lead[k] + jitter
                for inc, node in delays:
                    if node == k:
                        hit = (arrive >= inc.start_day) & (arrive <= inc.end_day)
                        arrive = np.where(hit, arrive + int(inc.magnitude), arrive)
                arrive = np.minimum(arrive, horizon - 1)
                np.add.at(arrivals[:, k, :], (arrive, ks), qty[k, ks])
                np.add.at(recv_lead_sum[:, k], arrive, (arrive - d).astype(np.float64))
                np.add.at(recv_count[:, k], arrive, 1.0)
                open_expected[k].extend((d + int(lead[k]) + 1 + np.zeros(len(ks), dtype=np.int64)).tolist())
                open_actual[k].extend(arrive.tolist())
            on_order += qty
            for k in range(n):
                # Open POs at the end of day d: not yet arrived (actual > d); overdue: expected < d.
                if open_actual[k]:
                    act = np.array(open_actual[k])
                    exp = np.array(open_expected[k])
                    keep = act > d
                    overdue[d, k] = int(np.count_nonzero(keep & (exp < d)))
                    open_actual[k] = act[keep].tolist()
                    open_expected[k] = exp[keep].tolist()
        with np.errstate(invalid="ignore", divide="ignore"):
            lead_days: FloatArray = np.where(recv_count[:days] > 0, recv_lead_sum[:days] / recv_count[:days], np.nan)
        return lead_days, overdue, lead, on_hand, lost

    def shrink(self, incidents: list[Incident]) -> FloatArray:
        """Cycle-count shortfall per node: small and noisy, with a slow ramp during a stock drift."""
        g, days, n = self.np, self.days, self.n_nodes
        out = np.clip(g.normal(0.003, 0.002, (days, n)), -0.004, None)
        for inc in incidents:
            if inc.kind is IncidentKind.STOCK_DRIFT and inc.node is not None:
                k = self.net.node_ids.index(inc.node)
                length = inc.end_day - inc.start_day + 1
                out[inc.start_day : inc.end_day + 1, k] += inc.magnitude * np.arange(1, length + 1) / length
        return np.round(out, 5)

    # --- orders for risk scoring ---

    def order_stream(self) -> tuple[OrderEvent, ...]:
        """A few orders per customer per weekday, from the customer's own sites at its usual size;
        legitimate surprises (a new site, a big stocking order) keep the scoring honest; injected
        risky orders carry their :class:`RiskCase`."""
        rng, net = self.rng, self.net
        out: list[OrderEvent] = []
        self._seq = 0
        profiles: dict[str, tuple[float, float, float]] = {}
        for cid in net.customers:
            prices = net.customer_prices[cid]
            avg_price = sum(prices[:50]) / max(1, len(prices[:50])) / 100
            profiles[cid] = (rng.uniform(0.5, 4.0), rng.uniform(8, 60), avg_price)
        risky: set[tuple[int, str, RiskCase]] = set()
        if self.with_risky:
            for _ in range(max(4, self.days // 6)):
                risky.add((rng.randrange(MIN_DAYS, self.days), rng.choice(net.customers), rng.choice(list(RiskCase))))
        planned = sorted(risky, key=lambda x: (x[0], x[1], x[2].value))
        for d in range(self.days):
            wd = (self.start + timedelta(days=d)).weekday()
            for cid in net.customers:
                out.extend(self._ordinary(d, wd, cid, profiles[cid]))
            for day, cid, case in planned:
                if day == d:
                    out.extend(self._risky(d, cid, case, profiles[cid]))
        out.sort(key=lambda o: (o.day, o.hour, o.id))
        return tuple(out)

    def _next_id(self) -> str:
        self._seq += 1
        return f"H-{self._seq:07d}"

    def _ordinary(self, d: int, wd: int, cid: str, profile: tuple[float, float, float]) -> list[OrderEvent]:
        rng, net = self.rng, self.net
        per_day, units_mu, price = profile
        count = _poisson(rng, per_day * WEEKDAY[wd] / _WEEKDAY_MEAN)
        out = []
        for _ in range(count):
            oid = self._next_id()
            aid, state = rng.choice(net.customer_addresses[cid])
            units = max(1, int(rng.lognormvariate(math.log(units_mu), 0.5)))
            if rng.random() < 0.004:  # a legitimate new site, mostly near the account's others
                near = sorted(net.customer_states[cid]) if rng.random() < 0.6 else _STATES
                aid, state = f"NEW-{cid}-{self._seq}", rng.choice(near)
            if rng.random() < 0.006:  # a legitimate stocking order
                units *= rng.randrange(4, 9)
            hour = round(rng.uniform(7, 18), 2)
            out.append(
                OrderEvent(oid, d, hour, cid, state, aid, net.customer_domains[cid], round(units * price, 2), units)
            )
        return out

    def _risky(self, d: int, cid: str, case: RiskCase, profile: tuple[float, float, float]) -> list[OrderEvent]:
        rng, net = self.rng, self.net
        _per_day, units_mu, price = profile
        away = [st for st in _STATES if st not in net.customer_states[cid]]
        n_orders = rng.randrange(6, 12) if case is RiskCase.VELOCITY else 1
        hour = rng.uniform(0, 23)
        out = []
        for j in range(n_orders):
            oid = self._next_id()
            aid, state = rng.choice(net.customer_addresses[cid])
            domain = net.customer_domains[cid]
            units = max(1, int(rng.lognormvariate(math.log(units_mu), 0.5)))
            if case in (RiskCase.NEW_SHIP_TO, RiskCase.ACCOUNT_TAKEOVER):
                aid, state = f"ADDR-X{self._seq}", rng.choice(away)
            if case is RiskCase.VALUE_SPIKE:
                units = int(units_mu * rng.uniform(12, 30))
            if case is RiskCase.ACCOUNT_TAKEOVER:
                domain = f"mail{rng.randrange(100, 999)}.example"
                units = int(units_mu * rng.uniform(4, 10))
            at = round(min(23.99, hour + 0.1 * j), 2)
            out.append(OrderEvent(oid, d, at, cid, state, aid, domain, round(units * price, 2), units, case))
        return out


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: small rates only (orders per customer-day)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
