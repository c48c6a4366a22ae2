"""Benchmark of the network: how fast a big network seeds, and how fast the main batch reads answer.

For each backend and size it seeds a fresh database with :func:`core.netgen.generate_network`,
then times the reads agents lean on, through the embedded adapters: orders of one node in given
statuses (list, count, count by status) and ATP of 50 SKUs across all nodes. Each read runs
``--reps`` times (after one untimed warm-up) with a different node or SKU set each time; the
report gives the median and p95.

It only ever creates and drops its own databases: a temporary SQLite file, and a PostgreSQL
database named ``orderops_bench_<random>`` on the server of ``--postgres-url``.

    python -m evals.bench.bench_network --sizes 100000,1000000 --backend both
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from core.clock import FixedClock
from core.db import Database, make_database, migrate
from core.domain import OrderStatus
from core.netgen import NetworkSpec, generate_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters, OrderFilter

DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ATP_SKUS = 50


@dataclass
class Result:
    backend: str
    orders: int
    seed_s: float
    analyze_s: float
    rows: int
    orders_per_s: float
    rows_per_s: float
    reads_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """read name -> {"median": ms, "p95": ms, "n": reps, "result": size of the last answer}"""


@contextmanager
def fresh_database(backend: str, pg_admin: str) -> Iterator[Database]:
    """An empty migrated database of ``backend``, removed afterwards whatever happens."""
    if backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="orderops_bench_"))
        db = make_database(url=f"sqlite:///{tmp / 'bench.db'}")
        try:
            migrate(db)
            yield db
        finally:
            db.dispose()
            shutil.rmtree(tmp, ignore_errors=True)
        return
    name = f"orderops_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = make_database(url=pg_admin.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate(db)
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported value was measured)."""
    ordered = sorted(samples)
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def time_read(reps: int, call: Callable[[int], int]) -> dict[str, float]:
    """Run ``call(i)`` once untimed, then ``reps`` times timed; ``call`` returns its answer's size."""
    size = call(reps)  # warm-up: caches, prepared plans, connection pool
    samples = []
    for i in range(reps):
        started = time.perf_counter()
        size = call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "median": round(statistics.median(samples), 3),
        "p95": round(percentile(samples, 95), 3),
        "n": reps,
        "result": size,
    }


def bench_reads(adapters: Adapters, *, reps: int, seed: int) -> dict[str, dict[str, float]]:
    oms, wms = adapters.oms, adapters.wms
    nodes = [n.id for n in wms.list_nodes()]
    queued = [OrderStatus.ALLOCATED, OrderStatus.RELEASED]
    rng = random.Random(seed)
    skus = sorted({i.sku for i in wms.inventory()})
    sku_sets = [rng.sample(skus, min(ATP_SKUS, len(skus))) for _ in range(reps + 1)]

    def node(i: int) -> str:
        return nodes[i % len(nodes)]

    return {
        "list_orders(node, allocated+released, limit=1000)": time_read(
            reps, lambda i: len(oms.list_orders(OrderFilter(node_ids=[node(i)], statuses=queued), limit=1000))
        ),
        "list_orders(..., with_lines=True)": time_read(
            reps,
            lambda i: len(
                oms.list_orders(OrderFilter(node_ids=[node(i)], statuses=queued), limit=1000, with_lines=True)
            ),
        ),
        "count_orders(node, allocated+released)": time_read(
            reps, lambda i: oms.count_orders(OrderFilter(node_ids=[node(i)], statuses=queued))
        ),
        "count_by_status(node)": time_read(
            reps, lambda i: sum(oms.count_by_status(OrderFilter(node_ids=[node(i)])).values())
        ),
        f"atp({ATP_SKUS} skus, all nodes)": time_read(
            reps, lambda i: sum(len(v) for v in wms.atp(sku_sets[i]).values())
        ),
    }


def run_one(backend: str, orders: int, args: argparse.Namespace) -> Result:
    spec = NetworkSpec(seed=args.seed, nodes=args.nodes, skus=args.skus, customers=args.customers, orders=orders)
    with fresh_database(backend, args.postgres_url) as db:
        _say(f"[{backend}] seeding {orders:,} orders ...")
        summary = generate_network(db, spec, progress=_progress if args.verbose else None)
        started = time.perf_counter()
        with db.engine.begin() as conn:  # fresh statistics, as a loaded production database has
            conn.execute(text("ANALYZE"))
        analyze_s = time.perf_counter() - started
        _say(f"[{backend}] seeded {summary.rows:,} rows in {summary.elapsed_s:.1f}s; timing reads ...")
        clock = FixedClock(datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))
        reads = bench_reads(embedded_adapters(db, clock), reps=args.reps, seed=args.seed)
    return Result(
        backend=backend,
        orders=orders,
        seed_s=summary.elapsed_s,
        analyze_s=round(analyze_s, 3),
        rows=summary.rows,
        orders_per_s=round(orders / summary.elapsed_s) if summary.elapsed_s else 0.0,
        rows_per_s=round(summary.rows / summary.elapsed_s) if summary.elapsed_s else 0.0,
        reads_ms=reads,
    )


def render(results: list[Result]) -> str:
    out = ["Seeding", f"{'backend':<9}{'orders':>11}{'rows':>12}{'seconds':>10}{'orders/s':>11}{'rows/s':>11}"]
    for r in results:
        out.append(
            f"{r.backend:<9}{r.orders:>11,}{r.rows:>12,}{r.seed_s:>10.1f}{r.orders_per_s:>11,.0f}{r.rows_per_s:>11,.0f}"
        )
    out += ["", "Reads through the embedded adapters (ms)"]
    out.append(f"{'backend':<9}{'orders':>11}  {'read':<52}{'median':>9}{'p95':>9}{'answer':>8}")
    for r in results:
        for name, s in r.reads_ms.items():
            out.append(
                f"{r.backend:<9}{r.orders:>11,}  {name:<52}{s['median']:>9.2f}{s['p95']:>9.2f}{int(s['result']):>8}"
            )
    return "\n".join(out)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress(step: str, done: int, total: int) -> None:
    if step != "orders" or done == total or done % 200_000 == 0:
        _say(f"  {step}: {done:,}/{total:,}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="100000,1000000", help="comma-separated order counts (default: %(default)s)")
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--reps", type=int, default=20, help="timed repetitions of each read (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--nodes", type=int, default=8)
    p.add_argument("--skus", type=int, default=500)
    p.add_argument("--customers", type=int, default=20)
    p.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN, help="admin URL; a fresh database is made beside it")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--verbose", action="store_true", help="report seeding progress on stderr")
    args = p.parse_args(argv)
    try:
        args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.size_list or args.reps < 1:
        p.error("need at least one size and --reps >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [run_one(b, n, args) for n in args.size_list for b in backends]
    if args.json:
        doc: dict[str, Any] = {
            "spec": {"seed": args.seed, "nodes": args.nodes, "skus": args.skus, "customers": args.customers},
            "reps": args.reps,
            "results": [r.__dict__ for r in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
