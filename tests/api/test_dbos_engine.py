"""The job engine, DBOS (issue 12): one workflow per dedup key, each queued run started once and
parked once, a continuation that waits out a dead holder's claim, a worker process killed mid-job
whose work another process takes up (SQLite and PostgreSQL, two workers), job rows relayed from the
outbox, the server's in-process worker, and the worker's ``/metrics``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlalchemy import select

from api.app import create_app
from api.worker_dbos import DbosWorker
from api.worker_metrics import WorkerCollector, registry_for, serve
from core.db import Database, make_database, migrate
from core.db.tables import RunRow
from core.outbox import Outbox
from graphs.runs import RunStore
from guardrails.approvals import ApprovalStatus, ApprovalStore
from services import queue
from tests.api.conftest import Api
from tests.api.test_runs import start
from tests.conftest import REPO, drop_postgres, fresh_postgres_url
from tests.graphs.support import congest
from tests.tools.conftest import build_net

GOAL = "expedite late orders"  # parks for approval after reading, planning and proposing


pytestmark = pytest.mark.usefixtures("queue_clients")


def enqueue_runs(db: Database, n: int, prefix: str = "run_d") -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    for run_id in ids:
        queue.enqueue_start(db, {"run_id": run_id, "goal": GOAL, "requested_by": "otto"})
    return ids


def wait_for(pred: Callable[[], bool], timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def statuses(db: Database, ids: list[str]) -> dict[str, str | None]:
    return {run_id: queue.status_of(db, queue.start_id(run_id)) for run_id in ids}


def assert_each_run_parked_once(db: Database, approvals: ApprovalStore, ids: list[str]) -> None:
    with db.sessions() as s:
        runs = {r.id: r.status for r in s.scalars(select(RunRow))}
    assert runs == dict.fromkeys(ids, "awaiting_approval")
    assert statuses(db, ids) == dict.fromkeys(ids, "SUCCESS")
    for run_id in ids:
        pending = approvals.list_pending(run_id=run_id)
        assert pending, run_id
        keys = [(r.tool, r.args_hash) for r in pending]
        assert len(keys) == len(set(keys)), f"{run_id} asked twice for the same call"
        assert all(r.status == ApprovalStatus.PENDING for r in pending)


def test_queueing_is_idempotent_by_workflow_id(db: Database) -> None:
    first = queue.enqueue_start(db, {"run_id": "run_x", "goal": "a", "requested_by": "otto"})
    again = queue.enqueue_start(db, {"run_id": "run_x", "goal": "b", "requested_by": "eve"})
    cont = queue.enqueue_continue(db, run_id="run_x", approval_id="apr_1", decision_no=1)
    assert cont == queue.enqueue_continue(db, run_id="run_x", approval_id="apr_1", decision_no=1)
    assert cont != queue.enqueue_continue(db, run_id="run_x", approval_id="apr_1", decision_no=2)
    assert first == again == queue.start_id("run_x")
    assert queue.start_payload(db, "run_x") == {"run_id": "run_x", "goal": "a", "requested_by": "otto"}
    assert queue.counts(db) == {"ENQUEUED": 3}
    assert queue.status_of(db, "nothing") is None


def test_an_in_memory_database_is_refused() -> None:
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="in-memory"):
        queue.system_url(make_database(url="sqlite://"))


def test_an_in_process_worker_runs_each_queued_run_once_and_a_bad_payload_ends_dead(api: Api) -> None:
    ids = enqueue_runs(api.net.db, 4)
    bad = queue.enqueue_start(api.net.db, {"run_id": "run_bad", "requested_by": "otto"})  # no goal, no alert
    w = DbosWorker(api.actx, "solo", threads=2, poll_s=0.05, planner="playbook")
    w.launch()
    try:
        assert wait_for(lambda: set(statuses(api.net.db, ids).values()) == {"SUCCESS"})
        assert wait_for(lambda: queue.status_of(api.net.db, bad) == "ERROR")
    finally:
        w.close()
    assert_each_run_parked_once(api.net.db, api.actx.guard.approvals, ids)
    assert w.handlers.runs.outcomes == {"awaiting_approval": 4}
    body = generate_latest(
        registry_for(
            WorkerCollector(
                api.net.db, "dbos", lambda: queue.counts(api.net.db), lambda: w.handlers.runs.outcomes, lambda: 7
            )
        )
    ).decode()
    assert 'orderops_jobs{engine="dbos",status="SUCCESS"} 4.0' in body
    assert "orderops_jobs_dead 1.0" in body
    assert "orderops_queue_depth 0.0" in body
    assert 'orderops_runs{status="awaiting_approval"} 4.0' in body
    assert 'orderops_worker_run_outcomes_total{status="awaiting_approval"} 4.0' in body
    assert "orderops_llm_tokens_total 7.0" in body


def test_a_continuation_waits_for_a_dead_holders_claim_then_finishes_the_run(api: Api) -> None:
    congest(api.net)
    node = api.net.busiest_dc()
    db = api.net.db
    run_id = "run_hold"
    queue.enqueue_start(db, {"run_id": run_id, "goal": f"{node} is congested", "requested_by": "otto"})
    w = DbosWorker(api.actx, "solo", poll_s=0.05, planner="playbook")
    w.launch()
    try:
        assert wait_for(lambda: queue.status_of(db, queue.start_id(run_id)) == "SUCCESS")
        step_ids = [a.id for a in api.actx.guard.approvals.list_pending(run_id=run_id)]
        r = api.client.post(f"/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=api.as_("approver"))
        assert r.status_code == 200, r.text
        # Another process claimed the run and died holding it.
        store = RunStore(db, api.net.clock)
        store.update(run_id=run_id, status="awaiting_approval")
        assert store.claim(run_id=run_id)
        last = api.actx.guard.approvals.get(step_ids[-1])
        wf = queue.enqueue_continue(db, run_id=run_id, approval_id=last.id, decision_no=len(last.decisions))
        time.sleep(3 * queue.BUSY_RETRY_S)
        assert queue.status_of(db, wf) == "PENDING", "waiting for the claim, not ended with the steps unexecuted"
        assert store.get(run_id=run_id).status == "running"
        api.net.clock.advance(timedelta(seconds=31))  # the dead holder's claim lapses
        assert wait_for(lambda: queue.status_of(db, wf) == "SUCCESS")
    finally:
        w.close()
    assert store.get(run_id=run_id).status in ("completed", "partially_completed")


# --- worker processes ------------------------------------------------------------------------------


def spawn(url: str, home: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=url, ORDEROPS_HOME=str(home), ORDEROPS_CLOCK="network", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "api.cli_worker", "--poll-s", "0.05", "--planner", "playbook"]
    return subprocess.Popen(
        [*cmd, "--worker-id", name], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def held_by(db: Database, executor: str) -> list[str]:
    found = queue.client(db).list_workflows(status="PENDING", executor_id=executor, load_input=False)
    return [w.workflow_id for w in found]


def kill_a_mid_job(db: Database, url: str, home: Path, procs: list[subprocess.Popen[bytes]], ids: list[str]) -> str:
    """SIGKILL worker A (``procs[0]``) while it holds a job, after another job is done when a second
    worker runs; the id of a job A held when it died. A that finished its job between the look and
    the kill is started again (its executor id is free once it is dead) and killed again; if by
    then the others have nearly emptied the queue, more jobs are added to ``ids`` (in place) so the
    restarted A still finds one to die holding."""
    deadline = time.monotonic() + 150  # interpreter start-up is slow on a loaded machine
    top_ups = 0
    while time.monotonic() < deadline:
        done = sum(1 for s in statuses(db, ids).values() if s == "SUCCESS")
        if held_by(db, "A") and (done >= 1 or len(procs) == 1):
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            held = held_by(db, "A")  # A is dead: what is still PENDING under it was in hand
            if held:
                return held[0]
            if sum(1 for s in statuses(db, ids).values() if s != "SUCCESS") < 4:
                top_ups += 1
                ids.extend(enqueue_runs(db, 6, prefix=f"run_t{top_ups}_"))
            procs[0] = spawn(url, home, "A")
        time.sleep(0.01)
    raise AssertionError("worker A never died holding a job")


def kill_mid_job_and_finish(db: Database, url: str, home: Path, ids: list[str], *, second: bool) -> str:
    """Start worker A (and B when ``second``), SIGKILL A while it holds a job, let B (or a new
    worker C) finish; the killed job's id."""
    procs = [spawn(url, home, "A")]
    if second:
        procs.append(spawn(url, home, "B"))
    try:
        killed = kill_a_mid_job(db, url, home, procs, ids)
        if not second:
            procs.append(spawn(url, home, "C"))
        assert wait_for(lambda: set(statuses(db, ids).values()) == {"SUCCESS"}, 180), statuses(db, ids)
        last = procs[-1]
        last.send_signal(signal.SIGTERM)  # graceful: finishes the job in hand, then exits 0
        assert last.wait(60) == 0, last.stderr.read().decode() if last.stderr else ""
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    return killed


def test_a_worker_killed_mid_job_is_taken_over_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orderops.db'}"
    db = make_database(url=url)
    try:
        migrate(db)
        net = build_net(db)
        ids = enqueue_runs(db, 6)
        killed = kill_mid_job_and_finish(db, url, tmp_path / "home", ids, second=False)
        assert_each_run_parked_once(db, net.gateway.guard.approvals, ids)
        (wf,) = queue.client(db).list_workflows(workflow_ids=[killed], load_input=False)
        assert wf.executor_id == "C", "the dead worker's job was re-queued and taken by the new one"
        assert net.gateway.guard.audit.verify().ok
    finally:
        db.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = fresh_postgres_url()
    try:
        yield url
    finally:
        queue.close_clients()
        drop_postgres(url)


@pytest.mark.postgres
def test_two_worker_processes_on_postgres_survive_a_kill(pg_url: str, tmp_path: Path) -> None:
    db = make_database(url=pg_url)
    try:
        migrate(db)
        net = build_net(db)
        ids = enqueue_runs(db, 12)
        killed = kill_mid_job_and_finish(db, pg_url, tmp_path / "home", ids, second=True)
        assert_each_run_parked_once(db, net.gateway.guard.approvals, ids)
        (wf,) = queue.client(db).list_workflows(workflow_ids=[killed], load_input=False)
        assert wf.executor_id == "B"
        assert net.gateway.guard.audit.verify().ok
    finally:
        db.dispose()


def test_the_worker_serves_metrics_over_http(db: Database) -> None:
    queue.enqueue_start(db, {"run_id": "run_m", "goal": GOAL, "requested_by": "otto"})
    collector = WorkerCollector(db, "dbos", lambda: queue.counts(db), lambda: {"completed": 2}, lambda: 0)
    port = _free_port()
    stop = serve(collector, port)
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        stop()
    assert "orderops_queue_depth 1.0" in body
    assert 'orderops_worker_run_outcomes_total{status="completed"} 2.0' in body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_runs_started_and_approved_over_http_reach_dbos_through_the_job_rows(api: Api) -> None:
    """The ways in still write job rows (in their own transactions); the worker relays them."""
    congest(api.net)
    node = api.net.busiest_dc()
    db = api.net.db
    run_id = start(api, f"{node} is congested")
    w = DbosWorker(api.actx, "solo", poll_s=0.05, planner="playbook")
    loop = threading.Thread(target=w.run, daemon=True)
    loop.start()
    try:
        assert wait_for(lambda: queue.status_of(db, queue.start_id(run_id)) == "SUCCESS")
        assert RunStore(db, api.net.clock).get(run_id=run_id).status == "awaiting_approval"
        r = api.client.post(f"/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=api.as_("approver"))
        assert r.status_code == 200, r.text
        assert wait_for(lambda: RunStore(db, api.net.clock).get(run_id=run_id).status != "awaiting_approval")
        assert wait_for(lambda: queue.counts(db) == {"SUCCESS": 2})
        assert wait_for(lambda: Outbox(db).counts() == {"done": 2}), "each job row follows its workflow"
    finally:
        w.stop()
        loop.join(30)
        w.close()
    assert RunStore(db, api.net.clock).get(run_id=run_id).status in ("completed", "partially_completed")
    assert [j.attempts for j in Outbox(db).list()] == [1, 1], "handed once each, however often looked at"


def test_serve_runs_queued_runs_on_dbos_in_process(api: Api) -> None:
    """``orderops serve`` (``worker_threads`` > 0) runs DBOS in the server's process by default."""
    assert api.actx.settings.job_engine == "dbos"
    app = create_app(api.actx, keys=api.keys, workers=1)
    with TestClient(app) as client:
        r = client.post("/v1/runs", json={"goal": GOAL}, headers=api.as_("operator"))
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        assert wait_for(lambda: queue.status_of(api.net.db, queue.start_id(run_id)) == "SUCCESS")
    assert RunStore(api.net.db, api.net.clock).get(run_id=run_id).status == "awaiting_approval"


def test_the_worker_has_no_engine_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DBOS is the only engine, so there is nothing to choose: naming one is a usage error
    (status 2, said plainly), not an option kept for show."""
    from api.cli import run

    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDEROPS_DATABASE_URL", raising=False)
    assert run(["worker", "--engine", "dbos"]) == 2
    assert "No such option: --engine" in capsys.readouterr().err


def test_a_handed_job_stays_queued_until_its_workflow_ends(db: Database) -> None:
    """Relayed rows follow their workflows: a start the workers have not taken is still ``queued``
    (the alert inbox coalesces a storm into it), and relaying again adds no second workflow."""
    from services.runs import StartRun, queue_run

    job = queue_run(db, StartRun(run_id="run_r", goal=GOAL, requested_by="otto"))
    assert queue.relay(db) == 1
    assert queue.relay(db) == 0, "not due again until the re-check delay has passed"
    time.sleep(queue.RELAY_RECHECK_S + 0.1)
    assert queue.relay(db) == 1
    row = Outbox(db).get(job.id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert queue.status_of(db, queue.start_id("run_r")) == "ENQUEUED"
    assert queue.counts(db) == {"ENQUEUED": 1}


def test_a_row_no_workflow_can_run_fails_at_once_and_a_finished_row_never_moves_back(db: Database) -> None:
    rows = Outbox(db)
    bad = rows.enqueue(queue.START_RUN, {"goal": GOAL})  # names no run
    assert queue.relay(db) == 1
    failed = rows.get(bad.id)
    assert failed.status == "failed"
    assert "run_id" in (failed.last_error or "")
    assert not rows.look_again(bad.id, 0.0)
    assert not rows.finish(bad.id, "done")
    assert rows.get(bad.id).status == "failed"
    assert queue.client(db).list_workflows(load_input=False) == [], "nothing was queued for it"
