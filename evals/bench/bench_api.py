"""Load test of the HTTP API over loopback: alert ingest and ``POST /v1/decide/route``.

It seeds a small network in a fresh SQLite database under a temporary home, starts
``orderops serve`` on a free 127.0.0.1 port in a subprocess (in-process workers off, so ingest is
measured alone and queued runs pile up as jobs; ``--server-workers N`` starts it with ``--workers N``:
N HTTP processes on one port, and every server CPU figure is summed over the whole process tree),
and drives it with an async httpx client:

(a) Alert ingest: ``--alerts`` signed deliveries (Standard-Webhooks HMAC over the raw body) with
    ``--concurrency`` keep-alive connections in flight (a lean client, :class:`RawClient`: httpx's
    own CPU would be a fifth of the server's on the shared cores); fingerprints are mixed (random
    node among the network's nodes, kinds, a varying label) so dedup, storm coalescing and run
    creation all happen. First the same load on ``GET /healthz``: the ceiling of the server stack.
    Reports throughput, p50/p99 latency, CPU milliseconds per request of the server and of the
    client (the number that holds on a shared machine), and the outcome mix.
(b) Decide route: an open-loop schedule of ``--rps`` requests per second for ``--duration``
    seconds over random order ids (a request is sent at its scheduled time whether or not earlier
    ones answered, so latency includes queueing). Reports p50/p99 and the achieved rate, and the
    same for ``GET /healthz`` (no work behind it) at the same schedule on the same server, first.
(c) Decide route, closed loop: ``--decide`` requests from ``--decide-concurrency`` keep-alive
    connections as fast as the server answers, after the same on ``GET /healthz``: the throughput
    ceiling of each and their p99, with CPU milliseconds per request (server and client). After the
    server stops, the decision log is counted (every answered decision must be logged) and one
    decision is timed in-process (CPU ms, no HTTP): from the service's in-memory snapshot, and the
    old way (:func:`agents.sourcing.decide_route`, reference data loaded per call).

    The closed loop's client: ``wrk`` (C, ~0.02 ms CPU per request) when it is on the PATH, else
    the Python :class:`RawClient` (~0.2-0.35 ms per request, on the same two cores as the server,
    so at ~1,000/s it takes a third of a core from the server it measures); ``--client`` picks
    one. Both endpoints are always measured with the same client, and every line names it. wrk
    runs for ``--closed-seconds`` rather than a count; requests it had in flight when it stopped
    may be answered and logged without being counted, so the log check is "logged >= answered".

Bounded in count and time; loopback only; everything it creates is under a temporary directory.

    python -m evals.bench.bench_api --alerts 1000 --rps 50 --duration 20
    python -m evals.bench.bench_api --alerts 0 --rps 200 --duration 10 --decide 3000 --decide-concurrency 8
    python -m evals.bench.bench_api --alerts 0 --rps 150 --duration 10 --decide 3000 --server-workers 2
    python -m evals.bench.bench_api --pg postgresql+psycopg://postgres@127.0.0.1:5432/test  # a fresh database there
    python -m evals.bench.bench_api --alerts 0 --decide 3000 --server-loop asyncio --server-http h11  # fallback
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
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


def start_server(
    home: Path, url: str, port: int, workers: int = 1, loop: str = "auto", http: str = "auto"
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_")}
    env.update(
        DATABASE_URL=url,
        ORDEROPS_HOME=str(home),
        ORDEROPS_WEBHOOK_SECRET=SECRET,
        ORDEROPS_WORKER_THREADS="0",
    )
    code = "import sys; from api.cli import run; sys.exit(run(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "serve", "--port", str(port), "--log-level", "warning"]
    cmd += ["--workers", str(workers), "--loop", loop, "--http", http]
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


class RawClient:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams, one connection per worker.

    The bench shares the machine's cores with the server: httpx spends ~1.5 ms of CPU per request
    (measured: 1.6 s for 1,000 alerts), as much as a fifth of what the server spends on an alert.
    This one writes prepared bytes and reads ``Content-Length`` (or chunked) answers, so the client's
    share of the CPU is small and the server's rate is what is measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        assert self.reader is not None
        status_line, _, rest = (await self.reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        fields = dict(line.split(b":", 1) for line in rest.split(b"\r\n") if b":" in line)
        fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            data = await self._chunked()
        else:
            data = await self.reader.readexactly(int(fields.get(b"content-length", b"0")))
        if fields.get(b"connection", b"").lower() == b"close":
            await self.close()
        return int(status_line.split()[1]), data

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readuntil(b"\r\n")
        return b"".join(parts)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (``orderops serve --workers N``: the supervisor and its
    N children), from the parent ids in Linux ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_used(server_pid: int) -> tuple[float, float]:
    """(this process's CPU s, the server's CPU s so far, summed over its process tree: with several
    server processes the children do the work). A child that ended since ``before`` is missed; the
    bench's do not end while it measures."""
    server = sum(process_cpu_s(p) for p in process_tree(server_pid))
    return time.process_time(), server


def per_request_cpu(before: tuple[float, float], server_pid: int, n: int) -> dict[str, float]:
    """CPU milliseconds per request spent by the client and by the server since ``before``: a
    measure that holds on a shared machine, where rates and latencies depend on what else runs."""
    after = cpu_used(server_pid)
    n = max(1, n)
    return {
        "client_cpu_ms_per_req": round((after[0] - before[0]) * 1000 / n, 3),
        "server_cpu_ms_per_req": round((after[1] - before[1]) * 1000 / n, 3),
    }


async def closed_loop(
    port: int, n: int, concurrency: int, make: Any, server_pid: int, on_answer: Any = None
) -> dict[str, Any]:
    """``n`` requests from ``concurrency`` keep-alive connections, each sending its next request as
    soon as the last is answered. ``make(i)`` gives (method, path, headers, body)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    todo = iter(range(n))

    async def one_worker() -> None:
        client = RawClient("127.0.0.1", port)
        try:
            for i in todo:
                method, path, headers, body = make(i)
                t0 = time.perf_counter()
                status, data = await client.request(method, path, headers, body)
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
                if on_answer is not None:
                    on_answer(status, data)
        finally:
            await client.close()

    before = cpu_used(server_pid)
    started = time.perf_counter()
    await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        **summary(latencies, elapsed, statuses),
        "concurrency": concurrency,
        **per_request_cpu(before, server_pid, n),
    }


def alert_bodies(nodes: list[str], n: int) -> list[tuple[str, bytes]]:
    """``n`` (webhook id, body) pairs with mixed fingerprints: a random node and kind, a varying label."""
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
    return bodies


async def bench_alerts(port: int, server_pid: int, nodes: list[str], n: int, concurrency: int) -> dict[str, Any]:
    """Signed alert deliveries, closed loop; the outcome mix shows dedup and coalescing happened."""
    bodies = alert_bodies(nodes, n)
    outcomes: Counter[str] = Counter()

    def make(i: int) -> tuple[str, str, dict[str, str], bytes]:
        webhook_id, body = bodies[i]
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": webhooks.sign(SECRET, webhook_id, ts, body),
        }
        return "POST", "/v1/alerts", headers, body

    def on_answer(status: int, data: bytes) -> None:
        if status < 300:
            for res in json.loads(data)["results"]:
                outcomes[res["outcome"]] += 1

    out = await closed_loop(port, n, concurrency, make, server_pid, on_answer)
    return {**out, "outcomes": dict(outcomes)}


async def bench_healthz_closed(port: int, server_pid: int, n: int, concurrency: int) -> dict[str, Any]:
    """``GET /healthz`` (no work behind it) with the same client and concurrency as the alerts: the
    ceiling of this server stack (uvicorn, middleware, routing) on this machine."""

    def make(_: int) -> tuple[str, str, dict[str, str], bytes]:
        return "GET", "/healthz", {}, b""

    return await closed_loop(port, n, concurrency, make, server_pid)


KEEP_ALIVE_REUSE_S = 4.0
"""Reuse an idle connection only this long (uvicorn's keep-alive timeout is 5 s)."""


async def bench_route(
    port: int, key: str, order_ids: list[str], rps: float, duration_s: float, *, trivial: bool = False
) -> dict[str, Any]:
    """Open-loop load on ``POST /v1/decide/route``, or (``trivial``) on ``GET /healthz`` of the same
    server at the same schedule: what the framework and loopback cost with no work behind them.

    Lean keep-alive connections (:class:`RawClient`), one per request in flight: an idle one is
    reused, else a new one opens (httpx's pool slowed down the client itself once hundreds of
    requests were in flight, so the achieved rate measured the client)."""
    rng = random.Random(9)
    total = int(rps * duration_s)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    idle: list[tuple[float, RawClient]] = []
    opened: list[RawClient] = []

    def connection() -> RawClient:
        # uvicorn closes a keep-alive connection idle for 5 s: reusing one that old would count its
        # EOF as a dropped request, so such connections are let go here.
        while idle:
            since, client = idle.pop()
            if time.perf_counter() - since < KEEP_ALIVE_REUSE_S:
                return client
        client = RawClient("127.0.0.1", port)
        opened.append(client)
        return client

    async def one(order_id: str) -> None:
        client = connection()
        t0 = time.perf_counter()
        try:
            if trivial:
                status, _ = await asyncio.wait_for(client.request("GET", "/healthz", {}), 60)
            else:
                body = json.dumps({"order_id": order_id}).encode()
                status, _ = await asyncio.wait_for(client.request("POST", "/v1/decide/route", headers, body), 60)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            statuses[0] += 1  # no answer (60 s timeout, connection dropped): counted, not timed
            await client.close()
            return
        latencies.append(time.perf_counter() - t0)
        statuses[status] += 1
        idle.append((time.perf_counter(), client))

    started = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = started + i / rps - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(rng.choice(order_ids))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    for client in opened:
        await client.close()
    return {**summary(latencies, elapsed, statuses), "target_rps": rps, "connections": len(opened)}


async def bench_decide_closed(
    port: int, server_pid: int, key: str, order_ids: list[str], n: int, concurrency: int
) -> dict[str, Any]:
    """Closed loop on ``GET /healthz`` then on ``POST /v1/decide/route`` (random order ids), same
    client, count and concurrency: decide's throughput and p99 next to the stack's own."""
    rng = random.Random(13)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    bodies = [json.dumps({"order_id": rng.choice(order_ids)}).encode() for _ in range(n)]

    def healthz(_: int) -> tuple[str, str, dict[str, str], bytes]:
        return "GET", "/healthz", {}, b""

    def decide(i: int) -> tuple[str, str, dict[str, str], bytes]:
        return "POST", "/v1/decide/route", headers, bodies[i]

    return {
        "healthz": await closed_loop(port, n, concurrency, healthz, server_pid),
        "decide": await closed_loop(port, n, concurrency, decide, server_pid),
    }


WRK_SCRIPT = """
local bodies = {%(bodies)s}
local reqs, i = {}, 0
init = function(args)
  for k, b in ipairs(bodies) do
    reqs[k] = wrk.format(%(method)s, %(path)s, {%(headers)s}, b ~= "" and b or nil)
  end
end
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
done = function(s, latency, _)
  local e = s.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    s.requests, s.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_str(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


def wrk_closed_loop(
    port: int,
    server_pid: int,
    *,
    method: str,
    path: str,
    headers: dict[str, str],
    bodies: list[bytes],
    seconds: float,
    concurrency: int,
    tmp: Path,
) -> dict[str, Any]:
    """``wrk`` (one thread, ``concurrency`` keep-alive connections) for ``seconds`` on one path,
    cycling through ``bodies``: the same numbers as :func:`closed_loop`, from wrk's own latency
    histogram (p50/p99/max) and its count of answers; client CPU is wrk's (its rusage)."""
    script = tmp / f"wrk-{path.strip('/').replace('/', '-')}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "bodies": ", ".join(lua_str(b.decode()) for b in bodies),
            "method": lua_str(method),
            "path": lua_str(path),
            "headers": ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items()),
        }
    )
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-T10s", "-s", str(script)]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    before = cpu_used(server_pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = cpu_used(server_pid)[1] - before[1]
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no summary: {out[-2000:]}")
    r = json.loads(line.removeprefix("WRKJSON "))
    n, elapsed = max(1, r["requests"]), r["duration_us"] / 1e6
    bad = r["status"]  # answers outside 2xx/3xx
    dropped = r["connect"] + r["read"] + r["write"] + r["timeout"]
    statuses = {k: v for k, v in ((200, r["requests"] - bad), (-1, bad), (0, dropped)) if v}
    wrk_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return {
        "client": "wrk",
        "requests": r["requests"],
        "elapsed_s": round(elapsed, 2),
        "rate_per_s": round(r["requests"] / elapsed, 1) if elapsed else None,
        "p50_ms": round(r["p50_us"] / 1000, 2),
        "p99_ms": round(r["p99_us"] / 1000, 2),
        "max_ms": round(r["max_us"] / 1000, 2),
        "statuses": statuses,
        "concurrency": concurrency,
        "client_cpu_ms_per_req": round(wrk_cpu * 1000 / n, 3),
        "server_cpu_ms_per_req": round(server * 1000 / n, 3),
    }


async def bench_decide_wrk(
    port: int, server_pid: int, key: str, order_ids: list[str], seconds: float, concurrency: int, tmp: Path
) -> dict[str, Any]:
    """:func:`bench_decide_closed` with ``wrk`` as the client (``GET /healthz`` first, then decide
    over 3,000 random order ids, each for ``seconds``)."""
    rng = random.Random(13)
    bodies = [json.dumps({"order_id": rng.choice(order_ids)}).encode() for _ in range(3000)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    common: dict[str, Any] = {"seconds": seconds, "concurrency": concurrency, "tmp": tmp}
    healthz = await asyncio.to_thread(
        wrk_closed_loop, port, server_pid, method="GET", path="/healthz", headers={}, bodies=[b""], **common
    )
    decide = await asyncio.to_thread(
        wrk_closed_loop, port, server_pid, method="POST", path="/v1/decide/route", headers=headers, bodies=bodies,
        **common,
    )  # fmt: skip
    return {"healthz": healthz, "decide": decide}


def closed_client(choice: str) -> str:
    """The closed loop's client: ``wrk`` when asked for or (``auto``) on the PATH, else ``python``."""
    if choice == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--client wrk: wrk is not on the PATH (apt-get install wrk)")
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return choice


def in_process_decide(url: str, order_ids: list[str], n: int = 300) -> dict[str, Any]:
    """CPU ms per decision without HTTP: the decision service (snapshot, order and ATP read fresh,
    logged) and :func:`agents.sourcing.decide_route` (reference data loaded per call); and how many
    decisions the server logged."""
    from agents.sourcing import decide_route
    from core.clock import SystemClock
    from services.decisions import DecisionService
    from tools.adapters.embedded import embedded_adapters
    from tools.base import ToolEnv

    db = make_database(url=url)
    try:
        with db.engine.connect() as conn:
            logged = int(conn.exec_driver_sql("select count(*) from sourcing_decisions").scalar_one())
        clock = SystemClock()
        adapters = embedded_adapters(db, clock)
        svc = DecisionService.build(db, adapters, clock, batch=64)
        ids = order_ids[:n]
        svc.decide(ids[0])  # the snapshot
        out: dict[str, Any] = {"server_logged_decisions": logged}
        for name, call in (
            ("service_cpu_ms", svc.decide),
            ("service_repeat_cpu_ms", svc.decide),  # same inputs again: answered from the memo
            ("decide_route_cpu_ms", lambda i: decide_route(i, ToolEnv(adapters, clock))),
        ):
            t0 = time.process_time()
            for order_id in ids:
                call(order_id)
            out[name] = round((time.process_time() - t0) * 1000 / len(ids), 3)
        svc.log.flush()
        return out
    finally:
        db.dispose()


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
        load_before = os.getloadavg()
        proc = start_server(home, url, port, args.server_workers, args.server_loop, args.server_http)
        client = closed_client(args.client)
        try:
            await wait_ready(base, proc)
            ceiling = await bench_healthz_closed(port, proc.pid, args.alerts, args.concurrency) if args.alerts else {}
            alerts = await bench_alerts(port, proc.pid, nodes, args.alerts, args.concurrency) if args.alerts else {}
            trivial = await bench_route(port, viewer, order_ids, args.rps, args.duration, trivial=True)
            route = await bench_route(port, viewer, order_ids, args.rps, args.duration)
            closed: dict[str, Any] = {}
            if args.decide and client == "wrk":
                closed = await bench_decide_wrk(
                    port, proc.pid, viewer, order_ids, args.closed_seconds, args.decide_concurrency, home
                )
            elif args.decide:
                closed = await bench_decide_closed(
                    port, proc.pid, viewer, order_ids, args.decide, args.decide_concurrency
                )
                closed = {k: {"client": "python", **v} for k, v in closed.items()}
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        answered = sum(r["statuses"].get(200, 0) for r in (route, closed.get("decide", {"statuses": {}})))
        in_process = {**in_process_decide(url, order_ids), "server_answered_decisions": answered}
        return {
            "backend": "postgresql" if args.pg else "sqlite",
            "orders": args.orders,
            "server_workers": args.server_workers,
            "server_stack": {"loop": args.server_loop, "http": args.server_http},
            "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "healthz_closed_loop": ceiling,
            "alert_ingest": alerts,
            "healthz": trivial,
            "decide_route": route,
            "decide_closed_loop": closed,
            "decide_in_process": in_process,
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=1000, help="signed alert deliveries (max 100,000)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rps", type=float, default=50.0, help="decide/route requests per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of decide/route load (max 300)")
    p.add_argument("--orders", type=int, default=5000, help="orders in the seeded network")
    p.add_argument("--decide", type=int, default=2000, help="closed-loop decide/route requests (0: skip; max 100,000)")
    p.add_argument("--decide-concurrency", type=int, default=8, help="connections of the closed-loop decide load")
    p.add_argument("--server-workers", type=int, default=1, help="server processes (serve --workers)")
    p.add_argument("--server-loop", default="auto", help="serve --loop: auto|uvloop|asyncio")
    p.add_argument("--server-http", default="auto", help="serve --http: auto|httptools|h11")
    p.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="closed-loop client (auto: wrk if on PATH)"
    )
    p.add_argument("--closed-seconds", type=float, default=5.0, help="seconds per endpoint of the wrk closed loop")
    p.add_argument("--json", action="store_true")
    p.add_argument("--pg", default=None, help="PostgreSQL admin URL: run on a fresh database there (default: SQLite)")
    args = p.parse_args(argv)
    args.alerts = min(max(0, args.alerts), 100_000)
    args.duration = min(max(1.0, args.duration), 300.0)
    args.concurrency = min(max(1, args.concurrency), 256)
    args.decide = min(max(0, args.decide), 100_000)
    args.decide_concurrency = min(max(1, args.decide_concurrency), 256)
    args.server_workers = min(max(1, args.server_workers), 64)
    args.closed_seconds = min(max(1.0, args.closed_seconds), 120.0)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    a, c = result["alert_ingest"], result["healthz_closed_loop"]
    load = result["load_avg_1m"]
    print(
        f"API bench on {result['backend']} ({result['orders']} orders), uvicorn on loopback, "
        f"{result['server_workers']} server process(es) (server CPU summed over all), "
        f"--loop {result['server_stack']['loop']} --http {result['server_stack']['http']}; "
        f"1-min load average {load['before']} before, {load['after']} after"
    )
    if a:
        for name, r in (("healthz closed loop (ceiling)", c), ("alert ingest", a)):
            print(
                f"  {name}: {r['requests']} requests, concurrency {r['concurrency']}: {r['rate_per_s']}/s, "
                f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms; statuses {r['statuses']}; "
                f"CPU ms/request: server {r['server_cpu_ms_per_req']}, client {r['client_cpu_ms_per_req']}"
            )
        print(f"  alert outcomes {a['outcomes']}")
    for name, r in (("healthz (trivial)", result["healthz"]), ("decide/route", result["decide_route"])):
        print(
            f"  {name} open loop, python client: {r['requests']} requests at {r['target_rps']} rps target "
            f"({r['rate_per_s']}/s achieved): "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms; statuses {r['statuses']}"
        )
    print_decide(result["decide_closed_loop"], result["decide_in_process"])


def print_decide(closed: dict[str, Any], inproc: dict[str, Any]) -> None:
    for name, r in (("healthz closed loop", closed.get("healthz")), ("decide/route closed loop", closed.get("decide"))):
        if r:
            print(
                f"  {name}, {r['client']} client: {r['requests']} requests in {r['elapsed_s']} s, "
                f"concurrency {r['concurrency']}: {r['rate_per_s']}/s, "
                f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms; statuses {r['statuses']}; "
                f"CPU ms/request: server {r['server_cpu_ms_per_req']}, client {r['client_cpu_ms_per_req']}"
            )
    print(
        f"  decide in-process (CPU ms per decision, no HTTP): service {inproc['service_cpu_ms']} "
        f"(repeated inputs {inproc['service_repeat_cpu_ms']}), decide_route {inproc['decide_route_cpu_ms']}; "
        f"decisions answered {inproc['server_answered_decisions']}, logged {inproc['server_logged_decisions']} "
        f"(every answered one logged: {inproc['server_logged_decisions'] >= inproc['server_answered_decisions']})"
    )


if __name__ == "__main__":
    main()
