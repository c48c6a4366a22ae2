"""``/metrics`` of ``orderops worker``: queue depth, dead jobs, run outcomes and LLM tokens.

Read at scrape time (nothing is pushed): the queue by status from DBOS's workflow table (the
``engine`` label stays for dashboards built when there were two engines), runs by status from the
runs index, and what this process's handlers counted (how the runs it moved stood afterwards, the
tokens its planners spent). A scrape that cannot read the database answers without those series rather than failing.

What this module must never do: change anything it reads, or register collectors globally (each
worker gets its own registry, so tests can build several in one process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.db import Database
from core.db.tables import RunRow

log = logging.getLogger("orderops.worker")

QUEUED = {"queued", "ENQUEUED", "DELAYED"}
DEAD = {"dead", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


class WorkerCollector(Collector):
    """The worker's series. ``job_counts``: jobs by status (the engine's own status names);
    ``outcomes`` and ``tokens``: this process's counts."""

    def __init__(
        self,
        db: Database,
        engine: str,
        job_counts: Callable[[], Mapping[str, int]],
        outcomes: Callable[[], Mapping[str, int]],
        tokens: Callable[[], int],
    ) -> None:
        self.db = db
        self.engine = engine
        self.job_counts = job_counts
        self.outcomes = outcomes
        self.tokens = tokens

    def collect(self) -> Iterator[Any]:
        try:
            jobs = dict(self.job_counts())
        except Exception:  # a scrape must not fail because the database blinked
            log.exception("metrics: could not count jobs")
            jobs = None
        if jobs is not None:
            by_status = GaugeMetricFamily(
                "orderops_jobs", "Jobs by status, as the engine names them.", labels=["engine", "status"]
            )
            for status, n in sorted(jobs.items()):
                by_status.add_metric([self.engine, status], n)
            yield by_status
            yield GaugeMetricFamily(
                "orderops_queue_depth",
                "Jobs waiting to be taken (queued or delayed).",
                value=sum(n for s, n in jobs.items() if s in QUEUED),
            )
            yield GaugeMetricFamily(
                "orderops_jobs_dead",
                "Jobs that gave up: attempts used up, or an error no retry can help.",
                value=sum(n for s, n in jobs.items() if s in DEAD),
            )
        try:
            with self.db.sessions() as s:
                runs = {
                    str(k): int(v) for k, v in s.execute(select(RunRow.status, func.count()).group_by(RunRow.status))
                }
        except Exception:
            log.exception("metrics: could not count runs")
            runs = None
        if runs is not None:
            g = GaugeMetricFamily("orderops_runs", "Exception runs by status (all workers).", labels=["status"])
            for status, n in sorted(runs.items()):
                g.add_metric([status], n)
            yield g
        c = CounterMetricFamily(
            "orderops_worker_run_outcomes",
            "Runs this process moved, by how they stood afterwards.",
            labels=["status"],
        )
        for status, n in sorted(self.outcomes().items()):
            c.add_metric([status], n)
        yield c
        yield CounterMetricFamily(
            "orderops_llm_tokens", "LLM tokens this process's planners spent.", value=self.tokens()
        )


def registry_for(collector: WorkerCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def serve(collector: WorkerCollector, port: int, addr: str = "127.0.0.1") -> Callable[[], None]:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns what stops it."""
    server, thread = start_http_server(port, addr=addr, registry=registry_for(collector))

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
