"""Benchmark of the offline sourcing A/B: the paired bootstrap over many orders.

Draws ``--orders`` outcomes per arm (seeded: served, cost, on time, split, arm B a little dearer
and later) and times :func:`evals.ab.compare_arms` with ``--resamples`` resamples. With
``--replay N`` it also replays N orders of a generated network as ``orderops eval ab`` does
(:func:`evals.ab.ab_replay`: the orders read from the database, every order scored at every node
with numpy and decided in turn against the running stock in both arms, the paired bootstrap) and
prints each phase and the total; ``--repeat K`` replays K times and prints the medians too;
``--scalar`` times the per-order scalar scorer loop as well. Times are wall-clock and CPU seconds
of this process (on shared cores the CPU seconds are what the work costs), with the load average.

    python -m evals.bench.bench_ab --orders 50000 --resamples 1000 --replay 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from agents.sourcing import SourcingWeights
from core.netgen import NetworkSpec
from evals.ab import Outcome, ab_replay, compare_arms, decide_arms, read_replay_orders, stock_on_hand
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


Times = tuple[float, float]
"""Wall-clock and CPU seconds."""


def _replay(env: CaseEnv, resamples: int, repeat: int) -> None:
    """Time :func:`evals.ab.ab_replay` as ``orderops eval ab`` runs it, by phase: reading the
    orders (and the twin, and the stock), deciding them in both arms, the bootstrap; then the total.
    With ``repeat`` > 1 also the median of each over the runs."""
    a_w, b_w = SourcingWeights(), SourcingWeights(carbon_per_kg=1.0)
    runs: list[list[Times]] = []
    for k in range(repeat):
        marks = [(time.perf_counter(), time.process_time())]

        def mark(_phase: str, marks: list[Times] = marks) -> None:
            marks.append((time.perf_counter(), time.process_time()))

        r = ab_replay(env.adapters, env.clock, a_w, b_w, db=env.db, resamples=resamples, on_phase=mark)
        (w0, c0), *ends = marks
        phases = [(w - pw, c - pc) for (w, c), (pw, pc) in zip(ends, marks, strict=False)]
        runs.append([*phases, (ends[-1][0] - w0, ends[-1][1] - c0)])
        label = f"run {k + 1}" if repeat > 1 else "replay"
        co2e = r.diff["co2e_per_order"].mean
        print(f"{label}: {r.orders:,} orders, {resamples:,} resamples: {_phases(runs[-1])}; "
              f"CO2e/order B - A {co2e:+.4f}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    if repeat > 1:
        med = [(statistics.median(r[i][0] for r in runs), statistics.median(r[i][1] for r in runs)) for i in range(4)]
        print(f"median of {repeat}: {_phases(med)}")


def _phases(t: list[Times]) -> str:
    (lw, lc), (aw, ac), (bw, bc), (tw, tc) = t
    return (f"load {lw:.2f} s ({lc:.2f} CPU) + 2 arms {aw:.2f} s ({ac:.2f}) + bootstrap {bw:.2f} s ({bc:.2f}) "
            f"= total {tw:.2f} s wall, {tc:.2f} s CPU")  # fmt: skip


def _scalar(env: CaseEnv) -> None:
    """The per-order scalar scorer loop on the same orders (minutes at 50k)."""
    a_w, b_w = SourcingWeights(), SourcingWeights(carbon_per_kg=1.0)
    orders = read_replay_orders(env.db, env.clock.today())
    view = TwinView.load(env.adapters, env.clock)
    view.prepare(orders)
    stock = stock_on_hand(env.adapters)
    t0, c0 = time.perf_counter(), time.process_time()
    decide_arms(orders, view, stock, [a_w, b_w], vectorised=False)
    print(f"  scalar: 2 arms {time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--replay", type=int, default=0, help="also replay this many orders of a generated network")
    ap.add_argument("--scalar", action="store_true", help="also time the replay with the scalar scorer loop")
    ap.add_argument("--repeat", type=int, default=1, help="replay this many times; print each and the medians")
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
            _replay(env, args.resamples, max(1, args.repeat))
            if args.scalar:
                _scalar(env)
            db.dispose()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
