"""`orderops worker`: a process that claims jobs (exception runs) from the shared database.

Run several against one PostgreSQL database to scale out; each claims with ``SKIP LOCKED``, so
none waits on another and no job is handed to two of them. SIGTERM or SIGINT stops claiming and
lets the job in hand finish; a worker killed outright holds its job only until its lease runs out.
With ``--engine dbos`` (or ``ORDEROPS_JOB_ENGINE=dbos``) DBOS workflows do the same
(:mod:`api.worker_dbos`); a killed worker's workflows are taken up by a live one within seconds.
``--metrics-port`` serves ``/metrics`` (:mod:`api.worker_metrics`).

Mounted by :mod:`api.cli` (``worker`` in ``MOUNTS``); also runnable on its own as
``python -m api.cli_worker`` (settings then come from the environment: ``DATABASE_URL``...).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from api.bootstrap import AppContext, open_context
from api.worker import Worker, default_worker_id
from api.worker_metrics import WorkerCollector, serve
from core.errors import OrderOpsError
from core.jobs import CONTINUE_RUN, DEFAULT_LEASE_S, START_RUN, JobQueue
from core.settings import Settings

err_console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    return settings if isinstance(settings, Settings) else Settings()


def worker(
    ctx: typer.Context,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Claim loops in this process.")] = 1,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help=f"Job kinds to take (repeatable; default: {START_RUN}, {CONTINUE_RUN})."),
    ] = None,
    lease_s: Annotated[
        float, typer.Option(min=1.0, help="Seconds a claimed job stays ours without a heartbeat.")
    ] = DEFAULT_LEASE_S,
    poll_s: Annotated[float, typer.Option(min=0.01, help="Idle wait between claims, seconds.")] = 0.5,
    planner: Annotated[str, typer.Option(help="auto, playbook or llm (as `orderops run --planner`).")] = "auto",
    worker_id: Annotated[str | None, typer.Option(help="Name in the job rows (default: host:pid:random).")] = None,
    engine: Annotated[
        str | None, typer.Option(help="jobs (the polling queue) or dbos (DBOS workflows); default: the setting.")
    ] = None,
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Serve /metrics on this port (0: not served).")
    ] = 0,
    metrics_addr: Annotated[str, typer.Option(help="Address /metrics listens on.")] = "127.0.0.1",
) -> None:
    """Claim and run jobs (exception runs started by the API, alerts, approvals) until stopped."""
    settings = _settings(ctx)
    chosen = engine or settings.job_engine
    if chosen not in ("jobs", "dbos"):
        err_console.print(f"unknown engine {chosen!r}: jobs or dbos")
        raise typer.Exit(2)
    actx = open_context(settings)
    base = worker_id or default_worker_id()
    try:
        if chosen == "dbos":
            _run_dbos(actx, base, threads, poll_s, planner, metrics_port, metrics_addr)
        else:
            _run_jobs(actx, base, threads, kind, lease_s, poll_s, planner, metrics_port, metrics_addr)
    except OrderOpsError as exc:
        err_console.print(f"worker {base}: {exc.message}")
        raise typer.Exit(1) from None
    finally:
        actx.close()
    err_console.print(f"worker {base}: stopped")


def _on_signals(base: str, stop: Callable[[], None]) -> dict[int, Any]:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        err_console.print(f"worker {base}: {signal.Signals(signum).name}, finishing the job in hand")
        stop()

    return {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}


def _run_jobs(
    actx: AppContext,
    base: str,
    threads: int,
    kind: list[str] | None,
    lease_s: float,
    poll_s: float,
    planner: str,
    metrics_port: int,
    metrics_addr: str,
) -> None:
    workers = [
        Worker(
            actx,
            kind or None,
            base if threads == 1 else f"{base}/t{i}",
            lease_s=lease_s,
            poll_s=poll_s,
            planner=planner,
        )
        for i in range(threads)
    ]
    run_jobs = [w._run_jobs for w in workers if w._run_jobs is not None]

    def outcomes() -> dict[str, int]:
        out: dict[str, int] = {}
        for r in run_jobs:
            for status, n in r.outcomes.items():
                out[status] = out.get(status, 0) + n
        return out

    collector = WorkerCollector(
        actx.db, "jobs", JobQueue(actx.db).counts, outcomes, lambda: sum(r.tokens for r in run_jobs)
    )
    stop_metrics = serve(collector, metrics_port, metrics_addr) if metrics_port else None

    def stop_all() -> None:
        for w in workers:
            w.stop()

    previous = _on_signals(base, stop_all)
    err_console.print(f"worker {base}: {threads} loop(s) on {actx.db.url}, kinds {sorted(workers[0].kinds)}")
    try:
        loops = [threading.Thread(target=w.run, name=w.worker_id, daemon=True) for w in workers[1:]]
        for t in loops:
            t.start()
        workers[0].run()  # the main thread keeps signal handling
        for t in loops:
            t.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for w in workers:
            w.close()
        if stop_metrics is not None:
            stop_metrics()


def _run_dbos(
    actx: AppContext, base: str, threads: int, poll_s: float, planner: str, metrics_port: int, metrics_addr: str
) -> None:
    from api.worker_dbos import DbosWorker  # DBOS loads only in workers that run it
    from services import queue

    w = DbosWorker(actx, base, threads=threads, poll_s=poll_s, planner=planner)
    runs = w.handlers.runs
    collector = WorkerCollector(
        actx.db, "dbos", lambda: queue.counts(actx.db), lambda: dict(runs.outcomes), lambda: runs.tokens
    )
    stop_metrics = serve(collector, metrics_port, metrics_addr) if metrics_port else None
    previous = _on_signals(base, w.stop)
    try:
        w.launch()
        err_console.print(f"worker {base}: dbos engine, {threads} job(s) at a time on {actx.db.url}")
        w.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        w.close()
        if stop_metrics is not None:
            stop_metrics()


def main() -> None:
    """``python -m api.cli_worker``: the worker command alone."""
    typer.run(worker)


if __name__ == "__main__":
    main()
