"""Load test of the HTTP API over loopback: alert ingest and ``POST /v1/decide/route``.

It seeds a small network in a fresh SQLite database under a temporary home, starts
``orderops serve`` on a free 127.0.0.1 port in a subprocess (in-process workers off, so ingest is
measured alone and queued runs pile up as jobs), and drives it with an async httpx client:

(a) Alert ingest: ``--alerts`` signed deliveries (Standard-Webhooks HMAC over the raw body) with
    ``--concurrency`` in flight; fingerprints are mixed (random node among the network's nodes,
    kinds, a varying label) so dedup, storm coalescing and run creation all happen. Reports
    throughput and p50/p99 latency, and the outcome mix.
(b) Decide route: an open-loop schedule of ``--rps`` requests per second for ``--duration``
    seconds over random order ids (a request is sent at its scheduled time whether or not earlier
    ones answered, so latency includes queueing). Reports p50/p99 and the achieved rate, and the
    same for ``GET /healthz`` (no work behind it) at the same schedule on the same server, first.

Bounded in count and time; loopback only; everything it creates is under a temporary directory.

    python -m evals.bench.bench_api --alerts 1000 --rps 50 --duration 20
    python -m evals.bench.bench_api --pg postgresql+psycopg://postgres@127.0.0.1:5432/test  # a fresh database there
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from api import webhooks
from api.auth import ApiKeyStore, Role, create_key
from core.db import make_database, migrate
from core.netgen import NetworkSpec, generate_network
from core.settings import Settings
from evals.bench.bench_network import fresh_database, percentile

SECRET = "whsec_" + "YmVuY2gtc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg=="
KINDS = ("node_congestion", "node_closure", "stockout", "promise_risk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(home: Path, orders: int, pg_url: str | None = None) -> tuple[str, list[str], list[str]]:
    """A fresh database with a network (SQLite under ``home``, or the empty PostgreSQL database
    ``pg_url``); returns (url, node ids, order ids)."""
    url = pg_url or f"sqlite:///{home / 'orderops.db'}"
    db = make_database(url=url)
    try:
        if pg_url is None:
            migrate(db)
        generate_network(db, NetworkSpec(seed=11, nodes=8, skus=200, customers=10, orders=orders))
        with db.engine.connect() as conn:
            nodes = [r[0] for r in conn.exec_driver_sql("select id from nodes order by id")]
            order_ids = [r[0] for r in conn.exec_driver_sql("select id from orders order by id limit 5000")]
    finally:
        db.dispose()
    return url, nodes, order_ids


def start_server(home: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_")}
    env.update(
        DATABASE_URL=url,
        ORDEROPS_HOME=str(home),
        ORDEROPS_WEBHOOK_SECRET=SECRET,
        ORDEROPS_WORKER_THREADS="0",
    )
    code = "import sys; from api.cli import run; sys.exit(run(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "serve", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"server exited: {err[-2000:]}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("server did not become ready")


def summary(latencies: list[float], elapsed: float, statuses: Counter[int]) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "elapsed_s": round(elapsed, 2),
        "rate_per_s": round(len(ms) / elapsed, 1) if elapsed else None,
        "p50_ms": round(percentile(ms, 50), 2) if ms else None,
        "p99_ms": round(percentile(ms, 99), 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
        "statuses": dict(sorted(statuses.items())),
    }


async def bench_alerts(base: str, nodes: list[str], n: int, concurrency: int) -> dict[str, Any]:
    rng = random.Random(5)
    bodies = []
    for i in range(n):
        alert = {
            "id": f"bench-{i}",
            "kind": rng.choice(KINDS),
            "severity": "warning",
            "labels": {"node": rng.choice(nodes), "shard": str(rng.randrange(50))},
            "summary": "bench alert",
        }
        bodies.append((f"msg_{i}", json.dumps(alert).encode()))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one_worker() -> None:
            while not queue.empty():
                webhook_id, body = queue.get_nowait()
                ts = int(time.time())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": webhooks.sign(SECRET, webhook_id, ts, body),
                }
                t0 = time.perf_counter()
                r = await client.post("/v1/alerts", content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] += 1
                if r.status_code < 300:
                    for res in r.json()["results"]:
                        outcomes[res["outcome"]] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {**summary(latencies, elapsed, statuses), "concurrency": concurrency, "outcomes": dict(outcomes)}


async def bench_route(
    base: str, key: str, order_ids: list[str], rps: float, duration_s: float, *, trivial: bool = False
) -> dict[str, Any]:
    """Open-loop load on ``POST /v1/decide/route``, or (``trivial``) on ``GET /healthz`` of the same
    server at the same schedule: what the framework and loopback cost with no work behind them."""
    rng = random.Random(9)
    total = int(rps * duration_s)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=200)) as client:

        async def one(order_id: str) -> None:
            t0 = time.perf_counter()
            try:
                if trivial:
                    r = await client.get("/healthz")
                else:
                    r = await client.post("/v1/decide/route", json={"order_id": order_id}, headers=headers)
            except httpx.TransportError:
                statuses[0] += 1  # no answer (60 s client timeout, connection dropped): counted, not timed
                return
            latencies.append(time.perf_counter() - t0)
            statuses[r.status_code] += 1

        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / rps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(rng.choice(order_ids))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {**summary(latencies, elapsed, statuses), "target_rps": rps}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orderops-bench-api-") as tmp, ExitStack() as stack:
        home = Path(tmp)
        pg_url = None
        if args.pg:
            pg_db = stack.enter_context(fresh_database("postgresql", args.pg))
            pg_url = pg_db.engine.url.render_as_string(hide_password=False)
        url, nodes, order_ids = seed(home, args.orders, pg_url)
        keys = ApiKeyStore.for_settings(Settings(home=home, database_url=url))  # the server's database
        viewer = create_key(keys, "bench-viewer", [Role.VIEWER])
        keys.db.dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(home, url, port)
        try:
            await wait_ready(base, proc)
            alerts = await bench_alerts(base, nodes, args.alerts, args.concurrency) if args.alerts else {}
            trivial = await bench_route(base, viewer, order_ids, args.rps, args.duration, trivial=True)
            route = await bench_route(base, viewer, order_ids, args.rps, args.duration)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        return {
            "backend": "postgresql" if args.pg else "sqlite",
            "orders": args.orders,
            "alert_ingest": alerts,
            "healthz": trivial,
            "decide_route": route,
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=1000, help="signed alert deliveries (max 100,000)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rps", type=float, default=50.0, help="decide/route requests per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of decide/route load (max 300)")
    p.add_argument("--orders", type=int, default=5000, help="orders in the seeded network")
    p.add_argument("--json", action="store_true")
    p.add_argument("--pg", default=None, help="PostgreSQL admin URL: run on a fresh database there (default: SQLite)")
    args = p.parse_args(argv)
    args.alerts = min(max(0, args.alerts), 100_000)
    args.duration = min(max(1.0, args.duration), 300.0)
    args.concurrency = min(max(1, args.concurrency), 256)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    a = result["alert_ingest"]
    print(f"API bench on {result['backend']} ({result['orders']} orders), uvicorn on loopback")
    if a:
        print(
            f"  alert ingest: {a['requests']} signed alerts, concurrency {a['concurrency']}: {a['rate_per_s']}/s, "
            f"p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms, max {a['max_ms']} ms; statuses {a['statuses']}; "
            f"outcomes {a['outcomes']}"
        )
    for name, r in (("healthz (trivial)", result["healthz"]), ("decide/route", result["decide_route"])):
        print(
            f"  {name}: {r['requests']} requests at {r['target_rps']} rps target ({r['rate_per_s']}/s achieved): "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms; statuses {r['statuses']}"
        )


if __name__ == "__main__":
    main()
