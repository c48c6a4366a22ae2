"""Anomaly detectors on the network's daily series: robust z-scores (median / MAD) and CUSUM.

Every detector is causal: the baseline of day ``t`` comes only from days before ``t`` (a trailing
window), so running it over a history gives the alerts it would have raised day by day, and their
detection delay is honest. Weekly series (backlog, demand) are compared with the same weekday of
the previous weeks; known promotions are divided out of demand before it is judged, since a
planned lift is not an anomaly.

What each detector watches, and the incident kind its findings name:

* node backlog, robust z above the same weekday -> ``node_congestion``
* lane on-time rate (below) and transit days (above), robust z -> ``carrier_outage``
* SKU demand over all nodes, robust z on log units, at least double -> ``demand_spike``
* overdue inbound purchase orders per node, robust z -> ``supplier_delay``
* cycle-count shrink per node, one-sided CUSUM on a lagged baseline -> ``stock_drift``

A finding is an episode: consecutive alarm days (gaps of up to :data:`MERGE_GAP_DAYS` merged) on
one scope, with its evidence (value, baseline, threshold, score on its first day).

What this module must never do: act. Findings are data; turning one into an alert and a run is the
caller's (the alert path dedups and coalesces).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from core.history import History, IncidentKind

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

WINDOW_DAYS = 56
"""Trailing days a baseline is drawn from (eight of each weekday)."""
MIN_HISTORY_DAYS = 21
"""No alarms before this many days of baseline."""
MERGE_GAP_DAYS = 2
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Finding:
    """One anomaly episode on one scope, with the evidence of the day it was first raised."""

    kind: IncidentKind
    scope: str
    """``node:ID``, ``lane:CARRIER/REGION`` or ``sku:SKU``, as :attr:`core.history.Incident.scope`."""
    first_day: int
    last_day: int
    signal: str
    method: str
    value: float
    baseline: float
    threshold: float
    """The value beyond which the first day alarmed (baseline +- z threshold x scale)."""
    score: float
    """How far past the baseline, in robust standard deviations (CUSUM: the statistic)."""

    def first_date(self, start: date) -> date:
        return start + timedelta(days=self.first_day)


@dataclass(frozen=True)
class RobustParams:
    z: float
    """Alarm at this many robust standard deviations."""
    floor: float
    """Smallest scale (absolute), so a flat series does not alarm on a rounding change."""
    rel_floor: float = 0.0
    """Smallest scale as a share of the baseline."""
    weekly: bool = False
    side: int = 1
    """+1 alarms above the baseline, -1 below."""
    min_ratio: float = 0.0
    """Also require value / baseline (above) or baseline / value (below) of at least this."""


# --- statistics ---------------------------------------------------------------------------------


def trailing_baseline(
    x: FloatArray, *, window: int = WINDOW_DAYS, weekly: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Per day and column: the median of the trailing window (of the same weekday when ``weekly``)
    and the MAD of the window's residuals around it, scaled to a standard deviation. NaN for days
    with fewer than :data:`MIN_HISTORY_DAYS` days before them; NaN values in ``x`` are skipped."""
    days = x.shape[0]
    center = np.full(x.shape, np.nan)
    scale = np.full(x.shape, np.nan)
    for t in range(MIN_HISTORY_DAYS, days):
        lo = max(0, t - window)
        w = x[lo:t]
        if weekly:
            offs = (np.arange(lo, t) - t) % 7
            med = np.full(w.shape, np.nan)
            for k in range(7):
                rows = offs == k
                if rows.any():
                    med[rows] = np.nanmedian(w[rows], axis=0)
            center[t] = med[offs == 0][0] if (offs == 0).any() else np.nanmedian(w, axis=0)
            resid = w - med
        else:
            center[t] = np.nanmedian(w, axis=0)
            resid = w - center[t]
        scale[t] = MAD_TO_SD * np.nanmedian(np.abs(resid), axis=0)
    return center, scale


def robust_alarms(x: FloatArray, p: RobustParams) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray]:
    """Alarm days of each column of ``x``; also the z-scores, baselines and scales behind them."""
    center, scale = trailing_baseline(x, weekly=p.weekly)
    scale = np.maximum(np.nan_to_num(scale, nan=np.inf), np.maximum(p.floor, p.rel_floor * np.abs(center)))
    z = p.side * (x - center) / scale
    z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
    alarm = z > p.z
    if p.min_ratio > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = x / center if p.side > 0 else center / x
        alarm &= np.nan_to_num(ratio, nan=0.0, posinf=np.inf) >= p.min_ratio
    return alarm, z, center, scale


def binomial_alarms(
    rate: FloatArray, trials: FloatArray, p: RobustParams
) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray]:
    """:func:`robust_alarms` for a share of ``trials`` (on-time parcels of those shipped): the scale
    adds the binomial noise of the day's count, so a quiet Sunday with 40 parcels is judged by
    what 40 parcels can do."""
    center, scale = trailing_baseline(rate, weekly=p.weekly)
    p0 = np.clip(np.nan_to_num(center, nan=0.5), 0.0, 1.0)
    binom = p0 * (1 - p0) / np.maximum(trials, 1.0)
    scale = np.sqrt(np.maximum(np.nan_to_num(scale, nan=np.inf), p.floor) ** 2 + binom)
    z = np.nan_to_num(p.side * (rate - center) / scale, nan=0.0, posinf=0.0, neginf=0.0)
    return z > p.z, z, center, scale


def cusum_alarms(
    x: FloatArray, *, k: float = 0.5, h: float = 6.0, lag: int = 14, window: int = 70, floor: float = 1e-9
) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray]:
    """One-sided (upward) CUSUM per column on robust z-scores against a lagged baseline: the
    baseline of day ``t`` ends ``lag`` days before it, so a slow drift does not become its own
    baseline before it is caught. The statistic restarts after each alarm."""
    days, m = x.shape
    stat = np.zeros(m)
    alarm = np.zeros(x.shape, dtype=np.bool_)
    s_out = np.zeros(x.shape)
    center = np.full(x.shape, np.nan)
    scale = np.full(x.shape, np.nan)
    for t in range(MIN_HISTORY_DAYS + lag, days):
        w = x[max(0, t - lag - window) : t - lag]
        c = np.nanmedian(w, axis=0)
        sd = np.maximum(MAD_TO_SD * np.nanmedian(np.abs(w - c), axis=0), floor)
        center[t], scale[t] = c, sd
        z = np.nan_to_num((x[t] - c) / sd, nan=0.0)
        stat = np.maximum(0.0, stat + z - k)
        s_out[t] = stat
        alarm[t] = stat > h
        stat = np.where(alarm[t], 0.0, stat)
    return alarm, s_out, center, scale


def episodes(alarm: BoolArray, gap: int = MERGE_GAP_DAYS) -> list[tuple[int, int, int]]:
    """``(column, first_day, last_day)`` of each run of alarm days, runs ``gap`` days apart merged."""
    out: list[tuple[int, int, int]] = []
    for col in range(alarm.shape[1]):
        days = np.nonzero(alarm[:, col])[0]
        if not len(days):
            continue
        first = last = int(days[0])
        for d in days[1:]:
            if d - last > gap + 1:
                out.append((col, first, last))
                first = int(d)
            last = int(d)
        out.append((col, first, last))
    return out


# --- detectors on a history -----------------------------------------------------------------------


def _findings(
    kind: IncidentKind, signal: str, method: str, scopes: Sequence[str], x: FloatArray,
    alarm: BoolArray, score: FloatArray, center: FloatArray, threshold: FloatArray,
) -> list[Finding]:  # fmt: skip
    return [
        Finding(
            kind=kind,
            scope=scopes[col],
            first_day=a,
            last_day=b,
            signal=signal,
            method=method,
            value=round(float(x[a, col]), 4),
            baseline=round(float(center[a, col]), 4),
            threshold=round(float(threshold[a, col]), 4),
            score=round(float(score[a, col]), 2),
        )
        for col, a, b in episodes(alarm)
    ]


def _robust(kind: IncidentKind, signal: str, scopes: Sequence[str], x: FloatArray, p: RobustParams) -> list[Finding]:
    alarm, z, center, scale = robust_alarms(x, p)
    return _findings(kind, signal, "robust_z", scopes, x, alarm, z, center, center + p.side * p.z * scale)


NODE_BACKLOG = RobustParams(z=5.0, floor=25.0, rel_floor=0.1, weekly=True, min_ratio=1.8)
LANE_ON_TIME = RobustParams(z=5.0, floor=0.01, side=-1)
LANE_TRANSIT = RobustParams(z=5.0, floor=0.15)
SKU_DEMAND = RobustParams(z=4.5, floor=0.25, weekly=True, min_ratio=2.0)
SPIKE_MIN_UNITS = 20.0
"""A spike must also add this many units a day over the baseline (a long-tail SKU going from 1
unit to 4 is noise, not an incident anyone acts on)."""
INBOUND_OVERDUE = RobustParams(z=4.0, floor=1.5)
SHRINK_CUSUM = {"k": 0.5, "h": 8.0, "lag": 14, "floor": 0.0005}


def node_congestion(h: History) -> list[Finding]:
    """Backlog far above the node's usual for the weekday."""
    scopes = [f"node:{n}" for n in h.nodes]
    return _robust(IncidentKind.NODE_CONGESTION, "backlog", scopes, h.node_backlog.astype(np.float64), NODE_BACKLOG)


def carrier_outage(h: History) -> list[Finding]:
    """A lane's on-time rate far below its usual, or its transit days far above; one episode per lane."""
    scopes = [f"lane:{lane.id}" for lane in h.lanes]
    rate = h.lane_on_time_rate
    a1, z1, c1, s1 = binomial_alarms(rate, h.lane_shipments.astype(np.float64), LANE_ON_TIME)
    a2, z2, _c2, _s2 = robust_alarms(h.lane_transit_days, LANE_TRANSIT)
    alarm = a1 | a2
    score = np.maximum(z1, z2)
    return _findings(
        IncidentKind.CARRIER_OUTAGE,
        "on_time_rate",
        "robust_z",
        scopes,
        rate,
        alarm,
        score,
        c1,
        c1 - LANE_ON_TIME.z * s1,
    )


def promotion_lift(h: History) -> FloatArray:
    """[day, sku]: the planned lift of known promotions (1.0 outside them)."""
    lift = np.ones((h.days, len(h.skus)))
    for p in h.promotions:
        lift[p.start_day : p.end_day + 1, h.sku_index(p.sku)] *= p.lift
    return lift


def demand_spike(h: History) -> list[Finding]:
    """A SKU's demand over all nodes at least double and far above its usual for the weekday,
    after known promotions are divided out (judged on log units: the noise is multiplicative)."""
    total = h.demand.sum(axis=1).astype(np.float64) / promotion_lift(h)
    x = np.log1p(total)
    p = RobustParams(z=SKU_DEMAND.z, floor=SKU_DEMAND.floor, weekly=True)
    alarm, z, center, scale = robust_alarms(x, p)
    alarm &= x - center >= np.log(SKU_DEMAND.min_ratio)
    alarm &= total - np.expm1(center) >= SPIKE_MIN_UNITS
    scopes = [f"sku:{s}" for s in h.skus]
    units_center = np.expm1(center)
    return _findings(
        IncidentKind.DEMAND_SPIKE, "demand_units", "robust_z_log", scopes, total, alarm, z, units_center,
        np.expm1(center + p.z * scale),
    )  # fmt: skip


def supplier_delay(h: History) -> list[Finding]:
    """Inbound purchase orders past their expected arrival, far above the node's usual."""
    scopes = [f"node:{n}" for n in h.nodes]
    x = h.inbound_overdue.astype(np.float64)
    return _robust(IncidentKind.SUPPLIER_DELAY, "inbound_overdue", scopes, x, INBOUND_OVERDUE)


def stock_drift(h: History) -> list[Finding]:
    """Cycle-count shrink creeping up: a CUSUM, since each day alone stays within the noise."""
    scopes = [f"node:{n}" for n in h.nodes]
    k, hh, lag, floor = SHRINK_CUSUM["k"], SHRINK_CUSUM["h"], int(SHRINK_CUSUM["lag"]), SHRINK_CUSUM["floor"]
    alarm, stat, center, scale = cusum_alarms(h.shrink, k=k, h=hh, lag=lag, floor=floor)
    return _findings(IncidentKind.STOCK_DRIFT, "shrink", "cusum", scopes, h.shrink, alarm, stat, center, center + scale)


DETECTORS: dict[IncidentKind, Callable[[History], list[Finding]]] = {
    IncidentKind.NODE_CONGESTION: node_congestion,
    IncidentKind.CARRIER_OUTAGE: carrier_outage,
    IncidentKind.DEMAND_SPIKE: demand_spike,
    IncidentKind.SUPPLIER_DELAY: supplier_delay,
    IncidentKind.STOCK_DRIFT: stock_drift,
}


def detect(h: History, kinds: Sequence[IncidentKind] | None = None) -> list[Finding]:
    """Every detector (or those of ``kinds``) over the whole history, findings by first day."""
    out: list[Finding] = []
    for kind in kinds or list(DETECTORS):
        out.extend(DETECTORS[kind](h))
    return sorted(out, key=lambda f: (f.first_day, f.kind.value, f.scope))
