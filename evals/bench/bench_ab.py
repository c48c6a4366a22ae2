"""Benchmark of the offline sourcing A/B: the paired bootstrap over many orders.

Draws ``--orders`` outcomes per arm (seeded: served, cost, on time, split, arm B a little dearer
and later) and times :func:`evals.ab.compare_arms` with ``--resamples`` resamples. With
``--replay N`` it also replays N orders of a generated network through both arms (the sourcing
scorer per order, the slow part) and times that apart.

    python -m evals.bench.bench_ab --orders 50000 --resamples 1000
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from agents.sourcing import SourcingWeights
from core.netgen import NetworkSpec
from evals.ab import Outcome, ab_replay, compare_arms
from evals.env import CaseEnv, fresh_database


def outcomes(n: int, seed: int, dearer: float, late: float) -> list[Outcome]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        served = rng.random() < 0.97
        out.append(
            Outcome(
                served=served,
                cost=rng.uniform(8, 40) * (1 + dearer) if served else 0.0,
                on_time=served and rng.random() < 0.9 - late,
                split=served and rng.random() < 0.03,
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--replay", type=int, default=0, help="also replay this many orders of a generated network")
    args = ap.parse_args(argv)
    a = outcomes(args.orders, 1, 0.0, 0.0)
    b = outcomes(args.orders, 2, 0.02, 0.01)
    t0 = time.perf_counter()
    r = compare_arms(a, b, weights_a=SourcingWeights(), weights_b=SourcingWeights(), resamples=args.resamples)
    took = time.perf_counter() - t0
    d = r.diff["cost_to_serve"]
    print(f"bootstrap: {args.orders:,} orders x {args.resamples:,} resamples, 2 arms paired: {took:.2f} s")
    print(f"  cost_to_serve B - A {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]; "
          f"on_time B - A {r.diff['on_time_rate'].mean:+.4f}")  # fmt: skip
    if args.replay:
        tmp = Path(tempfile.mkdtemp(prefix="orderops_bench_ab_"))
        try:
            spec = NetworkSpec(seed=7, nodes=8, skus=200, customers=20, orders=args.replay)
            db = fresh_database(tmp, spec, "ab")
            env = CaseEnv.build(db, spec, None)
            t0 = time.perf_counter()
            ab_replay(env.adapters, env.clock, SourcingWeights(), SourcingWeights(carbon_per_kg=1.0),
                      resamples=args.resamples)  # fmt: skip
            print(f"replay: {args.replay:,} orders through 2 arms + bootstrap: {time.perf_counter() - t0:.2f} s")
            db.dispose()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
