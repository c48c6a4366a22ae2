"""What the console's pictures show of one node: its backlog and pick rate over the generated
history with the detector's baseline and threshold, and a demand forecast with its interval for
one of its SKUs (issue 18, item 6).

The numbers are the detectors' and the forecaster's own (:func:`core.anomaly.robust_alarms` with the
node-congestion parameters, :func:`core.forecast.forecast`), so the lines on the chart are the ones
an alarm is raised against, not a second opinion.

What this module must never do: write anything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from core.anomaly import NODE_BACKLOG, RobustParams, robust_alarms
from core.db import Database
from core.db.tables import MetaRow
from core.errors import NotFound
from core.forecast import forecast
from core.history import History
from services.watch import history_for

FORECAST_DAYS = 28
SHOWN_ACTUALS = 56
INTERVAL_Z = 1.645
"""A 90% interval around each day's forecast."""
PICK_DROP = replace(NODE_BACKLOG, side=-1, min_ratio=0.0)
"""Pick rate far below the node's usual for the weekday: the backlog detector's scale, looking down."""


@dataclass(frozen=True)
class Series:
    values: list[float | None]
    baseline: list[float | None]
    threshold: list[float | None]
    alarms: list[int]


@dataclass(frozen=True)
class DemandForecast:
    sku: str
    days: list[date]
    """Shown actuals then forecast days."""
    actual: list[float | None]
    mean: list[float | None]
    low: list[float]
    high: list[float]
    start: int
    """Index in ``days`` of the first forecast day."""
    method: str
    demand_class: str


@dataclass(frozen=True)
class NodeSignals:
    node_id: str
    days: list[date]
    backlog: Series
    picked: Series
    skus: list[str]
    """SKUs the node stocks, busiest first (the forecast can be asked for any)."""
    forecast: DemandForecast | None


@lru_cache(maxsize=4)
def _history(spec_json: str) -> History | None:
    return history_for(spec_json)


def _spec(db: Database) -> str | None:
    with db.sessions() as s:
        return s.scalar(select(MetaRow.value).where(MetaRow.key == "spec"))


def twin_history(db: Database) -> History | None:
    """The twin's generated history (cached by its spec: it is drawn, not stored)."""
    spec = _spec(db)
    return _history(spec) if spec else None


@lru_cache(maxsize=64)
def _node_series(spec: str, i: int) -> tuple[Series, Series]:
    """A node's backlog and pick-rate series with their baselines (the trailing weekday medians
    take about half a second a series; the history of one spec never changes, so they are kept)."""
    h = _history(spec)
    assert h is not None
    return _series(h.node_backlog[:, i], NODE_BACKLOG), _series(h.node_picked[:, i], PICK_DROP)


def _clean(a: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 3) for v in a]


def _series(x: npt.NDArray[np.int64], p: RobustParams) -> Series:
    col = x.astype(np.float64).reshape(-1, 1)
    alarm, _z, center, scale = robust_alarms(col, p)
    floor = np.maximum(p.floor, p.rel_floor * np.abs(center[:, 0]))
    sd = np.maximum(np.nan_to_num(scale[:, 0], nan=np.nan), floor)
    threshold = center[:, 0] + p.side * p.z * sd
    if p.side < 0:
        threshold = np.maximum(threshold, 0.0)
    return Series(
        values=_clean(col[:, 0]),
        baseline=_clean(center[:, 0]),
        threshold=_clean(threshold),
        alarms=[int(i) for i in np.flatnonzero(alarm[:, 0])],
    )


def node_signals(db: Database, node_id: str, *, sku: str | None = None) -> NodeSignals:
    """The node's pictures' numbers; NotFound when the twin has no history or the node is not in it."""
    spec = _spec(db)
    h = _history(spec) if spec else None
    if spec is None or h is None:
        raise NotFound("history", "twin", "this twin carries no generated history (seed it with orderops network seed)")
    if node_id not in h.nodes:
        raise NotFound("node", node_id)
    i = h.node_index(node_id)
    stocked = np.flatnonzero(h.stocked[i])
    busiest = sorted(stocked, key=lambda k: -int(h.demand[:, i, k].sum()))
    skus = [h.skus[k] for k in busiest]
    if sku is not None and sku not in skus:
        raise NotFound("sku at node", f"{node_id}/{sku}")
    chosen = sku or (skus[0] if skus else None)
    backlog, picked = _node_series(spec, i)
    return NodeSignals(
        node_id=node_id,
        days=h.dates,
        backlog=backlog,
        picked=picked,
        skus=skus,
        forecast=None if chosen is None else _forecast(h, i, chosen),
    )


def _forecast(h: History, i: int, sku: str) -> DemandForecast:
    y = h.demand[:, i, h.sku_index(sku)].astype(np.float64)
    f = forecast(y, FORECAST_DAYS)
    shown = y[-SHOWN_ACTUALS:]
    last = h.dates[-1]
    days = h.dates[-SHOWN_ACTUALS:] + [last + timedelta(days=d) for d in range(1, FORECAST_DAYS + 1)]
    spread = INTERVAL_Z * f.sigma
    mean = [max(float(v), 0.0) for v in f.mean]
    return DemandForecast(
        sku=sku,
        days=days,
        actual=[float(v) for v in shown] + [None] * FORECAST_DAYS,
        mean=[None] * (SHOWN_ACTUALS - 1) + [float(shown[-1])] + [round(v, 3) for v in mean],
        low=[round(max(v - spread, 0.0), 3) for v in mean],
        high=[round(v + spread, 3) for v in mean],
        start=SHOWN_ACTUALS,
        method=f.method,
        demand_class=f.demand_class.value,
    )
