"""The job handlers every worker runs: exception runs (:class:`RunJobs`) and intake
(:class:`IntakeJobs`), called by the DBOS workflows of :mod:`services.queue` through
:class:`api.worker_dbos.DbosHandlers`. Any worker can carry on a run another one started: run state
lives in the LangGraph checkpoints and the approval store, both in the database.

Handlers must be safe to run twice (a worker may die after doing the work and before DBOS records
it): the exception-run handlers are, because a run re-entered from its checkpoint replays its
writes under the gateway's idempotency keys instead of repeating them.

What this module must never do: drive a run for anyone but the requester its job names.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from api.bootstrap import AppContext
from core.errors import ValidationFailed
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunResult
from graphs.runs import RunStore
from services import runs as run_service
from services import wiring

log = logging.getLogger("orderops.worker")

DEFAULT_REQUESTER = run_service.DEFAULT_REQUESTER


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
        """A run's claim lapses this long after its holder's last renewal (the workflow step renews it)."""
        self.store = RunStore(actx.db, actx.clock)
        self._stack = ExitStack()
        self._saver: Any = None
        self._runs: dict[str, ExceptionRuns] = {}
        self.outcomes: dict[str, int] = {}
        """How the runs this process moved stood afterwards, by status (for ``/metrics``)."""
        self.tokens = 0
        """LLM tokens this process's planners spent (for ``/metrics``)."""
        self._count_lock = threading.Lock()
        self._build_lock = threading.Lock()
        """Held while a driver (and the checkpointer) is built: worker threads take jobs at once."""

    def runs(self, requested_by: str) -> ExceptionRuns:
        """The driver acting for ``requested_by`` (who may then not approve the run's calls).

        Built once per requester, under a lock: two worker threads taking their first jobs together
        would otherwise both build one (and open two checkpointers, one never closed). Checked
        again under the lock; the lock-free read first keeps every later call off it."""
        found = self._runs.get(requested_by)
        if found is not None:
            return found
        with self._build_lock:
            found = self._runs.get(requested_by)
            if found is None:
                if self._saver is None:
                    self._saver = self._stack.enter_context(open_checkpointer(self.actx.db))
                planner = wiring.choose_planner(self.actx, self.planner)
                deps = wiring.run_deps(self.actx, planner, runs=self.store, requested_by=requested_by)
                found = self._runs[requested_by] = ExceptionRuns(deps, self._saver, lease_s=self.run_lease_s)
            return found

    def start_payload(self, payload: Mapping[str, Any]) -> RunResult:
        """Start the run named in the payload; if an earlier attempt got it going, carry it on."""
        cmd = run_service.StartRun.of_payload(dict(payload))
        return run_service.start_or_carry_on(self.runs(cmd.requested_by), cmd)

    def continue_payload(self, payload: Mapping[str, Any]) -> RunResult:
        """Carry a parked run on from approval decisions recorded elsewhere (API, Slack, console);
        raises :class:`graphs.exception.RunBusy` while another process holds the run."""
        run_id = _text(payload, "run_id")
        runs = self.runs(self._requester(run_id, payload))
        return run_service.carry_on(runs, run_id, busy_raises=True)

    def _requester(self, run_id: str, payload: Mapping[str, Any]) -> str:
        """Who the run acts for: as the continue job says, else as the job that started it said."""
        if payload.get("requested_by"):
            return str(payload["requested_by"])
        return run_service.queued_requester(self.actx.db, run_id) or DEFAULT_REQUESTER

    def announce(self, result: RunResult) -> RunResult:
        """Count how the run moved, and tell Slack (when configured): cards for new approvals,
        decided cards refreshed, a status line in the run's thread. A Slack outage must not fail
        the job: the run has already progressed, and posting again is idempotent."""
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
        self._build_lock = threading.Lock()
        """Held while the graph is opened (once, as :meth:`RunJobs.runs` builds its drivers)."""

    def process_payload(self, payload: Mapping[str, Any]) -> Any:
        """Run the intake graph for the document the payload names."""
        document_id = _text(payload, "document_id")
        return self._intake_graph().run(document_id)

    def _intake_graph(self) -> Any:
        """The intake graph, opened on first use by one thread (checked again under the lock)."""
        if self._graph is None:
            from graphs.intake import open_intake_graph  # the parsers load only in workers that take intake jobs

            with self._build_lock:
                if self._graph is None:
                    self._graph = self._stack.enter_context(open_intake_graph(wiring.intake_deps(self.actx)))
        return self._graph

    def close(self) -> None:
        self._graph = None
        self._stack.close()


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"job payload needs {key!r}")
    return value
