"""Benchmark of batch sourcing: the HiGHS optimiser against the greedy congestion playbook.

Seeds one SQLite network (8 nodes) with :func:`core.netgen.generate_network`, then, for each size
in ascending order, moves unreleased orders onto the busiest DC until that many are there and sets
its backlog so that half of them must move (``capacity + size / 2``). It plans the congestion
twice with :class:`~agents.playbooks.PlaybookPlanner` — greedy only, then with the optimiser —
and prints, for greedy, the optimiser's plan and the LP bound: the sourcing score over every
affected order (lower is better), late orders, cost to serve, estimated CO2e (kg) and the time of
each (greedy: the whole playbook; optimiser: the whole playbook with it, and the optimiser alone:
laying out the batch, LP, rounding and the per-order decisions; the score matrix itself is built
once, before greedy ranks from it, and counts in the whole plan), wall-clock and CPU seconds of
this process (on shared cores the CPU seconds are what the work costs; the wall-clock includes
waiting behind other work: the load averages are printed with the table).
With ``--repeat N`` every plan runs N times and the medians are printed.

The scores come from the plan's ``optimizer`` record, which evaluates both plans with the same
arithmetic (the scorer's score, each order shifted by its place in its target's queue).

It only creates and deletes its own temporary SQLite file.

    python -m evals.bench.bench_sourcing --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from agents.plan import ExceptionKind, Scope, Triage
from agents.playbooks import PlaybookPlanner
from agents.sourcing import SourcingWeights
from core.clock import FixedClock
from core.db import make_database, migrate
from core.domain import OrderStatus
from core.netgen import NetworkSpec, generate_network
from evals.bench.bench_planning import UNRELEASED, _trim
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters, OrderFilter
from tools.base import ToolEnv


def _fill(adapters: Adapters, node: str, size: int) -> int:
    """Move created orders onto ``node`` until ``size`` unreleased ones are there."""
    here = adapters.oms.count_orders(OrderFilter(node_ids=[node], statuses=UNRELEASED))
    offset = 0
    while here < size:
        batch = adapters.oms.list_orders(
            OrderFilter(statuses=[OrderStatus.CREATED]), limit=size - here + 500, offset=offset
        )
        if not batch:
            raise SystemExit(f"not enough created orders to put {size} at {node}")
        ids = [o.id for o in batch if o.node_id != node][: size - here]
        offset += len(batch)
        if ids:
            here += len(adapters.oms.move_orders(ids, node).moved)
    return here


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="1000,10000", help="affected orders, comma-separated (100000 takes minutes)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--time-limit", type=float, default=60.0, help="optimiser time limit, seconds")
    ap.add_argument("--optimiser-only", action="store_true", help="skip the greedy-only plan (time it as 0)")
    ap.add_argument("--repeat", type=int, default=1, help="plan each size this many times; medians are printed")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    spec = NetworkSpec(seed=args.seed, nodes=8, skus=500, customers=40, orders=int(max(sizes) / 0.20) + 1000)
    tmp = Path(tempfile.mkdtemp(prefix="orderops_bench_sourcing_"))
    try:
        db = make_database(url=f"sqlite:///{(tmp / 'bench.db').as_posix()}")
        migrate(db)
        started = time.perf_counter()
        generate_network(db, spec)
        print(f"seeded {spec.orders:,} orders in {time.perf_counter() - started:.1f}s")
        clock = FixedClock(datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))
        adapters = embedded_adapters(db, clock)
        env = ToolEnv(adapters, clock)
        loads = [ld for ld in adapters.wms.node_load() if ld.node_id.startswith("DC-")]
        node = min(loads, key=lambda ld: ld.unreleased_orders).node_id
        others = [ld.node_id for ld in loads if ld.node_id != node]
        _trim(adapters, node, others, sizes[0])
        greedy_planner = PlaybookPlanner(weights=SourcingWeights(batch_optimizer=False))
        opt_planner = PlaybookPlanner(weights=SourcingWeights(optimizer_time_limit_s=args.time_limit))
        rows: list[tuple[int, dict[str, float], dict[str, Any]]] = []
        loads_at_start = _load()
        for size in sizes:
            here = _fill(adapters, node, size)
            cap = adapters.wms.get_node(node).daily_capacity
            adapters.wms.set_backlog(node, cap + here // 2)
            triage = Triage(
                kind=ExceptionKind.NODE_CONGESTION, scope=Scope(node_ids=[node]), summary="bench", source="alert"
            )
            runs: list[dict[str, Any]] = []
            for _ in range(max(1, args.repeat)):
                t0, c0 = time.perf_counter(), time.process_time()
                if not args.optimiser_only:
                    greedy_planner.plan(triage, env)
                greedy_s, greedy_cpu = time.perf_counter() - t0, time.process_time() - c0
                t0, c0 = time.perf_counter(), time.process_time()
                plan = opt_planner.plan(triage, env)
                total_s, total_cpu = time.perf_counter() - t0, time.process_time() - c0
                runs.append({"greedy_s": greedy_s, "greedy_cpu": greedy_cpu, "total_s": total_s,
                             "total_cpu": total_cpu, "opt": plan.optimizer or {}})  # fmt: skip
            rows.append((here, _medians(runs), runs[-1]["opt"]))
        print(f"\ncongestion at {node} (SQLite, 8 nodes); half of the affected orders must move")
        _table(rows, args.repeat)
        print(f"load average at the start of planning {loads_at_start}, at the end {_load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load() -> str:
    """The 1/5/15-minute load averages: on shared cores, what the wall-clock figures waited behind."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median of each timing over the runs (the optimiser's own from its record)."""
    keys = ("solve_s", "cpu_s", "score_s", "lp_s", "decide_s")
    out = {k: statistics.median(float(r[k]) for r in runs) for k in ("greedy_s", "greedy_cpu", "total_s", "total_cpu")}
    out |= {k: statistics.median(float(r["opt"].get(k) or 0.0) for r in runs) for k in keys}
    return out


def _table(rows: list[tuple[int, dict[str, float], dict[str, Any]]], repeat: int) -> None:
    print(f"times: wall-clock / CPU seconds{f', median of {repeat} runs' if repeat > 1 else ''}")
    print(f"{'affected':>9} {'plan':>10} {'score':>12} {'late':>6} {'cost $':>12} {'CO2e kg':>10} {'moved':>6} "
          f"{'wall s':>8} {'CPU s':>7}")  # fmt: skip
    for here, t, opt in rows:
        g, o = opt.get("greedy", {}), opt.get("optimizer") or opt.get("greedy", {})
        print(f"{here:>9,} {'greedy':>10} {g.get('score', 0):>12,.0f} {g.get('late', 0):>6} "
              f"{g.get('cost', 0):>12,.0f} {g.get('co2e_kg', 0):>10,.0f} {g.get('moved', 0):>6} "
              f"{t['greedy_s']:>8.2f} {t['greedy_cpu']:>7.2f}")  # fmt: skip
        print(f"{'':>9} {'optimiser':>10} {o.get('score', 0):>12,.0f} {o.get('late', 0):>6} "
              f"{o.get('cost', 0):>12,.0f} {o.get('co2e_kg', 0):>10,.0f} {o.get('moved', 0):>6} "
              f"{t['total_s']:>8.2f} {t['total_cpu']:>7.2f}")  # fmt: skip
        print(f"{'':>9} {'LP bound':>10} {opt.get('bound') or 0:>12,.0f} {'':>6} {'':>12} {'':>10} {'':>6} "
              f"{t['lp_s']:>8.2f}")  # fmt: skip
        gap = opt.get("gap")
        print(f"{'':>9} method={opt.get('method')} gap={'-' if gap is None else f'{gap:.3%}'}; optimiser alone "
              f"{t['solve_s']:.2f} s wall, {t['cpu_s']:.2f} s CPU (wall: batch arrays {t['score_s']:.2f} s, "
              f"LP {t['lp_s']:.2f} s, decisions {t['decide_s']:.2f} s; {opt.get('fractional')} fractional) "
              f"{opt.get('reason', '')}")  # fmt: skip


if __name__ == "__main__":
    main()
