"""Benchmark of the congestion playbook: planning time against the number of affected orders.

Seeds one SQLite network (8 nodes) big enough for the largest size, then, for each size in
ascending order, moves unreleased orders onto the busiest DC with the OMS adapter's
``move_orders`` until that many are there, sets its backlog far over capacity (so the playbook
must move every one of them) and times ``PlaybookPlanner().plan`` — reads, scoring and grouping,
nothing executed. The table gives the time per affected order, which stays flat when planning
scales linearly.

It only creates and deletes its own temporary SQLite file.

    python -m evals.bench.bench_planning --sizes 1000,10000,100000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

from agents.plan import ExceptionKind, Scope, Triage
from agents.playbooks import PlaybookPlanner
from core.clock import FixedClock
from core.db import make_database, migrate
from core.domain import OrderStatus
from core.netgen import NetworkSpec, generate_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters, OrderFilter
from tools.base import ToolEnv

UNRELEASED = [OrderStatus.CREATED, OrderStatus.ALLOCATED]


def _trim(adapters: Adapters, node: str, others: list[str], size: int) -> None:
    """Move orders off ``node`` until ``size`` unreleased ones are left there (allocated ones are
    de-allocated first, so they move without needing stock elsewhere)."""
    here = adapters.oms.list_orders(OrderFilter(node_ids=[node], statuses=UNRELEASED), limit=10**7)
    extra = here[size:]
    allocated = [o.id for o in extra if o.status is OrderStatus.ALLOCATED]
    if allocated:
        adapters.oms.transition(allocated, OrderStatus.CREATED)
    if extra:
        adapters.oms.move_orders([o.id for o in extra], others[0])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="1000,10000,100000", help="affected orders, comma-separated")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    # About 22% of generated orders are created (movable anywhere); leave headroom.
    spec = NetworkSpec(seed=args.seed, nodes=8, skus=500, customers=40, orders=int(max(sizes) / 0.20) + 1000)
    tmp = Path(tempfile.mkdtemp(prefix="orderops_bench_plan_"))
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
        planner = PlaybookPlanner()
        rows = []
        for size in sizes:
            here = adapters.oms.count_orders(OrderFilter(node_ids=[node], statuses=UNRELEASED))
            offset = 0
            while here < size:
                # Created orders move anywhere (they hold no stock); allocated ones need stock there.
                batch = adapters.oms.list_orders(
                    OrderFilter(statuses=[OrderStatus.CREATED]), limit=size - here + 500, offset=offset
                )
                if not batch:
                    raise SystemExit(f"not enough created orders to put {size} at {node}")
                ids = [o.id for o in batch if o.node_id != node][: size - here]
                offset += len(batch)
                if ids:
                    here += len(adapters.oms.move_orders(ids, node).moved)
            adapters.wms.set_backlog(node, 10**8)
            triage = Triage(
                kind=ExceptionKind.NODE_CONGESTION, scope=Scope(node_ids=[node]), summary="bench", source="alert"
            )
            t0 = time.perf_counter()
            plan = planner.plan(triage, env)
            elapsed = time.perf_counter() - t0
            moved = sum(len(s.args["order_ids"]) for s in plan.steps)
            rows.append((here, elapsed, moved, len(plan.not_planned), len(plan.steps)))
        print(f"\ncongestion playbook on SQLite, node {node}")
        print(f"{'affected':>10} {'plan s':>9} {'us/order':>9} {'moved':>8} {'stay':>7} {'calls':>6}")
        for here, elapsed, moved, stay, steps in rows:
            print(f"{here:>10,} {elapsed:>9.2f} {elapsed / here * 1e6:>9.0f} {moved:>8,} {stay:>7,} {steps:>6}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
