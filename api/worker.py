"""Workers: claim a job, run it, record how it ended — in threads of the server or in processes.

A :class:`Worker` loops ``claim -> dispatch -> complete | fail`` on :class:`core.jobs.JobQueue`,
renewing its lease from a heartbeat thread while a job runs. The server's embedded default is a
:class:`WorkerPool` of threads (``orderops serve``, SQLite); ``orderops worker`` processes share a
PostgreSQL database to scale out. Any worker can carry on a run another one started: run state
lives in the LangGraph checkpoints and the approval store, both in the database.

Handlers must be safe to run twice (a worker may die after doing the work and before recording
it): the exception-run handlers are, because a run re-entered from its checkpoint replays its
writes under the gateway's idempotency keys instead of repeating them.

What this module must never do: complete a job it no longer holds, or swallow a job's error
without recording it on the job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from typing import Any

from api.bootstrap import AppContext
from api.scheduled import WorkerSchedule
from core.errors import Conflict, DomainError, NotFound, OrderOpsError, ValidationFailed
from core.jobs import CONTINUE_RUN, DEFAULT_LEASE_S, INTAKE_PROCESS, START_RUN, Job, JobQueue
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunBusy, RunResult
from graphs.runs import RunStore
from services import runs as run_service
from services import wiring

log = logging.getLogger("orderops.worker")

Handler = Callable[[Job], Any]
RUN_KINDS: frozenset[str] = frozenset({START_RUN, CONTINUE_RUN})
DEFAULT_REQUESTER = run_service.DEFAULT_REQUESTER
BUSY_RETRY_S = 2.0
"""How soon a run job whose run another process holds is looked at again."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RunJobs:
    """The exception-run handlers, on one checkpointer (opened on first use, closed by :meth:`close`).

    ``planner``: ``auto`` (the LLM if configured, else playbooks), ``playbook`` or ``llm`` — as
    ``orderops run --planner``.
    """

    def __init__(self, actx: AppContext, *, planner: str = "auto", run_lease_s: float = 30.0) -> None:
        self.actx = actx
        self.planner = planner
        self.run_lease_s = run_lease_s
        """A run's claim lapses this long after its holder's last heartbeat (:meth:`touch`)."""
        self.store = RunStore(actx.db, actx.clock)
        self._stack = ExitStack()
        self._saver: Any = None
        self._runs: dict[str, ExceptionRuns] = {}
        self.outcomes: dict[str, int] = {}
        """How the runs this process moved stood afterwards, by status (for ``/metrics``)."""
        self.tokens = 0
        """LLM tokens this process's planners spent (for ``/metrics``)."""
        self._count_lock = threading.Lock()

    def runs(self, requested_by: str) -> ExceptionRuns:
        """The driver acting for ``requested_by`` (who may then not approve the run's calls)."""
        found = self._runs.get(requested_by)
        if found is None:
            if self._saver is None:
                self._saver = self._stack.enter_context(open_checkpointer(self.actx.db))
            planner = wiring.choose_planner(self.actx, self.planner)
            deps = wiring.run_deps(self.actx, planner, runs=self.store, requested_by=requested_by)
            found = self._runs[requested_by] = ExceptionRuns(deps, self._saver, lease_s=self.run_lease_s)
        return found

    def start(self, job: Job) -> RunResult:
        """Start the run named in the payload; if an earlier attempt got it going, carry it on."""
        return self.start_payload(job.payload)

    def start_payload(self, payload: Mapping[str, Any]) -> RunResult:
        """:meth:`start` for a payload (the ``dbos`` engine's workflows carry no :class:`Job`)."""
        cmd = run_service.StartRun.of_payload(dict(payload))
        return run_service.start_or_carry_on(self.runs(cmd.requested_by), cmd)

    def continue_(self, job: Job) -> RunResult:
        """Carry a parked run on from approval decisions recorded elsewhere (API, Slack, console)."""
        return self.continue_payload(job.payload)

    def continue_payload(self, payload: Mapping[str, Any]) -> RunResult:
        """:meth:`continue_` for a payload."""
        run_id = _text(payload, "run_id")
        runs = self.runs(self._requester(run_id, payload))
        return run_service.carry_on(runs, run_id, busy_raises=True)

    def _requester(self, run_id: str, payload: Mapping[str, Any]) -> str:
        """Who the run acts for: as the continue job says, else as the job that started it said."""
        if payload.get("requested_by"):
            return str(payload["requested_by"])
        return run_service.queued_requester(self.actx.db, run_id) or DEFAULT_REQUESTER

    def touch(self, job: Job) -> None:
        """Heartbeat of a run job: keep the claim on its run fresh while this worker drives it."""
        if job.kind in RUN_KINDS and job.payload.get("run_id"):
            self.store.touch(run_id=str(job.payload["run_id"]))

    def handlers(self) -> dict[str, Handler]:
        return {START_RUN: self._announced(self.start), CONTINUE_RUN: self._announced(self.continue_)}

    def _announced(self, handler: Callable[[Job], RunResult]) -> Callable[[Job], RunResult]:
        """After a run moves, tell Slack (when configured): cards for new approvals, decided cards
        refreshed, a status line in the run's thread. A Slack outage must not fail the job: the run
        has already progressed, and the cards can be posted again (posting is idempotent)."""

        def run(job: Job) -> RunResult:
            return self.announce(handler(job))

        return run

    def announce(self, result: RunResult) -> RunResult:
        """Count how the run moved, and tell Slack (see :meth:`_announced`); never raises for Slack's sake."""
        self._count(result)
        if self.actx.settings.slack_configured:
            from api.slack import post_approval_cards, post_run_status

            try:
                post_approval_cards(self.actx, result.run_id)
                post_run_status(self.actx, result.run_id)
            except Exception:
                log.exception("could not update Slack for run %s", result.run_id)
        return result

    def _count(self, result: RunResult) -> None:
        spent = 0
        for runs in list(self._runs.values()):
            planner = runs.deps.planner
            used = getattr(planner, "last_tokens_used", None)
            if isinstance(used, int) and used > 0:
                spent += used
                object.__setattr__(
                    planner, "last_tokens_used", None
                )  # counted once (the LLM planner resets it per plan)
        with self._count_lock:
            self.outcomes[result.status] = self.outcomes.get(result.status, 0) + 1
            self.tokens += spent

    def close(self) -> None:
        self._runs.clear()
        self._saver = None
        self._stack.close()


class IntakeJobs:
    """The ``intake.process`` handler: run the intake graph for a stored document (payload
    ``{document_id}``). Safe to run twice: the graph resumes from its checkpoint, and a document
    already processed returns its stored result."""

    def __init__(self, actx: AppContext) -> None:
        self.actx = actx
        self._stack = ExitStack()
        self._graph: Any = None

    def process(self, job: Job) -> Any:
        return self.process_payload(job.payload)

    def process_payload(self, payload: Mapping[str, Any]) -> Any:
        """:meth:`process` for a payload."""
        from graphs.intake import open_intake_graph  # the parsers load only in workers that take intake jobs

        document_id = _text(payload, "document_id")
        if self._graph is None:
            self._graph = self._stack.enter_context(open_intake_graph(wiring.intake_deps(self.actx)))
        return self._graph.run(document_id)

    def handlers(self) -> dict[str, Handler]:
        return {INTAKE_PROCESS: self.process}

    def close(self) -> None:
        self._graph = None
        self._stack.close()


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"job payload needs {key!r}")
    return value


class Worker:
    """One claim loop. ``run_once`` handles at most one job (what tests drive); ``run`` loops until
    :meth:`stop`. Not thread-safe: give each thread its own worker."""

    def __init__(
        self,
        actx: AppContext,
        kinds: Iterable[str] | None = None,
        worker_id: str | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = 0.5,
        queue: JobQueue | None = None,
        planner: str = "auto",
    ) -> None:
        self.actx = actx
        self.worker_id = worker_id or default_worker_id()
        self.queue = queue or JobQueue(actx.db)
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._run_jobs: RunJobs | None = None
        self._intake_jobs: IntakeJobs | None = None
        if handlers is None:
            self._run_jobs = RunJobs(actx, planner=planner)
            self._intake_jobs = IntakeJobs(actx)
            handlers = {**self._run_jobs.handlers(), **self._intake_jobs.handlers()}
        self.handlers: dict[str, Handler] = dict(handlers)
        self.kinds = frozenset(kinds) if kinds is not None else frozenset(self.handlers)
        unknown = self.kinds - set(self.handlers)
        if unknown:
            raise ValidationFailed(f"no handler for job kinds {sorted(unknown)}")
        self._stop = threading.Event()
        self.current: Job | None = None
        self._last_anchor = time.monotonic()
        self._schedule = WorkerSchedule(actx, self.worker_id)

    # --- control ------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the job in hand (a job claimed but not started is released)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        if self._run_jobs is not None:
            self._run_jobs.close()
        if self._intake_jobs is not None:
            self._intake_jobs.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- work ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Claim and handle jobs until stopped; idle waits are ``poll_s`` and end at once on stop."""
        while not self._stop.is_set():
            try:
                handled = self.run_once()
            except Exception:  # a database hiccup must not kill the thread; the lease protects the job
                log.exception("worker %s: claim loop error", self.worker_id)
                handled = None
            if handled is None:
                self._anchor_when_due()
                self._schedule.run_due()  # the watch, the approval tick: once per interval across workers
                self._stop.wait(self.poll_s)

    def _anchor_when_due(self) -> None:
        """Sign the audit head in quiet periods too (appends sign it as they go), at most every
        ``audit_anchor_interval_s``: a trail rewritten while nothing was appended is still caught."""
        interval = self.actx.settings.audit_anchor_interval_s
        now = time.monotonic()
        if interval <= 0 or now - self._last_anchor < interval:
            return
        self._last_anchor = now
        try:
            self.actx.guard.audit.checkpoint_if_moved()
        except Conflict as exc:  # the head does not match its row: tampering or corruption, say so loudly
            log.error("worker %s: audit trail not anchored: %s", self.worker_id, exc.message)
        except Exception:
            log.exception("worker %s: anchoring the audit trail failed", self.worker_id)

    def run_once(self) -> Job | None:
        """Claim one due job and handle it; the job as it ended (None: nothing was due)."""
        job = self.queue.claim(self.worker_id, self.kinds, self.lease_s)
        if job is None:
            return None
        if self._stop.is_set():
            self.queue.release(job.id, self.worker_id)
            return self.queue.get(job.id)
        self.current = job
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, beat_stop), daemon=True)
        beat.start()
        try:
            self.handlers[job.kind](job)
        except RunBusy:
            # Another process holds the run (or held it and died: its claim lapses after the run
            # lease). Not a failure: give the job back without counting the attempt, and look again.
            self.queue.release(job.id, self.worker_id, delay_s=BUSY_RETRY_S)
        except (ValidationFailed, NotFound) as exc:
            # The payload names something that is not there or is malformed: retrying cannot help.
            self.queue.fail(job.id, self.worker_id, f"{type(exc).__name__}: {exc.message}", retry=False)
        except DomainError as exc:
            self.queue.fail(job.id, self.worker_id, f"{type(exc).__name__}: {exc.message}")
        except OrderOpsError as exc:
            self.queue.fail(job.id, self.worker_id, f"{type(exc).__name__}: {exc.message}")
        except Exception as exc:
            log.exception("worker %s: job %s (%s) failed", self.worker_id, job.id, job.kind)
            tail = "".join(traceback.format_exception_only(exc)).strip()
            self.queue.fail(job.id, self.worker_id, tail)
        else:
            if not self.queue.complete(job.id, self.worker_id):
                log.warning("worker %s: lost the lease of job %s before completing it", self.worker_id, job.id)
        finally:
            beat_stop.set()
            beat.join()
            self.current = None
        return self.queue.get(job.id)

    def _heartbeat(self, job: Job, done: threading.Event) -> None:
        interval = max(0.05, self.lease_s / 3)
        while not done.wait(interval):
            try:
                if not self.queue.heartbeat(job.id, self.worker_id, self.lease_s):
                    log.warning("worker %s: job %s lease lost", self.worker_id, job.id)
                    return
                if self._run_jobs is not None:
                    self._run_jobs.touch(job)
            except Exception:
                log.exception("worker %s: heartbeat of job %s failed", self.worker_id, job.id)


class WorkerPool:
    """``threads`` workers in this process (the server's embedded default); :meth:`stop` joins them."""

    def __init__(
        self,
        actx: AppContext,
        threads: int = 2,
        *,
        kinds: Iterable[str] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = 0.5,
        planner: str = "auto",
    ) -> None:
        base = default_worker_id()
        self.workers = [
            Worker(actx, kinds, f"{base}/t{i}", lease_s=lease_s, poll_s=poll_s, planner=planner) for i in range(threads)
        ]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for w in self.workers:
            t = threading.Thread(target=self._run, args=(w,), name=f"orderops-{w.worker_id}", daemon=True)
            t.start()
            self._threads.append(t)

    @staticmethod
    def _run(worker: Worker) -> None:
        try:
            worker.run()
        finally:
            worker.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop claiming, let jobs in hand finish (up to ``timeout_s``); a job still running after
        that keeps its lease and is claimed again by another worker once the lease runs out."""
        for w in self.workers:
            w.stop()
        for t in self._threads:
            t.join(timeout_s)
        self._threads.clear()
