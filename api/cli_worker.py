"""`orderops worker`: a process that runs jobs (exception runs, continuations, intake) as DBOS
workflows (:mod:`api.worker_dbos`, :mod:`services.queue`) on the shared database.

Run several against one PostgreSQL database to scale out: DBOS's queues hand each job to one of
them, never two jobs of one run at once. Each worker also relays the job rows the ways in write
(:mod:`core.outbox`). SIGTERM or SIGINT stops taking jobs and lets those in hand finish; a worker
killed outright loses its liveness lock with its process, and a live worker re-queues its jobs
within seconds. ``--metrics-port`` serves ``/metrics`` (:mod:`api.worker_metrics`).

Mounted by :mod:`api.cli` (``worker`` in ``MOUNTS``); also runnable on its own as
``python -m api.cli_worker`` (settings then come from the environment: ``DATABASE_URL``...).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from api.bootstrap import AppContext, open_context
from api.worker import default_worker_id
from api.worker_metrics import WorkerCollector, serve
from core.errors import OrderOpsError
from core.settings import Settings

err_console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    return settings if isinstance(settings, Settings) else Settings()


def worker(
    ctx: typer.Context,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Jobs this process runs at once.")] = 1,
    poll_s: Annotated[
        float, typer.Option(min=0.01, help="How often the queues and the job rows are looked at, seconds.")
    ] = 0.5,
    planner: Annotated[str, typer.Option(help="auto, playbook or llm (as `orderops run --planner`).")] = "auto",
    worker_id: Annotated[str | None, typer.Option(help="DBOS executor id (default: host:pid:random).")] = None,
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Serve /metrics on this port (0: not served).")
    ] = 0,
    metrics_addr: Annotated[str, typer.Option(help="Address /metrics listens on.")] = "127.0.0.1",
) -> None:
    """Claim and run jobs (exception runs started by the API, alerts, approvals) until stopped."""
    settings = _settings(ctx)
    actx = open_context(settings)
    base = worker_id or default_worker_id()
    try:
        _run_dbos(actx, base, threads, poll_s, planner, metrics_port, metrics_addr)
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
        err_console.print(f"worker {base}: {threads} job(s) at a time on {actx.db.url}")
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
