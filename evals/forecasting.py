"""The forecast and stock-out warning eval suite (issue 18): on generated histories with injected
incidents, forecast MASE per demand class against weekly seasonal-naive, and stock-out warnings'
precision, recall and lead time, pooled over several history seeds.

``python -m evals.forecasting [--seeds 1,2,3] [--series 400] [--out FILE]`` prints the numbers as
JSON (and writes them to ``--out``); the committed reference is ``evals/reference/forecast.json``.
Like every suite here it reports; the tests check that it runs, not what it scores.

What this module must never do: touch a database (histories are drawn in memory).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.history import generate_history
from core.netgen import NetworkSpec
from services.forecasting import StockoutScore, history_backtest, stockout_backtest

SUITE_VERSION = "forecast/1"


def _pool_mase(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Windows-weighted MASE per class over the seeds' backtests."""
    pooled: dict[str, list[float]] = {}
    for run in runs:
        for name, c in [*run["classes"].items(), ("all", run["overall"])]:
            acc = pooled.setdefault(name, [0.0, 0.0, 0.0, 0.0])
            acc[0] += c["model_mase"] * c["windows"]
            acc[1] += c["seasonal_naive_mase"] * c["windows"]
            acc[2] += c["windows"]
            acc[3] += c["series"]
    out: dict[str, Any] = {}
    for name, (m, n, w, s) in pooled.items():
        out[name] = {
            "series": int(s),
            "windows": int(w),
            "model_mase": round(m / w, 4) if w else None,
            "seasonal_naive_mase": round(n / w, 4) if w else None,
            "relative": round(m / n, 4) if n else None,
        }
    return out


def _pool_stockouts(scores: Sequence[StockoutScore]) -> dict[str, Any]:
    pooled = StockoutScore(scores[0].lead_time_days, scores[0].z, 0, scores[0].days)
    for s in scores:
        pooled.pairs += s.pairs
        pooled.warning_days += s.warning_days
        pooled.true_warning_days += s.true_warning_days
        pooled.episodes += s.episodes
        pooled.episodes_warned += s.episodes_warned
        pooled.lead_times += s.lead_times
    return pooled.as_dict()


def run_suite(
    seeds: Sequence[int] = (1, 2, 3),
    *,
    days: int = 180,
    series: int = 400,
    network: NetworkSpec | None = None,
    zs: Sequence[float] = (0.0, 1.0),
    lead_time_days: int = 7,
) -> dict[str, Any]:
    """Score forecasts and warnings on one history per seed (incidents injected) and pool them."""
    backtests: list[dict[str, Any]] = []
    warnings: dict[float, list[StockoutScore]] = {z: [] for z in zs}
    for seed in seeds:
        history = generate_history(seed, days, network)
        backtests.append(history_backtest(history, max_series=series, seed=seed))
        for z in zs:
            warnings[z].append(
                stockout_backtest(history, lead_time_days=lead_time_days, z=z, max_series=series, seed=seed)
            )
    return {
        "suite": SUITE_VERSION,
        "seeds": list(seeds),
        "days": days,
        "series_per_seed": series,
        "forecast_mase": _pool_mase(backtests),
        "stockout_warnings": {f"z={z:g}": _pool_stockouts(s) for z, s in warnings.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.forecasting", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3", help="History seeds, comma-separated.")
    parser.add_argument("--series", type=int, default=400, help="Node x SKU series per seed (a seeded sample).")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds takes whole numbers separated by commas, got {args.seeds!r}")
    if not seeds or args.series < 1:
        parser.error("at least one seed and one series")
    result = run_suite(seeds, days=args.days, series=args.series)
    text = json.dumps(result, indent=2, sort_keys=True)
    sys.stdout.write(text + "\n")
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
