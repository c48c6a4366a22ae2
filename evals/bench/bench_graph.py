"""Orchestration overhead of the exception-run graph, per step and per run, on SQLite and PostgreSQL
checkpointers.

On a small generated network (the graph tests' 400-order network) per backend, ``--runs`` exception
runs each congest the busiest DC and go through triage -> gather -> plan -> simulate -> policy ->
approval gate (parks) -> record decisions -> execute -> verify -> report, with the approval decided
at once (``ExceptionRuns.resume`` with an approver, as ``--approve auto`` does). Planners:

* ``playbook``: the deterministic congestion playbook;
* ``llm``: :class:`~agents.llm_planner.LLMPlanner` driven by a scripted ``FakeMessagesListChatModel``
  that proposes a valid reroute in two tool calls (no network; the model answers instantly, so
  the plan step is the planner's own checks: fact sheet, validation, simulation, policy).

Timing: the graph is driven with ``graph.stream(..., stream_mode="updates", durability="sync")``
and every node function is wrapped (``ExceptionRuns(wrap=...)``) to time the node's own work. A
step's wall time is the time from the previous update (or the call) to its update; its
*overhead* is that minus the node's own work: LangGraph's scheduling, state merging and the
synchronous checkpoint write. The time from the last update until the call returns (the final
checkpoint) is reported as ``(finish)``. Between runs the moved orders are moved back (untimed),
so every run does about the same work.

Only creates and drops its own databases (a temporary SQLite file; ``orderops_bench_<random>`` on
PostgreSQL).

    python -m evals.bench.bench_graph --backend both --runs 30
    python -m evals.bench.bench_graph --backend sqlite --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents.llm_planner import LLMPlanner
from agents.plan import Alert, ExceptionKind, Planner
from agents.playbooks import PlaybookPlanner
from core.clock import FixedClock
from core.db import Database
from core.domain import REROUTABLE_STATUSES, NodeStatus
from core.netgen import NetworkSpec, generate_network
from evals.bench.bench_network import DEFAULT_PG_ADMIN, fresh_database, percentile
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, NodeFn, RunDeps, RunState, thread_id
from graphs.runs import RunStore
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import OrderFilter
from tools.base import ToolEnv
from tools.gateway import Guard, ToolGateway
from tools.write import RerouteArgs, RerouteOrders

SPEC = NetworkSpec(seed=7, nodes=5, skus=40, customers=6, orders=400)
APPROVER = {"id": "bench-approver", "roles": ["approver"]}
STEP_ORDER = [
    "triage",
    "gather_facts",
    "plan",
    "simulate",
    "policy",
    "approval_gate (park)",
    "approval_gate",
    "record_decisions",
    "execute",
    "verify",
    "report",
    "(finish)",
]


class Timers:
    """Node work, in seconds, by node name, since the last :meth:`take`."""

    def __init__(self) -> None:
        self.work: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, fn: NodeFn) -> NodeFn:
        def node(state: RunState, *, runtime: Runtime[RunDeps]) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                return fn(state, runtime=runtime)
            finally:  # the gate "returns" by raising its interrupt: still its own work
                self.work[name] += time.perf_counter() - started

        return node

    def take(self, name: str) -> float:
        return self.work.pop(name, 0.0)


def gateway_for(db: Database) -> tuple[ToolGateway, FixedClock]:
    clock = FixedClock(datetime.combine(SPEC.business_date, dtime(9, 0), tzinfo=UTC))
    adapters = embedded_adapters(db, clock)
    guard = Guard(
        policy=PolicyEngine.from_path(None),
        audit=AuditTrail(db, Redactor(key=b"g" * 32), clock),
        approvals=ApprovalStore(db, clock),
        idempotency=IdempotencyStore(db, clock),
    )
    return ToolGateway(ToolEnv(adapters, clock), guard), clock


def congest(gw: ToolGateway) -> tuple[str, str]:
    """Congest the busiest DC (3 days of backlog); returns (it, another open DC)."""
    wms = gw.env.adapters.wms
    loads = [ld for ld in wms.node_load() if ld.node_id.startswith("DC-")]
    node = max(loads, key=lambda ld: ld.unreleased_orders).node_id
    target = next(n.id for n in wms.list_nodes(statuses=[NodeStatus.OPEN]) if n.id.startswith("DC-") and n.id != node)
    wms.set_node_status(node, NodeStatus.CONGESTED)
    wms.set_backlog(node, wms.get_node(node).daily_capacity * 3)
    return node, target


def scripted_planner(gw: ToolGateway, node: str, target: str) -> LLMPlanner:
    """An LLM planner whose model proposes rerouting the node's movable orders, in two calls."""
    orders = gw.env.adapters.oms.list_orders(
        OrderFilter(node_ids=[node], statuses=sorted(REROUTABLE_STATUSES)), limit=10_000
    )
    ids = RerouteOrders().simulate(gw.env, RerouteArgs(order_ids=[o.id for o in orders], to_node_id=target)).affected
    half = max(1, len(ids) // 2)
    calls = [
        {"name": "reroute_orders", "args": {"order_ids": part, "to_node_id": target, "reason": f"{node} congested"}}
        for part in (ids[:half], ids[half:])
        if part
    ]
    reply = AIMessage(
        content=f"Reroute {len(ids)} orders from {node} to {target}.",
        tool_calls=[{**c, "id": f"c{i}"} for i, c in enumerate(calls)],
        usage_metadata={"input_tokens": 2400, "output_tokens": 180, "total_tokens": 2580},
    )
    model = FakeMessagesListChatModel(responses=[reply])
    return LLMPlanner(model, fallback=PlaybookPlanner(), model_name="scripted", policy=gw.guard.policy, retry_wait_s=0)


def drive(
    runs: ExceptionRuns, timers: Timers, graph_input: Any, config: RunnableConfig, samples: dict[str, list[float]]
) -> dict[str, Any] | None:
    """Stream the graph to its end or its next park; add (wall, work, overhead) per step to
    ``samples``; returns the interrupt payload if it parked."""
    parked: dict[str, Any] | None = None
    last = time.perf_counter()
    for update in runs.graph.stream(graph_input, config, context=runs.deps, stream_mode="updates", durability="sync"):
        now = time.perf_counter()
        for name in update:
            step = "approval_gate (park)" if name == "__interrupt__" else name
            work = timers.take("approval_gate" if name == "__interrupt__" else name)
            if name == "__interrupt__":
                parked = update[name][0].value
            samples[f"{step}:wall"].append((now - last) * 1000)
            samples[f"{step}:work"].append(work * 1000)
            samples[f"{step}:overhead"].append((now - last - work) * 1000)
        last = now
    end = time.perf_counter()
    samples["(finish):wall"].append((end - last) * 1000)
    samples["(finish):work"].append(0.0)
    samples["(finish):overhead"].append((end - last) * 1000)
    return parked


def one_run(
    runs: ExceptionRuns, timers: Timers, run_id: str, alert: Alert, samples: dict[str, list[float]]
) -> tuple[str, float, float, int]:
    """One exception run, approval decided at once. Returns (status, wall ms, work ms, steps)."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id(run_id)}}
    assert runs.deps.runs is not None
    runs.deps.runs.create(run_id=run_id, thread_id=thread_id(run_id), kind="alert", alert=alert.model_dump(mode="json"))
    initial: RunState = {
        "run_id": run_id,
        "source": "alert",
        "alert": alert.model_dump(mode="json"),
        "goal": None,
        "steps": [],
        "decisions": [],
        "notes": [],
        "ledger": {},
        "active_s": 0.0,
        "stop": None,
    }
    before = {k: len(v) for k, v in samples.items()}
    started = time.perf_counter()
    parked = drive(runs, timers, initial, config, samples)
    while parked is not None:
        decisions = [{"approval_id": a["approval_id"], "decision": "approve"} for a in parked["approvals"]]
        parked = drive(runs, timers, Command(resume={"decisions": decisions, "approver": APPROVER}), config, samples)
    wall = (time.perf_counter() - started) * 1000
    work = sum(sum(v[before.get(k, 0) :]) for k, v in samples.items() if k.endswith(":work"))
    steps = sum(len(v) - before.get(k, 0) for k, v in samples.items() if k.endswith(":wall"))
    status = str(runs.graph.get_state(config).values.get("status"))
    return status, wall, work, steps


def move_back(gw: ToolGateway, report: dict[str, Any], node: str) -> None:
    done = [oid for oid, what in (report.get("orders") or {}).items() if what.endswith(": done")]
    if done:
        gw.env.adapters.oms.move_orders(done, node)


def stats(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), 2),
        "p95": round(percentile(samples, 95), 2),
        "n": len(samples),
    }


def bench(db: Database, planner_kind: str, n: int, warmup: int) -> dict[str, Any]:
    gw, clock = gateway_for(db)
    store = RunStore(db, clock)
    timers = Timers()
    samples: dict[str, list[float]] = defaultdict(list)
    per_run: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, int] = defaultdict(int)
    with open_checkpointer(db) as saver:
        for i in range(warmup + n):
            node, target = congest(gw)
            planner: Planner = scripted_planner(gw, node, target) if planner_kind == "llm" else PlaybookPlanner()
            deps = RunDeps(gateway=gw, planner=planner, runs=store, requested_by="bench-operator")
            runs = ExceptionRuns(deps, saver, wrap=timers.wrap)
            alert = Alert(id=f"bench-{i}", kind=ExceptionKind.NODE_CONGESTION, labels={"node": node})
            run_id = f"bench-{planner_kind}-{i}"
            sink: dict[str, list[float]] = defaultdict(list) if i < warmup else samples
            status, wall, work, steps = one_run(runs, timers, run_id, alert, sink)
            report = runs.graph.get_state({"configurable": {"thread_id": thread_id(run_id)}}).values.get("report")
            move_back(gw, report or {}, node)
            if i < warmup:
                continue
            statuses[status] += 1
            per_run["wall"].append(wall)
            per_run["work"].append(work)
            per_run["overhead"].append(wall - work)
            per_run["steps"].append(float(steps))
            per_run["overhead_per_step"].append((wall - work) / steps)
    steps_out = {}
    for step in STEP_ORDER:
        if f"{step}:wall" in samples:
            steps_out[step] = {part: stats(samples[f"{step}:{part}"]) for part in ("wall", "work", "overhead")}
    return {
        "planner": planner_kind,
        "runs": n,
        "statuses": dict(statuses),
        "per_step_ms": steps_out,
        "per_run_ms": {k: stats(v) for k, v in per_run.items()},
    }


def run_backend(backend: str, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    for planner_kind in args.planners:
        with fresh_database(backend, args.postgres_url) as db:
            generate_network(db, SPEC)
            _say(f"{backend}: {planner_kind} planner, {args.runs} runs (+{args.warmup} warm-up)")
            yield {"backend": backend, **bench(db, planner_kind, args.runs, args.warmup)}


def render(results: list[dict[str, Any]]) -> str:
    out = []
    for r in results:
        out.append(f"\n## {r['backend']} / {r['planner']} planner ({r['runs']} runs; statuses {r['statuses']})")
        out.append("| step | n | wall med / p95 ms | node work med / p95 | overhead med / p95 |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for step, parts in r["per_step_ms"].items():
            w, k, o = parts["wall"], parts["work"], parts["overhead"]
            out.append(
                f"| {step} | {w['n']} | {w['median']} / {w['p95']} | {k['median']} / {k['p95']} | "
                f"{o['median']} / {o['p95']} |"
            )
        pr = r["per_run_ms"]
        out.append(
            f"per run: wall {pr['wall']['median']} / {pr['wall']['p95']} ms, node work {pr['work']['median']} / "
            f"{pr['work']['p95']} ms, overhead {pr['overhead']['median']} / {pr['overhead']['p95']} ms over "
            f"{pr['steps']['median']:.0f} steps = {pr['overhead_per_step']['median']} / "
            f"{pr['overhead_per_step']['p95']} ms per step (med / p95)"
        )
    return "\n".join(out)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (caches, prepared statements)")
    p.add_argument("--planners", default="playbook,llm", help="comma-separated: playbook, llm")
    p.add_argument("--postgres-url", default=DEFAULT_PG_ADMIN, help="admin URL; a fresh database is made beside it")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.planners = [x.strip() for x in args.planners.split(",") if x.strip()]
    if not set(args.planners) <= {"playbook", "llm"} or not args.planners:
        p.error("--planners takes playbook and/or llm")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [r for b in backends for r in run_backend(b, args)]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render(results))


if __name__ == "__main__":
    main()
