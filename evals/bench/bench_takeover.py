"""Kill-and-resume on the dbos job engine: how long a killed worker's job waits for another worker.

Per trial, on a fresh database (SQLite file, or PostgreSQL with ``--pg``): ``--runs`` queued runs
(each parks for approval after reading, planning and proposing), worker A started, SIGKILLed the
moment it holds a job (a PENDING workflow under its executor id), worker B started (SQLite: after
the kill, as a restart on the same machine would; PostgreSQL: with A from the start, the two
sharing the queue). Prints, per trial and in total: whether every run parked exactly once (no
approval asked twice), the seconds from the kill until the killed job finished elsewhere, and the
seconds until all runs were done.

It only creates and drops its own databases and temporary homes. Not a test: run it by hand.

    python -m evals.bench.bench_takeover --trials 3 [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.db import Database, make_database, migrate
from core.db.tables import RunRow
from core.netgen import NetworkSpec, generate_network
from evals.bench.bench_network import fresh_database
from guardrails.approvals import ApprovalStore
from services import queue

REPO = Path(__file__).resolve().parents[2]
GOAL = "expedite late orders"


def spawn(url: str, home: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=url, ORDEROPS_HOME=str(home), ORDEROPS_CLOCK="network", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "api.cli_worker", "--poll-s", "0.05", "--planner", "playbook"]
    with (home / f"worker-{name}.log").open("ab") as log:
        return subprocess.Popen([*cmd, "--worker-id", name], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(pred: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@contextmanager
def database(pg: str | None) -> Iterator[Database]:
    if pg:
        with fresh_database("postgresql", pg) as db:
            yield db
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{Path(tmp) / 'orderops.db'}")
        try:
            migrate(db)
            yield db
        finally:
            db.dispose()


def real_url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def kill_a_when_it_holds_a_job(
    db: Database, url: str, home: Path, procs: list[subprocess.Popen[bytes]], timeout_s: float = 180
) -> str | None:
    """SIGKILL worker A (``procs[0]``) the moment a workflow is PENDING under its executor id; the
    id of a workflow still PENDING under A once it is dead (one A finished between the look and
    the kill does not count: A is started again and killed again)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if queue.client(db).list_workflows(status="PENDING", executor_id="A", load_input=False):
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            held = queue.client(db).list_workflows(status="PENDING", executor_id="A", load_input=False)
            if held:
                return held[0].workflow_id
            procs[0] = spawn(url, home, "A")
        time.sleep(0.01)
    return None


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def asked_twice(db: Database, ids: list[str]) -> int:
    approvals = ApprovalStore(db)
    twice = 0
    for run_id in ids:
        keys = [(r.tool, r.args_hash) for r in approvals.list_pending(run_id=run_id)]
        twice += len(keys) - len(set(keys))
    return twice


def trial(n: int, runs: int, orders: int, pg: str | None) -> dict[str, Any]:
    with database(pg) as db, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        generate_network(db, NetworkSpec(orders=orders))
        ids = [f"run_t{n:02d}_{i:03d}" for i in range(runs)]
        for run_id in ids:
            queue.enqueue_start(db, {"run_id": run_id, "goal": GOAL, "requested_by": "otto"})
        url = real_url(db)
        procs = [spawn(url, home, "A")] + ([spawn(url, home, "B")] if pg else [])
        started = time.monotonic()
        try:
            killed = kill_a_when_it_holds_a_job(db, url, home, procs)
            if killed is None:
                return {"trial": n, "ok": False, "why": "worker A never held a job"}
            killed_at = time.monotonic()
            if not pg:
                procs.append(spawn(url, home, "B"))
            taken = wait_for(lambda: queue.status_of(db, killed) == "SUCCESS", 180)
            takeover_s = time.monotonic() - killed_at
            done = wait_for(lambda: all(queue.status_of(db, queue.start_id(r)) == "SUCCESS" for r in ids), 300)
            all_s = time.monotonic() - started
        finally:
            stop_all(procs)
        with db.sessions() as s:
            parked = {r.id: r.status for r in s.scalars(select(RunRow))}
        twice = asked_twice(db, ids)
        (wf,) = queue.client(db).list_workflows(workflow_ids=[killed], load_input=False)
        queue.close_clients()
        return {
            "trial": n,
            "backend": "postgresql" if pg else "sqlite",
            "ok": taken and done and parked == dict.fromkeys(ids, "awaiting_approval") and twice == 0,
            "runs": runs,
            "parked_once": sum(1 for v in parked.values() if v == "awaiting_approval"),
            "asked_twice": twice,
            "killed_job_finished_by": wf.executor_id,
            "takeover_s": round(takeover_s, 2),
            "all_done_s": round(all_s, 1),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--pg", default=None, help="PostgreSQL admin URL (default: SQLite files)")
    args = ap.parse_args(argv)
    results = []
    for n in range(args.trials):
        r = trial(n, args.runs, args.orders, args.pg)
        results.append(r)
        print(r, flush=True)
    good = [r for r in results if r["ok"]]
    takeovers = sorted(r["takeover_s"] for r in good)
    print(
        f"trials {len(results)}: passed {len(good)}; "
        f"approvals asked twice {sum(r.get('asked_twice', 0) for r in results)}; "
        f"takeover after kill s: min {takeovers[0] if takeovers else '-'} max {takeovers[-1] if takeovers else '-'}"
    )
    return 0 if len(good) == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
