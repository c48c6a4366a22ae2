"""Demand forecasts and stock-out warnings: backtests on a generated history, warnings on the live
twin, and a warning turned into an exception run that proposes a stock transfer.

* :func:`history_backtest` scores the forecasts (:mod:`core.forecast`) per demand class by MASE
  against weekly seasonal-naive on a rolling origin (``orderops forecast backtest``).
* :func:`stockout_backtest` replays the last weeks of a history day by day: each morning, each
  node x SKU's stock plus the receipts due within the lead time against the forecast; a projected
  stock-out is a warning. Scored against the history's own lost sales (the stock-outs that really
  happened in the generated future): precision of the warning days, recall of the stock-out
  episodes, and lead time (days between the first warning and the stock-out).
* :func:`scan_twin` warns on the live twin's available stock from demand series it is given, and
  :func:`warning_alert` makes a warning the ``stockout_risk`` alert an exception run starts from;
  the run's playbook proposes ``transfer_inventory`` (approved, executed once) or re-sourcing.

What this module must never do: execute a write (warnings become alerts; runs propose through the
gateway) or read the history's incidents or lost sales when it forecasts (only when it scores).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from pydantic import BaseModel, Field

from agents.plan import Alert, ExceptionKind
from core.errors import ValidationFailed
from core.forecast import Forecast, backtest, forecast_all, project_stockout
from core.history import History
from tools.adapters.protocols import Adapters

__all__ = [
    "DEFAULT_Z",
    "StockoutScore",
    "StockoutWarning",
    "history_backtest",
    "scan_twin",
    "stockout_backtest",
    "warning_alert",
]


DEFAULT_Z = 0.5
"""How cautious a warning is: forecast demand plus this many one-step error bands (growing with the
square root of the days). Chosen on a development history (seed 7: z 0 / 0.5 / 1 gave precision
0.72 / 0.59 / 0.48 and recall 0.90 / 0.96 / 0.99): every warning costs a person a look at a
transfer, and a missed stock-out costs sales, so the middle."""


def _pairs(history: History, max_series: int | None, seed: int) -> list[tuple[int, int]]:
    """Stocked node x SKU pairs, a seeded sample of ``max_series`` of them when given."""
    pairs = [(int(n), int(s)) for n, s in np.argwhere(history.stocked)]
    if max_series is not None and len(pairs) > max_series:
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(pairs), size=max_series, replace=False).tolist())
        pairs = [pairs[i] for i in keep]
    return pairs


def history_backtest(
    history: History, *, horizon: int = 14, origins: int = 4, max_series: int | None = 400, seed: int = 0
) -> dict[str, object]:
    """MASE per demand class of the forecasts and of seasonal-naive on ``history``'s daily demand."""
    series = {
        f"{history.nodes[n]}/{history.skus[s]}": history.demand[:, n, s].astype(np.float64)
        for n, s in _pairs(history, max_series, seed)
    }
    out = backtest(series, horizon=horizon, origins=origins).as_dict()
    out["series_scored_of"] = len(series)
    return out


@dataclass
class StockoutScore:
    """Warnings replayed over a history's last days, scored against its lost sales."""

    lead_time_days: int
    z: float
    pairs: int
    days: int
    warning_days: int = 0
    true_warning_days: int = 0
    episodes: int = 0
    episodes_warned: int = 0
    lead_times: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        lt = np.array(self.lead_times, dtype=np.float64)
        return {
            "lead_time_days": self.lead_time_days,
            "z": self.z,
            "pairs": self.pairs,
            "days": self.days,
            "warning_days": self.warning_days,
            "precision": round(self.true_warning_days / self.warning_days, 4) if self.warning_days else None,
            "episodes": self.episodes,
            "recall": round(self.episodes_warned / self.episodes, 4) if self.episodes else None,
            "lead_time_median_days": float(np.median(lt)) if lt.size else None,
            "lead_time_mean_days": round(float(lt.mean()), 2) if lt.size else None,
        }


def _episode_starts(lost: np.ndarray) -> list[int]:
    """Days a run of lost-sales days starts (a stock-out episode)."""
    out = lost > 0
    return [d for d in range(out.size) if out[d] and (d == 0 or not out[d - 1])]


def _receipts(history: History) -> np.ndarray:
    """Stock received each day, recovered from the history (stock change plus what was sold): the
    replay knows the receipts due within the lead time, as a planner knows open purchase orders."""
    served = history.demand - history.lost_sales
    receipts = np.zeros_like(history.on_hand)
    receipts[1:] = np.maximum(np.diff(history.on_hand, axis=0) + served[1:], 0)
    return receipts


@dataclass(frozen=True)
class _Replay:
    """What every pair's replay shares: the days replayed, the refit forecasts and the receipts.
    Held together so the per-pair steps take one argument rather than eight."""

    history: History
    first: int
    end: int
    lead_time_days: int
    refit_every: int
    z: float
    fits: dict[int, list[Forecast]]
    receipts: np.ndarray


def _warns_on(replay: _Replay, p: int, n: int, s: int, d: int) -> bool:
    """Whether the morning of day ``d`` warns for pair ``p`` (node ``n``, SKU ``s``): forecast demand
    over the lead time, from the latest refit on or before ``d``, outruns stock plus receipts due."""
    lt = replay.lead_time_days
    stock = float(replay.history.on_hand[d - 1, n, s])
    if stock <= 0 or replay.history.lost_sales[d - 1, n, s] > 0:
        return False  # already out: a stock-out to handle, not one to foresee
    fit_day = replay.first + (d - replay.first) // replay.refit_every * replay.refit_every
    fc = replay.fits[fit_day][p]
    offset = d - fit_day
    ahead = Forecast(fc.mean[offset : offset + lt], fc.sigma, fc.method, fc.demand_class)
    receipts = replay.receipts
    inbound = {k + 1: float(receipts[d + k, n, s]) for k in range(lt) if receipts[d + k, n, s]}
    proj = project_stockout(ahead, available=stock, lead_time_days=lt, inbound=inbound, z=replay.z)
    return proj.days_to_stockout is not None


def _score_warnings(score: StockoutScore, replay: _Replay, warned: list[int], starts: set[int]) -> None:
    """Count the warning days, and those right (an episode starts within the lead time): precision."""
    for d in warned:
        score.warning_days += 1
        if any(e in starts for e in range(d, d + replay.lead_time_days)):
            score.true_warning_days += 1


def _score_episodes(score: StockoutScore, replay: _Replay, warned: set[int], starts: set[int]) -> None:
    """Count the episodes the replay could have warned a full lead time before, those warned (recall),
    and each warned one's lead time from the first of its consecutive warnings."""
    lt = replay.lead_time_days
    for e in sorted(starts):
        if not replay.first + lt <= e < replay.end:
            continue  # the replay could not have warned a full lead time before it
        score.episodes += 1
        before = [d for d in range(e - lt + 1, e + 1) if d in warned]
        if not before:
            continue
        score.episodes_warned += 1
        start = before[-1]
        while start - 1 in warned:
            start -= 1
        score.lead_times.append(e - start)


def stockout_backtest(
    history: History,
    *,
    lead_time_days: int = 7,
    window: int = 28,
    refit_every: int = 7,
    z: float = DEFAULT_Z,
    max_series: int | None = 400,
    seed: int = 0,
) -> StockoutScore:
    """Replay ``window`` mornings before the last ``lead_time_days`` days of ``history``: warn
    when forecast demand over the lead time (``z`` errors above the mean) exceeds the morning's
    stock plus the receipts due in that time. A warning day is right when a stock-out episode (a
    run of lost-sales days) starts within the lead time; an episode counts as warned when a
    warning came in the lead time before it starts, and its lead time is the days since the first
    of those consecutive warnings. Forecasts are refit every ``refit_every`` days on the demand
    known then (never on what follows)."""
    end = history.days - lead_time_days
    first = end - window
    if first < 28:
        raise ValidationFailed(
            f"a history of {history.days} days is too short to replay {window} days of warnings with a "
            f"{lead_time_days}-day lead time (needs at least {28 + window + lead_time_days} days)",
            days=history.days,
        )
    pairs = _pairs(history, max_series, seed)
    score = StockoutScore(lead_time_days, z, len(pairs), window)
    horizon = refit_every + lead_time_days
    # Forecasts of every pair, refit every ``refit_every`` days on what was known then, all pairs
    # of one refit day fitted together.
    fits: dict[int, list[Forecast]] = {
        day: forecast_all([history.demand[:day, n, s].astype(np.float64) for n, s in pairs], horizon)
        for day in range(first, end, refit_every)
    }
    replay = _Replay(history, first, end, lead_time_days, refit_every, z, fits, _receipts(history))
    for p, (n, s) in enumerate(pairs):
        starts = set(_episode_starts(history.lost_sales[:, n, s]))
        warned = [d for d in range(first, end) if _warns_on(replay, p, n, s, d)]
        _score_warnings(score, replay, warned, starts)
        _score_episodes(score, replay, set(warned), starts)
    return score


class StockoutWarning(BaseModel):
    """A node about to run out of a SKU within the lead time, and what it is short."""

    node_id: str
    sku: str
    available: int = Field(description="Units the node can still promise (on hand less reserved).")
    days_to_stockout: int = Field(ge=1, description="Days until projected demand exceeds stock (1 = tomorrow).")
    shortfall: int = Field(ge=1, description="Units short at the end of the lead time: what a transfer should bring.")
    lead_time_days: int
    demand_class: str
    method: str


def scan_twin(
    adapters: Adapters,
    demand: Mapping[tuple[str, str], Sequence[float]],
    *,
    lead_time_days: int = 7,
    z: float = DEFAULT_Z,
    inbound: Mapping[tuple[str, str], Mapping[int, float]] | None = None,
) -> list[StockoutWarning]:
    """Warnings for each ``(node, sku)`` whose daily demand series is given, against the live
    twin's available stock (and ``inbound`` receipts by day offset), most urgent first."""
    skus = sorted({sku for _, sku in demand})
    atp = adapters.wms.atp(skus) if skus else {}
    out: list[StockoutWarning] = []
    keys = sorted(demand)
    for (node, sku), fc in zip(keys, forecast_all([demand[k] for k in keys], lead_time_days), strict=True):
        available = atp.get(sku, {}).get(node, 0)
        proj = project_stockout(
            fc,
            available=available,
            lead_time_days=lead_time_days,
            inbound=(inbound or {}).get((node, sku)),
            z=z,
        )
        if proj.days_to_stockout is None or proj.shortfall < 1:
            continue
        out.append(
            StockoutWarning(
                node_id=node,
                sku=sku,
                available=available,
                days_to_stockout=proj.days_to_stockout,
                shortfall=proj.shortfall,
                lead_time_days=lead_time_days,
                demand_class=fc.demand_class.value,
                method=fc.method,
            )
        )
    return sorted(out, key=lambda w: (w.days_to_stockout, -w.shortfall, w.node_id, w.sku))


def warning_alert(warning: StockoutWarning, *, today: date) -> Alert:
    """The ``stockout_risk`` alert a warning raises: one per node, SKU and day, so a repeated scan
    the same day is the same alert (deduplicated) and not a second run."""
    return Alert(
        id=f"stockout-risk:{warning.node_id}:{warning.sku}:{today.isoformat()}",
        kind=ExceptionKind.STOCKOUT_RISK,
        severity="critical" if warning.days_to_stockout <= 2 else "warning",
        labels={"node": warning.node_id, "sku": warning.sku, "units": str(warning.shortfall)},
        summary=(
            f"{warning.sku} at {warning.node_id} projected to run out in {warning.days_to_stockout} day(s); "
            f"{warning.shortfall} units short over the {warning.lead_time_days}-day lead time "
            f"({warning.available} available, {warning.method} forecast, {warning.demand_class} demand)"
        ),
    )


def warning_alerts(warnings: Iterable[StockoutWarning], *, today: date) -> list[Alert]:
    return [warning_alert(w, today=today) for w in warnings]
