"""Benchmark of the forecasts: a whole network's node x SKU series forecast one by one and all
together, and the stock-out projections over a 7-day lead time.

Draws one generated history (:func:`core.history.generate_history`) and, on its stocked node x SKU
pairs, times :func:`core.forecast.forecast` per series, :func:`core.forecast.forecast_all` on all
of them (the Holt-Winters fits batched), and :func:`core.forecast.project_stockout` per pair,
after one untimed warm-up series.

    python -m evals.bench.bench_forecast [--seed 1] [--days 180] [--series 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

import numpy as np

from core.forecast import forecast, forecast_all, project_stockout
from core.history import generate_history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.bench_forecast", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--series", type=int, default=0, help="At most this many pairs (0: every stocked pair).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    history = generate_history(args.seed, args.days)
    pairs = [(int(n), int(s)) for n, s in np.argwhere(history.stocked)]
    if args.series > 0:
        pairs = pairs[: args.series]
    series = [history.demand[:, n, s].astype(np.float64) for n, s in pairs]
    forecast(series[0], 7)  # warm-up
    started = time.perf_counter()
    alone = [forecast(y, 7) for y in series]
    one_by_one = time.perf_counter() - started
    started = time.perf_counter()
    together = forecast_all(series, 7)
    batched = time.perf_counter() - started
    started = time.perf_counter()
    for fc, (n, s) in zip(together, pairs, strict=True):
        project_stockout(fc, available=float(history.on_hand[-1, n, s]), lead_time_days=7, z=1.0)
    projected = time.perf_counter() - started
    out = {
        "series": len(pairs),
        "days": args.days,
        "by_model": dict(Counter(f.method for f in alone)),
        "one_by_one_s": round(one_by_one, 3),
        "batched_s": round(batched, 3),
        "projection_s": round(projected, 3),
        "series_per_s_batched": round(len(pairs) / batched, 1) if batched else None,
    }
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stdout.write(
            f"{out['series']} series x {args.days} days ({out['by_model']}): one by one {out['one_by_one_s']} s, "
            f"batched {out['batched_s']} s ({out['series_per_s_batched']} series/s), "
            f"stock-out projections {out['projection_s']} s\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
