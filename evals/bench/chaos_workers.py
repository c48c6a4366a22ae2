"""Chaos check: worker processes SIGKILLed at random moments while they carry approved runs on,
on PostgreSQL. Prints, per trial and in total, whether every run finished, whether any approval
was asked again, and whether any approved step executed more than once.

Each trial: a fresh database with a congested DC; a run started by the queue; once it parks,
one person approves the run's card (:func:`services.approvals.decide_incident`, which queues the
continuation); two ``orderops worker`` processes carry the runs on while a random one of them is
killed after a random delay (and started again). The trial passes when the run ends, no approval
request was added after the decision (a re-ask, e.g. "the network changed since approval"), and
every approved call has exactly one non-replayed ``executed`` audit row.

It only creates and drops its own databases. Not a test (it takes minutes): run it by hand.
The workers run the DBOS engine (:mod:`services.queue`): the start and continuation job rows
(:mod:`core.outbox`) are relayed into DBOS workflows by ``orderops worker``.

    python -m evals.bench.chaos_workers --trials 30
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from api.bootstrap import open_context
from core.db import Database
from core.db.tables import ApprovalRequestRow, RunRow
from core.domain import NodeStatus
from core.netgen import NetworkSpec, generate_network
from core.outbox import START_RUN, Outbox, start_dedup_key
from core.settings import Settings
from evals.bench.bench_network import fresh_database
from guardrails.audit import EventType
from guardrails.calls import Actor
from services import queue as dbos_queue
from services.approvals import decide_incident
from tools.gateway import ToolGateway

REPO = Path(__file__).resolve().parents[2]
FINISHED = {"completed", "partially_completed", "failed", "rejected", "nothing_to_do"}
APPROVER = Actor(kind="user", id="amir", roles=frozenset({"approver"}))


def spawn(url: str, home: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=url, ORDEROPS_HOME=str(home), ORDEROPS_CLOCK="network", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "api.cli_worker", "--poll-s", "0.05", "--planner", "playbook"]
    with (home / f"worker-{name}.log").open("ab") as log:  # read back when a trial fails
        return subprocess.Popen([*cmd, "--worker-id", name], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def worker_logs(home: Path, lines: int = 15) -> str:
    out = []
    for f in sorted(home.glob("worker-*.log")):
        tail = f.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {f.name}\n" + "\n".join(tail))
    return "\n".join(out)


def congest(gw: ToolGateway, n: int) -> list[str]:
    """Congest the ``n`` busiest DCs (one run each). More than one run on one network is a fair
    test of exactly-once, but not of "never re-asked": a run that moves orders into a DC changes the
    other run's previews there, and asking again is then the right answer."""
    wms = gw.env.adapters.wms
    loads = [ld for ld in wms.node_load() if ld.node_id.startswith("DC-")]
    dcs = sorted(loads, key=lambda ld: -ld.unreleased_orders)[:n]
    for ld in dcs:
        wms.set_node_status(ld.node_id, NodeStatus.CONGESTED)
        wms.set_backlog(ld.node_id, wms.get_node(ld.node_id).daily_capacity * 3)
    return [ld.node_id for ld in dcs]


def wait_for(pred: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def statuses(db: Database) -> dict[str, str]:
    with db.sessions() as s:
        return {r.id: r.status for r in s.scalars(select(RunRow))}


def trial(n: int, pg_admin: str, rng: random.Random, orders: int, runs_per_trial: int) -> dict[str, Any]:
    with fresh_database("postgresql", pg_admin) as db, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        generate_network(db, NetworkSpec(orders=orders))
        actx = open_context(Settings(home=home, database_url=db.url, clock="network"))
        gw = actx.gateway
        nodes = congest(gw, runs_per_trial)
        runs = [f"run_chaos{n:02d}_{i}" for i in range(len(nodes))]
        for run_id, node in zip(runs, nodes, strict=True):
            payload = {"run_id": run_id, "goal": f"{node} is congested", "requested_by": "otto"}
            Outbox(db).enqueue(START_RUN, payload, dedup_key=start_dedup_key(run_id), serial_key=run_id)
        workers = {name: spawn(db.url, home, name) for name in ("A", "B")}
        kills = 0
        try:

            def parked() -> bool:
                now = statuses(db)
                return len(now) == len(runs) and all(v == "awaiting_approval" for v in now.values())

            if not wait_for(parked, 180):
                return {"trial": n, "ok": False, "why": f"runs did not park: {statuses(db)}\n{worker_logs(home)}"}
            with db.sessions() as s:
                asked_before = int(s.scalar(select(func.count()).select_from(ApprovalRequestRow)) or 0)
            approved_calls: set[str] = set()
            for run_id in runs:
                for req in gw.guard.approvals.list_pending(run_id=run_id):
                    approved_calls.add(req.call_id or req.id)
                decide_incident(gw, db, run_id, approver=APPROVER, decision="approve")
            time.sleep(rng.uniform(0.0, 2.5))
            victim = rng.choice(sorted(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(10)
            kills += 1
            workers[victim] = spawn(db.url, home, victim + "2")
            finished = wait_for(lambda: all(s in FINISHED for s in statuses(db).values()), 240)
        finally:
            for p in workers.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()
        with db.sessions() as s:
            asked_after = int(s.scalar(select(func.count()).select_from(ApprovalRequestRow)) or 0)
        executed = Counter(
            e.call_id
            for run_id in runs
            for e in gw.guard.audit.list(run_id=run_id, event_type=EventType.EXECUTED)
            if e.tool == "reroute_orders" and isinstance(e.result, dict) and not e.result.get("replayed")
        )
        twice = sorted(str(c) for c, k in executed.items() if k > 1)
        missing = sorted(approved_calls - {str(c) for c in executed})
        final = statuses(db)
        actx.close()
        dbos_queue.close_clients()
        ok = finished and asked_after == asked_before and not twice and not missing
        logs = "" if ok else worker_logs(home)
        return {
            "trial": n,
            "ok": ok,
            "finished": finished,
            "statuses": final,
            "re_asked": asked_after - asked_before,
            "executed_twice": len(twice),
            "approved_not_executed": len(missing),
            "approved_calls": len(approved_calls),
            "kills": kills,
            **({"logs": logs} if logs else {}),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=1, help="Runs per trial, each on its own congested DC.")
    ap.add_argument(
        "--pg",
        default=os.environ.get("ORDEROPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    results = []
    for n in range(args.trials):
        started = time.perf_counter()
        r = trial(n, args.pg, rng, args.orders, args.runs)
        r["seconds"] = round(time.perf_counter() - started, 1)
        results.append(r)
        print(r, flush=True)
    good = sum(1 for r in results if r["ok"])
    print(
        f"trials {len(results)}: passed {good}; runs not finished {sum(1 for r in results if not r.get('finished'))}; "
        f"approvals re-asked {sum(r.get('re_asked', 0) for r in results)}; "
        f"steps executed twice {sum(r.get('executed_twice', 0) for r in results)}; "
        f"approved but not executed {sum(r.get('approved_not_executed', 0) for r in results)}"
    )
    return 0 if good == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
