"""A worker's handlers build their run drivers and intake graph once, however many of its threads
take their first job together (:class:`api.worker.RunJobs`, :class:`api.worker.IntakeJobs`).

The builds are stood in for by fakes that wait at a barrier for a second builder: without the lock
two threads both reach the build and the barrier lets them through together (two builds, every
time); with it the first builder waits alone, the barrier times out, and the others find its
result. So the race is forced, not hoped for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import SimpleNamespace
from typing import Any, cast

import pytest

from api import worker
from api.bootstrap import AppContext
from services import wiring

THREADS = 8
RENDEZVOUS_S = 0.5
"""How long a fake build waits for a second builder (it never comes once the lock is held)."""


class _Builds:
    """Counts builds; each build waits (briefly) for a second concurrent one."""

    def __init__(self) -> None:
        self.count = 0
        self.checkpointers = 0
        self._lock = threading.Lock()
        self._rendezvous = threading.Barrier(2)

    def build(self) -> None:
        with self._lock:
            self.count += 1
        with suppress(threading.BrokenBarrierError):  # alone in the build: what the lock is for
            self._rendezvous.wait(timeout=RENDEZVOUS_S)

    @contextmanager
    def checkpointer(self, _db: Any) -> Iterator[object]:
        with self._lock:
            self.checkpointers += 1
        yield object()


def _together(call: Callable[[], object]) -> list[object]:
    """``call`` from THREADS threads released together by a barrier; their results."""
    start = threading.Barrier(THREADS)
    results: list[object] = []
    errors: list[BaseException] = []

    def go() -> None:
        start.wait()
        try:
            results.append(call())
        except BaseException as exc:  # surfaced below: a thread's error does not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


@pytest.fixture
def actx() -> AppContext:
    return cast(AppContext, SimpleNamespace(db=object(), clock=object(), settings=SimpleNamespace()))


def test_run_jobs_builds_one_driver_per_requester_under_racing_threads(
    monkeypatch: pytest.MonkeyPatch, actx: AppContext
) -> None:
    builds = _Builds()

    class FakeRuns:
        def __init__(self, deps: object, saver: object, *, lease_s: float) -> None:
            builds.build()
            self.deps = deps

    monkeypatch.setattr(worker, "RunStore", lambda db, clock: object())
    monkeypatch.setattr(worker, "open_checkpointer", builds.checkpointer)
    monkeypatch.setattr(worker, "ExceptionRuns", FakeRuns)
    monkeypatch.setattr(wiring, "choose_planner", lambda actx, name: object())
    monkeypatch.setattr(wiring, "run_deps", lambda *a, **k: object())
    jobs = worker.RunJobs(actx)
    try:
        got = _together(lambda: jobs.runs("otto"))
        assert (builds.count, builds.checkpointers) == (1, 1)
        assert len({id(r) for r in got}) == 1
        # Another requester gets a driver of its own, on the same checkpointer.
        assert jobs.runs("ida") is not got[0]
        assert (builds.count, builds.checkpointers) == (2, 1)
    finally:
        jobs.close()


def test_intake_jobs_opens_one_graph_under_racing_threads(monkeypatch: pytest.MonkeyPatch, actx: AppContext) -> None:
    import graphs.intake

    builds = _Builds()

    class FakeGraph:
        def run(self, document_id: str) -> str:
            return document_id

    @contextmanager
    def open_graph(_deps: object) -> Iterator[FakeGraph]:
        builds.build()
        yield FakeGraph()

    monkeypatch.setattr(graphs.intake, "open_intake_graph", open_graph)
    monkeypatch.setattr(wiring, "intake_deps", lambda actx: object())
    jobs = worker.IntakeJobs(actx)
    try:
        got = _together(lambda: jobs.process_payload({"document_id": "doc_1"}))
        assert got == ["doc_1"] * THREADS
        assert builds.count == 1
    finally:
        jobs.close()
