"""Benchmark of the tool layer: what the gateway's guardrails cost per call, and how fast a big
reroute simulates.

(a) Overhead. A small allowed write (hold one order, then release it) is timed ``--calls`` times
through :meth:`tools.gateway.ToolGateway.propose` (validate, simulate, policy, audit, idempotency,
execute, audit) and as the tool's bare ``execute``, interleaved so that both see the same database
state. The same for a read (``get_orders`` of one order) through :meth:`ToolGateway.read` versus
``tool.run``. The report gives the median and p99 of each, and of the per-pair difference. A
``simulate`` series shows how much of the write overhead is the simulation itself.

(b) Simulation at scale. On a network of ``--orders`` orders it times
``RerouteOrders().simulate(env, args)`` for batches of 1,000 and 10,000 orders (unreleased orders
of the other nodes, moved to one DC), median over ``--reps``.

It only ever creates and drops its own databases (see :mod:`evals.bench.bench_network`).

    python -m evals.bench.bench_tools --backend both
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from datetime import time as dtime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from core.clock import FixedClock
from core.db import Database
from core.domain import CustomerTier, OrderStatus
from core.netgen import NetworkSpec, generate_network
from evals.bench.bench_network import DEFAULT_PG_ADMIN, fresh_database, percentile
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.calls import Actor
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import OrderFilter
from tools.base import OrderSetArgs, ToolEnv
from tools.gateway import Guard, RunLedger, ToolGateway
from tools.read import GetOrders, GetOrdersArgs
from tools.write import HoldOrders, ReleaseHolds, RerouteArgs, RerouteOrders

T = TypeVar("T")
AGENT = Actor(kind="agent", id="bench", on_behalf_of="bench-user")


def gateway_for(db: Database, spec: NetworkSpec) -> ToolGateway:
    """The production wiring (default policy, audit with redaction, approvals, idempotency)."""
    clock = FixedClock(datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))
    adapters = embedded_adapters(db, clock)
    guard = Guard(
        policy=PolicyEngine.from_path(None),
        audit=AuditTrail(db, Redactor(key=b"b" * 32), clock),
        approvals=ApprovalStore(db, clock),
        idempotency=IdempotencyStore(db, clock),
    )
    return ToolGateway(ToolEnv(adapters, clock), guard)


def stats(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), 3),
        "p99": round(percentile(samples, 99), 3),
        "n": len(samples),
    }


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = fn()
    return (time.perf_counter() - started) * 1000, value


def small_order(gw: ToolGateway) -> str:
    """A created order of a standard/silver customer worth little: the default policy allows it."""
    oms = gw.env.adapters.oms
    tiers = {c.id: c.tier for c in oms.list_customers()}
    found = oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED], max_value=Decimal(2000)), limit=1000)
    ok = [o for o in found if tiers[o.customer_id] in (CustomerTier.STANDARD, CustomerTier.SILVER)]
    if not ok:
        raise SystemExit("the network holds no small standard/silver order to hold and release")
    return ok[0].id


def bench_overhead(gw: ToolGateway, calls: int) -> dict[str, dict[str, float]]:
    """Gateway vs bare tool, for a small allowed write and a one-order read."""
    env = gw.env
    order_id = small_order(gw)
    hold, release = HoldOrders(), ReleaseHolds()
    args = OrderSetArgs(order_ids=[order_id], reason="bench")
    raw = args.model_dump(mode="json")
    via_gw: list[float] = []
    bare: list[float] = []
    sim: list[float] = []
    pairs = max(1, calls // 2)
    for i in range(pairs + 1):  # the first pair warms caches and the connection pool, untimed
        samples = []
        for tool in (hold, release):
            # A run per call: the default policy's per-run budget of 200 calls must not deny the bench.
            run = RunLedger(run_id=f"bench-{i}-{tool.name}")
            key = f"{tool.name}-{i}"
            ms, out = _timed(partial(gw.propose, tool.name, raw, actor=AGENT, run=run, idempotency_key=key))
            if out.status != "executed":
                raise SystemExit(f"{tool.name} through the gateway was {out.status}: {out.reasons}")
            samples.append(("gw", ms))
        for tool in (hold, release):
            samples.append(("sim", _timed(partial(tool.simulate, env, args))[0]))
            ms, res = _timed(partial(tool.execute, env, args))
            if res.done != [order_id]:
                raise SystemExit(f"bare {tool.name} did not act: {res.skipped}")
            samples.append(("bare", ms))
        if i:
            via_gw += [ms for kind, ms in samples if kind == "gw"]
            bare += [ms for kind, ms in samples if kind == "bare"]
            sim += [ms for kind, ms in samples if kind == "sim"]
    reader = GetOrders()
    read_args = GetOrdersArgs(order_ids=[order_id])
    read_gw: list[float] = []
    read_bare: list[float] = []
    for i in range(calls + 1):
        run = RunLedger(run_id=f"bench-read-{i}")
        ms_gw, out = _timed(partial(gw.read, reader.name, {"order_ids": [order_id]}, actor=AGENT, run=run))
        if out.status != "read":
            raise SystemExit(f"get_orders through the gateway was {out.status}: {out.reasons}")
        ms_bare, _ = _timed(partial(reader.run, env, read_args))
        if i:
            read_gw.append(ms_gw)
            read_bare.append(ms_bare)
    return {
        "write: gateway.propose (hold/release 1 order)": stats(via_gw),
        "write: tool.execute (bare)": stats(bare),
        "write: tool.simulate (part of the gateway path)": stats(sim),
        "write: gateway - bare (per pair)": stats([g - b for g, b in zip(via_gw, bare, strict=True)]),
        "read: gateway.read (get_orders 1 order)": stats(read_gw),
        "read: tool.run (bare)": stats(read_bare),
        "read: gateway - bare (per pair)": stats([g - b for g, b in zip(read_gw, read_bare, strict=True)]),
    }


def reroute_batch(gw: ToolGateway, size: int) -> RerouteArgs:
    """``size`` unreleased orders of other nodes (then any others), to move to the busiest DC."""
    oms, wms = gw.env.adapters.oms, gw.env.adapters.wms
    loads = [ld for ld in wms.node_load() if ld.node_id.startswith("DC-")]
    target = max(loads, key=lambda ld: ld.unreleased_orders).node_id
    others = [n.id for n in wms.list_nodes() if n.id != target]
    unreleased = [OrderStatus.CREATED, OrderStatus.ALLOCATED]
    ids = [o.id for o in oms.list_orders(OrderFilter(node_ids=others, statuses=unreleased), limit=size)]
    if len(ids) < size:
        chosen = set(ids)
        extra = oms.list_orders(OrderFilter(node_ids=others), limit=size * 2)
        ids += [o.id for o in extra if o.id not in chosen][: size - len(ids)]
    if len(ids) < size:
        raise SystemExit(f"the network has only {len(ids)} orders away from {target}; raise --orders")
    return RerouteArgs(order_ids=ids, to_node_id=target, reason="bench")


def bench_simulation(gw: ToolGateway, sizes: list[int], reps: int) -> dict[str, dict[str, float]]:
    tool = RerouteOrders()
    out: dict[str, dict[str, float]] = {}
    for size in sizes:
        args = reroute_batch(gw, size)
        tool.simulate(gw.env, args)  # warm-up
        samples = []
        ok = 0
        for _ in range(reps):
            ms, preview = _timed(partial(tool.simulate, gw.env, args))
            samples.append(ms)
            ok = len(preview.affected)
        out[f"reroute simulate {size:,} orders"] = {
            "median_s": round(statistics.median(samples) / 1000, 3),
            "max_s": round(max(samples) / 1000, 3),
            "n": reps,
            "movable": ok,
        }
    return out


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": backend}
    small = NetworkSpec(seed=args.seed, nodes=8, skus=200, customers=20, orders=5_000)
    with fresh_database(backend, args.postgres_url) as db:
        _say(f"[{backend}] seeding {small.orders:,} orders for the overhead bench ...")
        generate_network(db, small)
        _say(f"[{backend}] timing {args.calls} write and {args.calls} read calls ...")
        result["overhead_ms"] = bench_overhead(gateway_for(db, small), args.calls)
    big = NetworkSpec(seed=args.seed, nodes=8, skus=500, customers=20, orders=args.orders)
    with fresh_database(backend, args.postgres_url) as db:
        _say(f"[{backend}] seeding {big.orders:,} orders for the simulation bench ...")
        generate_network(db, big)
        _say(f"[{backend}] timing reroute simulations ...")
        result["simulate"] = bench_simulation(gateway_for(db, big), args.batch_list, args.reps)
    return result


def render(results: list[dict[str, Any]]) -> str:
    out = ["Overhead per call (ms)", f"{'backend':<10}{'series':<52}{'median':>9}{'p99':>9}{'n':>6}"]
    for r in results:
        for name, s in r["overhead_ms"].items():
            out.append(f"{r['backend']:<10}{name:<52}{s['median']:>9.2f}{s['p99']:>9.2f}{int(s['n']):>6}")
    out += ["", "Simulation (s)", f"{'backend':<10}{'series':<40}{'median':>9}{'max':>9}{'movable':>9}"]
    for r in results:
        for name, s in r["simulate"].items():
            out.append(f"{r['backend']:<10}{name:<40}{s['median_s']:>9.3f}{s['max_s']:>9.3f}{int(s['movable']):>9}")
    return "\n".join(out)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--calls", type=int, default=300, help="timed calls per series (default: %(default)s)")
    p.add_argument("--orders", type=int, default=60_000, help="orders of the simulation network (default: %(default)s)")
    p.add_argument("--batches", default="1000,10000", help="reroute batch sizes (default: %(default)s)")
    p.add_argument("--reps", type=int, default=3, help="timed simulations per batch size (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN, help="admin URL; a fresh database is made beside it")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = p.parse_args(argv)
    try:
        args.batch_list = [int(s.replace("_", "")) for s in args.batches.split(",") if s.strip()]
    except ValueError:
        p.error(f"--batches must be comma-separated integers, got {args.batches!r}")
    if args.calls < 2 or args.reps < 1 or not args.batch_list:
        p.error("need --calls >= 2, --reps >= 1 and at least one batch size")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    if args.json:
        doc = {"seed": args.seed, "calls": args.calls, "orders": args.orders, "reps": args.reps, "results": results}
        print(json.dumps(doc, indent=2))
    else:
        print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
