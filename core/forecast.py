"""Daily demand forecasts per node x SKU, their backtest against seasonal-naive, and projected
stock-outs.

Why written here in numpy rather than with statsforecast: the series are short (months of days),
there are hundreds of them, and what we need is small and explainable: a weekly-seasonal
exponential smoothing (additive Holt-Winters with a damped trend, its three weights chosen per
series by one-step error on a small grid, all grid points filtered at once) for items sold most
days, and Croston's method with the Syntetos-Boylan correction (SBA) for intermittent items. Which
one a series gets follows its demand class (Syntetos-Boylan-Croston: average inter-demand interval
1.32 and squared coefficient of variation of the non-zero sizes 0.49 split smooth, erratic,
intermittent and lumpy).

Accuracy is MASE: mean absolute error over the horizon scaled by the in-sample mean absolute error
of the weekly seasonal-naive forecast, on a rolling origin; the same score of seasonal-naive itself
is the baseline every class is reported against.

What this module must never do: read the database or the clock (series and stock arrive as
numbers), or return a negative demand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SEASON",
    "BacktestResult",
    "ClassScore",
    "DemandClass",
    "Forecast",
    "StockoutProjection",
    "backtest",
    "classify",
    "croston_sba",
    "forecast",
    "forecast_all",
    "holt_winters",
    "mase",
    "project_stockout",
    "seasonal_naive",
]

SEASON = 7
"""Days in the seasonal cycle every model and the baseline use (a week)."""
ADI_CUT = 1.32
CV2_CUT = 0.49

Array = NDArray[np.float64]


class DemandClass(StrEnum):
    """Syntetos-Boylan-Croston demand classes."""

    SMOOTH = "smooth"
    ERRATIC = "erratic"
    INTERMITTENT = "intermittent"
    LUMPY = "lumpy"


def _arr(y: Sequence[float] | Array) -> Array:
    a = np.asarray(y, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError("a demand series is one-dimensional")
    if not np.all(np.isfinite(a)):
        raise ValueError("a demand series holds only finite numbers")
    return a


def classify(y: Sequence[float] | Array) -> DemandClass:
    """The series' demand class: how often it sells (ADI) and how much the sizes vary (CV^2)."""
    a = _arr(y)
    nz = a[a > 0]
    if nz.size == 0:
        return DemandClass.LUMPY
    adi = a.size / nz.size
    cv2 = float(np.var(nz) / np.mean(nz) ** 2) if nz.size > 1 else 0.0
    if adi < ADI_CUT:
        return DemandClass.SMOOTH if cv2 < CV2_CUT else DemandClass.ERRATIC
    return DemandClass.INTERMITTENT if cv2 < CV2_CUT else DemandClass.LUMPY


def seasonal_naive(y: Sequence[float] | Array, h: int, m: int = SEASON) -> Array:
    """Each of the next ``h`` days repeats the same weekday of the last full week."""
    a = _arr(y)
    if a.size < m:
        return np.full(h, float(a.mean()) if a.size else 0.0)
    last = a[-m:]
    return np.array([last[i % m] for i in range(h)], dtype=np.float64)


@dataclass(frozen=True)
class Forecast:
    """A point forecast for the next days with a one-step error scale."""

    mean: Array
    sigma: float
    """Standard deviation of the one-step in-sample errors; h-day totals spread by about sqrt(h)."""
    method: str
    demand_class: DemandClass

    def upper(self, z: float) -> Array:
        """Cumulative demand over 1..h days at ``z`` standard errors above the mean."""
        h = np.arange(1, self.mean.size + 1, dtype=np.float64)
        return np.cumsum(self.mean) + z * self.sigma * np.sqrt(h)


_ALPHAS = np.array([0.05, 0.15, 0.3, 0.5])
_BETAS = np.array([0.0, 0.05])
_GAMMAS = np.array([0.05, 0.2])
_PHI = 0.9
_GRID = np.array(np.meshgrid(_ALPHAS, _BETAS, _GAMMAS, indexing="ij")).reshape(3, -1)


def holt_winters(y: Sequence[float] | Array, h: int, m: int = SEASON) -> tuple[Array, float]:
    """Additive Holt-Winters with a damped trend; weights picked by one-step squared error on a
    grid (every grid point filtered in the same pass). Returns the h-day forecast and the chosen
    fit's one-step error standard deviation."""
    a = _arr(y)
    if a.size < 2 * m:
        return seasonal_naive(a, h, m), float(np.std(a)) if a.size else 0.0
    means, sigmas = _holt_winters_batch(a[None, :], h, m)
    return means[0], float(sigmas[0])


def _holt_winters_batch(a: NDArray[np.float64], h: int, m: int) -> tuple[NDArray[np.float64], Array]:
    """:func:`holt_winters` of every row of ``a`` (series of one length, at least two seasons) at
    once: the state is (series, grid point), so a network's thousands of series cost one pass."""
    n_series, length = a.shape
    alpha, beta, gamma = _GRID
    k = alpha.size
    first, second = a[:, :m].mean(axis=1), a[:, m : 2 * m].mean(axis=1)
    level = np.repeat(first[:, None], k, axis=1)
    trend = np.repeat(((second - first) / m)[:, None], k, axis=1)
    start = a[:, : 2 * m].reshape(n_series, 2, m).mean(axis=1) - a[:, : 2 * m].mean(axis=1)[:, None]
    season = np.repeat(start.T[:, :, None], k, axis=2)  # [weekday, series, grid]
    sse = np.zeros((n_series, k))
    scored = 0
    for t in range(m, length):
        s = season[t % m]
        x = a[:, t, None]
        err = x - (level + _PHI * trend + s)
        if t >= 2 * m:
            sse += err * err
            scored += 1
        new_level = alpha * (x - s) + (1 - alpha) * (level + _PHI * trend)
        trend = beta * (new_level - level) + (1 - beta) * _PHI * trend
        season[t % m] = gamma * (x - new_level) + (1 - gamma) * s
        level = new_level
    rows = np.arange(n_series)
    best = np.argmin(sse, axis=1)
    damp = np.cumsum(_PHI ** np.arange(1, h + 1))
    ahead = season[np.arange(length, length + h) % m][:, rows, best].T  # [series, day]
    out = level[rows, best][:, None] + damp[None, :] * trend[rows, best][:, None] + ahead
    sigma = np.sqrt(sse[rows, best] / scored) if scored else np.zeros(n_series)
    return np.maximum(out, 0.0), sigma


def croston_sba(y: Sequence[float] | Array, h: int, alpha: float = 0.1) -> tuple[Array, float]:
    """Croston's method with the Syntetos-Boylan bias correction: smoothed size over smoothed
    interval, flat over the horizon. Returns the forecast and the one-step error std."""
    a = _arr(y)
    nz = np.flatnonzero(a > 0)
    if nz.size == 0:
        return np.zeros(h), 0.0
    size = float(a[nz[0]])
    interval = float(nz[0] + 1)
    gap = 0
    errs: list[float] = []
    for t in range(int(nz[0]) + 1, a.size):
        gap += 1
        errs.append(a[t] - (1 - alpha / 2) * size / interval)
        if a[t] > 0:
            size += alpha * (a[t] - size)
            interval += alpha * (gap - interval)
            gap = 0
    rate = (1 - alpha / 2) * size / interval
    sigma = float(np.sqrt(np.mean(np.square(errs)))) if errs else float(np.std(a))
    return np.full(h, max(rate, 0.0)), sigma


def forecast(y: Sequence[float] | Array, h: int) -> Forecast:
    """The next ``h`` days of ``y`` by the model its demand class calls for."""
    a = _arr(y)
    cls = classify(a)
    if cls in (DemandClass.SMOOTH, DemandClass.ERRATIC):
        mean, sigma = holt_winters(a, h)
        return Forecast(mean, sigma, "holt_winters", cls)
    mean, sigma = croston_sba(a, h)
    return Forecast(mean, sigma, "croston_sba", cls)


def forecast_all(series: Sequence[Sequence[float] | Array], h: int) -> list[Forecast]:
    """:func:`forecast` of each series, in order; the Holt-Winters ones of equal length are fitted
    together (the same numbers as one by one, at a fraction of the time)."""
    arrays = [_arr(y) for y in series]
    out: list[Forecast | None] = [None] * len(arrays)
    batches: dict[int, list[int]] = {}
    for i, a in enumerate(arrays):
        cls = classify(a)
        if cls in (DemandClass.SMOOTH, DemandClass.ERRATIC) and a.size >= 2 * SEASON:
            batches.setdefault(a.size, []).append(i)
        else:
            out[i] = forecast(a, h)
    for idx in batches.values():
        means, sigmas = _holt_winters_batch(np.stack([arrays[i] for i in idx]), h, SEASON)
        for j, i in enumerate(idx):
            out[i] = Forecast(means[j], float(sigmas[j]), "holt_winters", classify(arrays[i]))
    return [f for f in out if f is not None]


def _scale(insample: Array, m: int) -> float:
    """In-sample mean absolute error of seasonal-naive (lag 1 when the week-on-week error is 0)."""
    if insample.size > m:
        s = float(np.mean(np.abs(insample[m:] - insample[:-m])))
        if s > 0:
            return s
    if insample.size > 1:
        return float(np.mean(np.abs(np.diff(insample))))
    return 0.0


def mase(actual: Array, predicted: Array, insample: Array, m: int = SEASON) -> float | None:
    """Mean absolute scaled error; ``None`` when the in-sample series never changes (no scale)."""
    scale = _scale(insample, m)
    if scale == 0:
        return None
    return float(np.mean(np.abs(actual - predicted)) / scale)


@dataclass
class ClassScore:
    """MASE of the model and of seasonal-naive over every (series, origin) of one demand class."""

    demand_class: str
    series: int = 0
    windows: int = 0
    model_mase: float = 0.0
    naive_mase: float = 0.0

    @property
    def relative(self) -> float:
        """Model MASE over seasonal-naive MASE: below 1 the model wins."""
        return self.model_mase / self.naive_mase if self.naive_mase else float("nan")


@dataclass
class BacktestResult:
    horizon: int
    origins: int
    classes: dict[str, ClassScore] = field(default_factory=dict)
    overall: ClassScore = field(default_factory=lambda: ClassScore("all"))
    skipped: int = 0
    """Series too short or constant to score."""

    def as_dict(self) -> dict[str, object]:
        def one(c: ClassScore) -> dict[str, object]:
            return {
                "series": c.series,
                "windows": c.windows,
                "model_mase": round(c.model_mase, 4),
                "seasonal_naive_mase": round(c.naive_mase, 4),
                "relative": round(c.relative, 4) if c.naive_mase else None,
            }

        return {
            "horizon": self.horizon,
            "origins": self.origins,
            "classes": {k: one(v) for k, v in sorted(self.classes.items())},
            "overall": one(self.overall),
            "skipped": self.skipped,
        }


def backtest(
    series: Mapping[str, Sequence[float] | Array], *, horizon: int = 14, origins: int = 4, step: int = 7
) -> BacktestResult:
    """Rolling-origin backtest: for each series, forecast ``horizon`` days from ``origins`` cut
    points ``step`` days apart (the last one ``horizon`` days before the end), score model and
    seasonal-naive by MASE, and average per demand class (classified on the first cut's history,
    which is what a planner would have known)."""
    result = BacktestResult(horizon=horizon, origins=origins)
    sums: dict[str, list[float]] = {}
    cut_windows: list[tuple[int, str, Array, Array]] = []  # (series, class, history, actual)
    for k, y in enumerate(series.values()):
        a = _arr(y)
        cuts = [a.size - horizon - i * step for i in reversed(range(origins))]
        if cuts[0] < 3 * SEASON:
            result.skipped += 1
            continue
        cls = classify(a[: cuts[0]]).value
        cut_windows += [(k, cls, a[:cut], a[cut : cut + horizon]) for cut in cuts]
    fcs = forecast_all([w[2] for w in cut_windows], horizon)
    scored: dict[int, str] = {}
    for (k, cls, hist, actual), fc in zip(cut_windows, fcs, strict=True):
        m = mase(actual, fc.mean, hist)
        n = mase(actual, seasonal_naive(hist, horizon), hist)
        if m is None or n is None:
            continue
        acc = sums.setdefault(cls, [0.0, 0.0, 0.0, 0.0])
        acc[0] += m
        acc[1] += n
        acc[2] += 1
        scored[k] = cls
    for cls in scored.values():
        sums[cls][3] += 1
    result.skipped += len({w[0] for w in cut_windows} - set(scored))
    tot = [0.0, 0.0, 0.0, 0.0]
    for cls, (m_sum, n_sum, windows, count) in sums.items():
        result.classes[cls] = ClassScore(cls, int(count), int(windows), m_sum / windows, n_sum / windows)
        tot = [tot[0] + m_sum, tot[1] + n_sum, tot[2] + windows, tot[3] + count]
    if tot[2]:
        result.overall = ClassScore("all", int(tot[3]), int(tot[2]), tot[0] / tot[2], tot[1] / tot[2])
    return result


@dataclass(frozen=True)
class StockoutProjection:
    """When a node's stock of a SKU is projected to run out within the lead time."""

    available: float
    """Stock the node can still promise (on hand less reserved)."""
    days_to_stockout: int | None
    """Days from now until projected demand exceeds stock plus inbound (1 = tomorrow); None: not
    within the horizon."""
    shortfall: int
    """Units short at the end of the lead time (what a transfer should bring; 0 when covered)."""
    demand_over_lead_time: float


def project_stockout(
    fc: Forecast,
    *,
    available: float,
    lead_time_days: int,
    inbound: Mapping[int, float] | None = None,
    z: float = 0.0,
) -> StockoutProjection:
    """Walk the forecast day by day against ``available`` stock plus ``inbound`` receipts (day
    offset -> units, 1 = tomorrow); the first day cumulative demand (``z`` standard errors above
    the mean, for a cautious warning) exceeds supply is the projected stock-out."""
    h = min(lead_time_days, fc.mean.size)
    demand = fc.upper(z)[:h]
    arrivals = np.zeros(h)
    for day, units in (inbound or {}).items():
        if 1 <= day <= h:
            arrivals[day - 1] += units
    supply = available + np.cumsum(arrivals)
    short = np.flatnonzero(demand > supply + 1e-9)
    days = int(short[0]) + 1 if short.size else None
    total = float(demand[-1]) if h else 0.0
    shortfall = max(0, math.ceil(total - float(supply[-1]))) if h else 0
    return StockoutProjection(float(available), days, shortfall, total)
