"""``orderops worker`` and the server's in-process worker: the run and intake handlers driven by DBOS
workflows.

The handlers (:class:`api.worker.RunJobs`, :class:`api.worker.IntakeJobs`) are bound to
:mod:`services.queue`'s workflows; DBOS claims, retries and recovers. One :class:`DbosWorker` per
process (DBOS is a process-wide singleton), running ``threads`` jobs at once. Its loop also relays
the job rows the ways in write (:mod:`core.outbox`, :func:`services.queue.relay`);
:meth:`DbosWorker.run_once` hands one row at a time and waits for its workflow, for tests and
scripts that look at each job's effect.

What this module must never do: drive a run outside a workflow step (a worker killed outside one
would leave work no one recovers), or keep running after :meth:`DbosWorker.stop`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from api.bootstrap import AppContext
from api.scheduled import WorkerSchedule
from api.worker import DEFAULT_REQUESTER, IntakeJobs, RunJobs, default_worker_id
from core.errors import Conflict, OrderOpsError
from core.outbox import Job, Outbox
from services import queue
from services.runs import queued_requester

log = logging.getLogger("orderops.worker")


class DbosHandlers:
    """:class:`services.queue.Handlers` over the run and intake handlers, counting what they did."""

    def __init__(self, actx: AppContext, *, planner: str = "auto") -> None:
        self.actx = actx
        self.runs = RunJobs(actx, planner=planner)
        self.intake = IntakeJobs(actx)

    def start_run(self, payload: dict[str, Any]) -> str:
        return self.runs.announce(self.runs.start_payload(payload)).status

    def continue_run(self, payload: dict[str, Any]) -> str:
        run_id = str(payload.get("run_id") or "")
        if run_id and not payload.get("requested_by"):
            started = queue.start_payload(self.actx.db, run_id) or {}
            who = started.get("requested_by") or queued_requester(self.actx.db, run_id) or DEFAULT_REQUESTER
            payload = {**payload, "requested_by": who}
        return self.runs.announce(self.runs.continue_payload(payload)).status

    def process_document(self, payload: dict[str, Any]) -> str:
        result = self.intake.process_payload(payload)
        return str(getattr(result, "status", "done"))

    def touch(self, run_id: str) -> None:
        self.runs.store.touch(run_id=run_id)

    def close(self) -> None:
        self.runs.close()
        self.intake.close()


class DbosWorker:
    """DBOS launched in this process as executor ``worker_id``; :meth:`run` blocks until :meth:`stop`."""

    def __init__(
        self,
        actx: AppContext,
        worker_id: str | None = None,
        *,
        threads: int = 1,
        poll_s: float = 0.5,
        planner: str = "auto",
    ) -> None:
        self.actx = actx
        self.worker_id = worker_id or default_worker_id()
        self.handlers = DbosHandlers(actx, planner=planner)
        self.engine = queue.DbosEngine(actx.db, self.handlers, self.worker_id, threads=threads, poll_s=poll_s)
        self._stop = threading.Event()
        self._launched = False
        self._last_anchor = time.monotonic()
        self._schedule = WorkerSchedule(actx, self.worker_id)

    def launch(self) -> None:
        _off_loop(self.engine.launch)
        self._launched = True

    def __enter__(self) -> DbosWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_once(self, timeout_s: float = 120.0) -> Job | None:
        """Hand the oldest queued job row to DBOS and wait until its workflow ends; the row as it
        ended, or None when no row is queued or the worker is stopping (queued rows stay queued
        for the next worker). Launches DBOS on first use. One job at a time: for tests and scripts
        that look at each job's effect before the next (the loop of :meth:`run` relays in bulk)."""
        if self._stop.is_set():
            return None
        if not self._launched:
            self.launch()
        rows = Outbox(self.actx.db)
        found = rows.due(queue.RELAYED_KINDS, limit=1, now_only=False)
        if not found:
            return None
        job = found[0]
        deadline = time.monotonic() + timeout_s
        while queue.hand(self.actx.db, rows, job) not in queue.FINISHED:
            if time.monotonic() > deadline:
                raise OrderOpsError(f"job {job.id} ({job.kind}) did not end within {timeout_s:.0f} s")
            time.sleep(self.engine.poll_s)
        return rows.get(job.id)

    def run(self) -> None:
        """Launch (if not yet), then sign the audit head in quiet periods until stopped."""
        if not self._launched:
            self.launch()
        while not self._stop.wait(self.engine.poll_s):
            self._relay()
            self._anchor_when_due()
            self._schedule.run_due()  # the watch, the approval tick: once per interval across workers

    def _relay(self) -> None:
        """Hand the job rows the ways in wrote to DBOS (:func:`services.queue.relay`)."""
        try:
            queue.relay(self.actx.db)
        except Exception:  # a database hiccup must not stop the worker; the rows wait
            log.exception("worker %s: relaying jobs to DBOS failed", self.worker_id)

    def stop(self) -> None:
        self._stop.set()

    def _anchor_when_due(self) -> None:
        interval = self.actx.settings.audit_anchor_interval_s
        now = time.monotonic()
        if interval <= 0 or now - self._last_anchor < interval:
            return
        self._last_anchor = now
        try:
            self.actx.guard.audit.checkpoint_if_moved()
        except Conflict as exc:
            log.error("worker %s: audit trail not anchored: %s", self.worker_id, exc.message)
        except Exception:
            log.exception("worker %s: anchoring the audit trail failed", self.worker_id)

    def close(self, timeout_s: float = 30.0) -> None:
        """Let jobs in hand finish (up to ``timeout_s``), shut DBOS down, close the handlers."""
        self._stop.set()
        if self._launched:
            _off_loop(lambda: self.engine.close(timeout_s))
            self._launched = False
        self.handlers.close()


def _off_loop(fn: Callable[[], None]) -> None:
    """Call ``fn`` here, or in a helper thread when this thread runs an asyncio loop (Playwright's
    sync API in tests, a server's lifespan): DBOS refuses its synchronous calls inside one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn()
        return
    failed: list[BaseException] = []

    def call() -> None:
        try:
            fn()
        except BaseException as exc:  # raised again in the caller's thread
            failed.append(exc)

    helper = threading.Thread(target=call, name="orderops-dbos-call")
    helper.start()
    helper.join()
    if failed:
        raise failed[0]


class DbosPool:
    """A :class:`DbosWorker` in a thread of the server (``orderops serve``): :meth:`start` returns
    once DBOS is launched, :meth:`stop` lets jobs in hand finish and shuts it down."""

    def __init__(self, actx: AppContext, threads: int = 2, *, planner: str = "auto") -> None:
        self.worker = DbosWorker(actx, threads=threads, planner=planner)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Launch in a thread of its own: the server's lifespan runs in an event loop, where DBOS
        refuses its synchronous calls. Returns once launched; raises what launching raised."""
        launched = threading.Event()
        failed: list[BaseException] = []

        def main() -> None:
            try:
                self.worker.launch()
            except BaseException as exc:
                failed.append(exc)
                return
            finally:
                launched.set()
            self.worker.run()

        self._thread = threading.Thread(target=main, name="orderops-dbos", daemon=True)
        self._thread.start()
        launched.wait()
        if failed:
            raise failed[0]

    def stop(self, timeout_s: float = 30.0) -> None:
        self.worker.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
        closing = threading.Thread(target=self.worker.close, args=(timeout_s,), name="orderops-dbos-close")
        closing.start()  # off the event loop too
        closing.join()
