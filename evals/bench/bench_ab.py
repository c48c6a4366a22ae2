"""Benchmark of the offline sourcing A/B: the paired bootstrap over many orders.

Draws ``--orders`` outcomes per arm (seeded: served, cost, on time, split, arm B a little dearer
and later) and times :func:`evals.ab.compare_arms` with ``--resamples`` resamples. With
``--replay N`` it also replays N orders of a generated network through both arms (every order
scored at every node with numpy, then decided in turn against the running stock) and times that
apart; ``--scalar`` times the per-order scalar scorer loop too. Times are wall-clock and CPU
seconds of this process (on shared cores the CPU seconds are what the work costs).

    python -m evals.bench.bench_ab --orders 50000 --resamples 1000 --replay 50000
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
from evals.ab import Outcome, compare_arms, decide_arms, replay_orders, stock_on_hand
from evals.env import CaseEnv, fresh_database
from tools.twin import TwinView


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


def _replay(env: CaseEnv, n: int, resamples: int, scalar: bool) -> None:
    """Time the replay: loading the network's orders, deciding them in both arms, the bootstrap."""
    a_w, b_w = SourcingWeights(), SourcingWeights(carbon_per_kg=1.0)
    t0, c0 = time.perf_counter(), time.process_time()
    orders = replay_orders(env.adapters, env.clock.today())
    view = TwinView.load(env.adapters, env.clock)
    view.prepare(orders)
    stock = stock_on_hand(env.adapters)
    print(f"replay: {len(orders):,} orders loaded: {time.perf_counter() - t0:.2f} s wall, "
          f"{time.process_time() - c0:.2f} s CPU")  # fmt: skip
    for vectorised in (True, False) if scalar else (True,):
        t0, c0 = time.perf_counter(), time.process_time()
        out_a, out_b = decide_arms(orders, view, stock, [a_w, b_w], vectorised=vectorised)
        mid, mid_cpu = time.perf_counter() - t0, time.process_time() - c0
        r = compare_arms(out_a, out_b, weights_a=a_w, weights_b=b_w, resamples=resamples)
        print(f"  {'vectorised' if vectorised else 'scalar'}: 2 arms {mid:.2f} s wall, {mid_cpu:.2f} s CPU; "
              f"+ bootstrap {time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU; "
              f"CO2e/order B - A {r.diff['co2e_per_order'].mean:+.4f}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--replay", type=int, default=0, help="also replay this many orders of a generated network")
    ap.add_argument("--scalar", action="store_true", help="also time the replay with the scalar scorer loop")
    args = ap.parse_args(argv)
    a = outcomes(args.orders, 1, 0.0, 0.0)
    b = outcomes(args.orders, 2, 0.02, 0.01)
    t0, c0 = time.perf_counter(), time.process_time()
    r = compare_arms(a, b, weights_a=SourcingWeights(), weights_b=SourcingWeights(), resamples=args.resamples)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    d = r.diff["cost_to_serve"]
    print(f"bootstrap: {args.orders:,} orders x {args.resamples:,} resamples, 2 arms paired: "
          f"{took:.2f} s wall, {cpu:.2f} s CPU")  # fmt: skip
    print(f"  cost_to_serve B - A {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]; "
          f"on_time B - A {r.diff['on_time_rate'].mean:+.4f}")  # fmt: skip
    if args.replay:
        tmp = Path(tempfile.mkdtemp(prefix="orderops_bench_ab_"))
        try:
            spec = NetworkSpec(seed=7, nodes=8, skus=200, customers=20, orders=args.replay)
            db = fresh_database(tmp, spec, "ab")
            env = CaseEnv.build(db, spec, None)
            _replay(env, args.replay, args.resamples, args.scalar)
            db.dispose()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
