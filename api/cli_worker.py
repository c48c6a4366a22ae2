"""`orderops worker`: a process that claims jobs (exception runs) from the shared database.

Run several against one PostgreSQL database to scale out; each claims with ``SKIP LOCKED``, so
none waits on another and no job is handed to two of them. SIGTERM or SIGINT stops claiming and
lets the job in hand finish; a worker killed outright holds its job only until its lease runs out.

Mounted by :mod:`api.cli` (``worker`` in ``MOUNTS``); also runnable on its own as
``python -m api.cli_worker`` (settings then come from the environment: ``DATABASE_URL``...).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from api.bootstrap import open_context
from api.worker import Worker, default_worker_id
from core.jobs import CONTINUE_RUN, DEFAULT_LEASE_S, START_RUN
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
) -> None:
    """Claim and run jobs (exception runs started by the API, alerts, approvals) until stopped."""
    actx = open_context(_settings(ctx))
    base = worker_id or default_worker_id()
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

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        err_console.print(f"worker {base}: {signal.Signals(signum).name}, finishing the job in hand")
        for w in workers:
            w.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
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
        actx.close()
    err_console.print(f"worker {base}: stopped")


def main() -> None:
    """``python -m api.cli_worker``: the worker command alone."""
    typer.run(worker)


if __name__ == "__main__":
    main()
