"""Durable execution of exception runs and intake on DBOS Transact: the ``dbos`` job engine.

Each job is a DBOS workflow named as the old job kinds were (``exception_run.start``,
``exception_run.continue``, ``intake.process``), with the old dedup key as its workflow id, so
queueing one twice returns the first (one start per run, ever; one continuation per decision).
Run workflows go through a queue partitioned by run id with one running per partition, so two
workers never drive one run at once; the run's own claim (:meth:`graphs.runs.RunStore.claim`)
still guards it, and a run another process holds makes the workflow sleep durably and try again.
The LangGraph checkpointer keeps the graph's state; DBOS keeps which job is where.

DBOS's system tables live in the project database: in schema ``dbos`` on PostgreSQL, and on
SQLite in a sibling file ``<database>.dbos`` (SQLite has no schemas; a second file also keeps the
queue's writes off the project file's write lock).

A worker that dies mid-job leaves its workflow PENDING under its executor id. Open-source DBOS
recovers such workflows only when the same executor starts again, so every live executor holds a
liveness lock for as long as its process lives (a PostgreSQL session advisory lock; a file lock on
SQLite, where every worker is on one machine) and, every few seconds, re-queues the pending
workflows of executors whose lock nobody holds (:meth:`DbosEngine.recover_dead`). The kernel or
the server drops the lock the moment the process dies; no lease to tune.

Importing this module imports DBOS (about a second): only workers and the ``dbos`` engine's
producers import it, never a CLI command that does not need it.

What this module must never do: start a workflow twice for one id, recover the workflows of an
executor that is still alive, or drive a run whose claim another process holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions

from core.db import Database
from core.errors import NotFound, OrderOpsError, ValidationFailed
from core.outbox import Job, Outbox
from graphs.exception import RunBusy

log = logging.getLogger("orderops.queue")

START_RUN = "exception_run.start"
CONTINUE_RUN = "exception_run.continue"
INTAKE_PROCESS = "intake.process"
RUNS_QUEUE = "orderops_runs"
INTAKE_QUEUE = "orderops_intake"
APP_NAME = "orderops"
APP_VERSION = "orderops-jobs-1"
"""The workflows' code version. Pinned (DBOS would hash the code) so that producers, which never
register the workflows, and every worker agree; bump it when a workflow's steps change shape."""
SCHEMA = "dbos"
BUSY_RETRY_S = 2.0
"""How soon a run whose claim another process holds is looked at again."""
STEP_ATTEMPTS = 5
"""Attempts of one job's step on an error worth retrying (1, 2, 4, 8 s apart); then the workflow
ends in ERROR: a dead job."""
RECOVERY_INTERVAL_S = 2.0
TOUCH_INTERVAL_S = 10.0
"""How often a run being driven renews its claim (the claim lapses after 30 s without one)."""
DEAD_STATUSES = ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
PERMANENT: tuple[type[BaseException], ...] = (ValidationFailed, NotFound, RunBusy)
"""Errors a retry cannot help (a payload naming nothing) or that the workflow handles itself."""


class Handlers(Protocol):
    """What the workflows call: the worker's run and intake handlers, bound with :func:`bind`."""

    def start_run(self, payload: dict[str, Any]) -> str: ...

    def continue_run(self, payload: dict[str, Any]) -> str: ...

    def process_document(self, payload: dict[str, Any]) -> str: ...

    def touch(self, run_id: str) -> None: ...


_bound: Handlers | None = None


def bind(handlers: Handlers | None) -> None:
    """Give this process's workflows their handlers (a process launches one engine at a time)."""
    global _bound
    _bound = handlers


def _handlers() -> Handlers:
    if _bound is None:
        raise RuntimeError("no handlers bound: this process launched no DbosEngine")
    return _bound


# --- workflows ------------------------------------------------------------------------------------


def _transient(exc: BaseException) -> bool:
    return not isinstance(exc, PERMANENT)


@DBOS.step(
    name="orderops.job_attempt",
    retries_allowed=True,
    max_attempts=STEP_ATTEMPTS,
    interval_seconds=1.0,
    backoff_rate=2.0,
    should_retry=_transient,
)
def _attempt(kind: str, payload: dict[str, Any]) -> str:
    """One go at a job. Re-run whole when the worker died inside it: the run resumes from its
    checkpoint and replays its writes under the gateway's idempotency keys."""
    h = _handlers()
    run_id = payload.get("run_id")
    with _touching(h, run_id if isinstance(run_id, str) else None):
        if kind == START_RUN:
            return h.start_run(payload)
        if kind == CONTINUE_RUN:
            return h.continue_run(payload)
        return h.process_document(payload)


class JobFailed(Exception):
    """A job's error as its workflow ends with it, ``Type: message``: the project's own errors take
    constructor arguments that unpickling does not replay, so DBOS could not read them back."""


def _drive(kind: str, payload: dict[str, Any]) -> str:
    while True:
        try:
            return _attempt(kind, payload)
        except RunBusy:
            DBOS.sleep(BUSY_RETRY_S)  # durable: a worker that dies here wakes up elsewhere
        except OrderOpsError as exc:
            raise JobFailed(f"{type(exc).__name__}: {exc.message}") from None


@DBOS.workflow(name=START_RUN)
def start_run_workflow(payload: dict[str, Any]) -> str:
    """Start a run (or carry on the one an earlier attempt got going); its status when it parks or ends."""
    return _drive(START_RUN, payload)


@DBOS.workflow(name=CONTINUE_RUN)
def continue_run_workflow(payload: dict[str, Any]) -> str:
    """Carry a parked run on after approval decisions recorded elsewhere."""
    return _drive(CONTINUE_RUN, payload)


@DBOS.workflow(name=INTAKE_PROCESS)
def intake_workflow(payload: dict[str, Any]) -> str:
    """Run the intake graph for a stored document."""
    return _drive(INTAKE_PROCESS, payload)


@contextlib.contextmanager
def _touching(h: Handlers, run_id: str | None) -> Iterator[None]:
    """Renew the run's claim while a step drives it, so only a dead holder's claim lapses."""
    if run_id is None:
        yield
        return
    done = threading.Event()

    def beat() -> None:
        while not done.wait(TOUCH_INTERVAL_S):
            try:
                h.touch(run_id)
            except Exception:
                log.exception("could not renew the claim of run %s", run_id)

    t = threading.Thread(target=beat, name=f"touch-{run_id}", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


# --- where the system tables are --------------------------------------------------------------------


def system_url(db: Database) -> str:
    """DBOS's system database for ``db``: the same PostgreSQL database, or ``<file>.dbos`` beside
    a SQLite file. An in-memory SQLite database has no place for durable state: refused."""
    url = db.engine.url
    if db.is_postgres:
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    path = url.database or ""
    if not path or path == ":memory:":
        raise ValidationFailed("the dbos job engine needs a database file or PostgreSQL, not an in-memory SQLite")
    return f"sqlite:///{path}.dbos"


_clients: dict[str, DBOSClient] = {}
_clients_lock = threading.Lock()
_migrated: set[str] = set()


def migrate(db: Database) -> None:
    """Create or upgrade DBOS's system tables for ``db`` (idempotent; once per process)."""
    url = system_url(db)
    with _clients_lock:
        if url not in _migrated:
            DBOS.migrate(url, schema=SCHEMA)
            _migrated.add(url)


def client(db: Database) -> DBOSClient:
    """A DBOS client on ``db``'s system tables: enqueues and reads without launching DBOS."""
    url = system_url(db)
    migrate(db)
    with _clients_lock:
        found = _clients.get(url)
        if found is None:
            found = _clients[url] = DBOSClient(system_database_url=url, dbos_system_schema=SCHEMA)
        return found


def close_clients() -> None:
    with _clients_lock:
        for c in _clients.values():
            c.destroy()
        _clients.clear()
        _migrated.clear()


# --- producing ------------------------------------------------------------------------------------


def start_id(run_id: str) -> str:
    return f"{START_RUN}:{run_id}"


def continue_id(approval_id: str, decision_no: int) -> str:
    return f"{CONTINUE_RUN}:{approval_id}:{decision_no}"


def intake_id(document_id: str) -> str:
    return f"{INTAKE_PROCESS}:{document_id}"


def _enqueue(db: Database, name: str, workflow_id: str, payload: dict[str, Any], partition: str | None) -> str:
    options: EnqueueOptions = {
        "queue_name": RUNS_QUEUE if partition is not None else INTAKE_QUEUE,
        "workflow_name": name,
        "workflow_id": workflow_id,
        "app_version": APP_VERSION,
        "application_name": APP_NAME,
    }
    if partition is not None:
        options["queue_partition_key"] = partition
    return client(db).enqueue(options, payload).get_workflow_id()


def enqueue_start(db: Database, payload: dict[str, Any]) -> str:
    """Queue the workflow that starts ``payload['run_id']`` (idempotent per run id); its id."""
    run_id = _required(payload, "run_id")
    return _enqueue(db, START_RUN, start_id(run_id), payload, run_id)


def enqueue_continue(db: Database, *, run_id: str, approval_id: str, decision_no: int) -> str:
    """Queue the workflow that carries ``run_id`` on after decision ``decision_no`` on
    ``approval_id`` (idempotent per decision)."""
    payload = {"run_id": run_id, "approval_id": approval_id}
    return _enqueue(db, CONTINUE_RUN, continue_id(approval_id, decision_no), payload, run_id)


def enqueue_intake(db: Database, document_id: str) -> str:
    """Queue the intake of a stored document (idempotent per document)."""
    return _enqueue(db, INTAKE_PROCESS, intake_id(document_id), {"document_id": document_id}, None)


RELAYED_KINDS = (START_RUN, CONTINUE_RUN, INTAKE_PROCESS)
RELAY_RECHECK_S = 1.0
"""How often a handed job's row is brought up to date with its workflow."""
FINISHED_BAD = frozenset({"ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", "CANCELLED"})
FINISHED = FINISHED_BAD | {"SUCCESS"}


def relay(db: Database, *, limit: int = 200) -> int:
    """Hand due job rows (:mod:`core.outbox`) to DBOS and bring handed ones up to date; how many
    rows were looked at.

    The ways in write a job row in their own transaction (the alert inbox records an alert and its
    run's start together or not at all, which DBOS, on connections of its own, cannot join); this
    is the outbox's relay. A row becomes the workflow whose id is its dedup key and then follows
    it. No claim is needed: enqueueing an id twice returns the first workflow and a finished row
    never moves back, so relays in several processes, or one that dies anywhere, lose and repeat
    nothing.
    """
    rows = Outbox(db)
    due = rows.due(RELAYED_KINDS, limit=limit)
    for job in due:
        hand(db, rows, job)
    return len(due)


def hand(db: Database, rows: Outbox, job: Job) -> str | None:
    """Hand one row to DBOS (idempotent) and settle the row by its workflow's status; that status
    (None when handing failed: the row is looked at again later)."""
    try:
        workflow_id = enqueue_job(db, job)
        status = status_of(db, workflow_id)
    except ValidationFailed as exc:  # no workflow can run this row: say so, once
        rows.finish(job.id, "failed", f"ValidationFailed: {exc.message}")
        return "ERROR"
    except Exception:
        log.exception("could not hand job %s to DBOS", job.id)
        rows.look_again(job.id, RELAY_RECHECK_S)
        return None
    if status == "SUCCESS":
        rows.finish(job.id, "done")
    elif status in FINISHED_BAD:
        rows.finish(job.id, "failed", f"workflow {workflow_id} ended {status}: {error_of(db, workflow_id)}")
    else:  # waiting or running: look again shortly
        rows.look_again(job.id, RELAY_RECHECK_S)
    return status


def enqueue_job(db: Database, job: Job) -> str:
    """The workflow for a job row (same name as its kind, its dedup key as the workflow id)."""
    payload = dict(job.payload)
    workflow_id = job.dedup_key or f"job:{job.id}"
    if job.kind == INTAKE_PROCESS:
        return _enqueue(db, INTAKE_PROCESS, workflow_id, payload, None)
    if job.kind not in (START_RUN, CONTINUE_RUN):
        raise ValidationFailed(f"no workflow for job kind {job.kind!r}")
    return _enqueue(db, job.kind, workflow_id, payload, _required(payload, "run_id"))


def _required(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"job payload needs {key!r}")
    return value


def status_of(db: Database, workflow_id: str) -> str | None:
    """A job's DBOS status (ENQUEUED, PENDING, SUCCESS, ERROR, ...); None if never queued."""
    found = client(db).list_workflows(workflow_ids=[workflow_id], load_input=False, load_output=False)
    return found[0].status if found else None


def error_of(db: Database, workflow_id: str) -> str:
    """Why a workflow ended in error, as ``Type: message`` (empty when it did not)."""
    found = client(db).list_workflows(workflow_ids=[workflow_id], load_input=False)
    error = found[0].error if found else None
    if error is None:
        return ""
    if isinstance(error, JobFailed):
        return str(error)
    return f"{type(error).__name__}: {str(error)[:500]}"


def start_payload(db: Database, run_id: str) -> dict[str, Any] | None:
    """The payload the run's start workflow was queued with (who it acts for); None if none was."""
    found = client(db).list_workflows(workflow_ids=[start_id(run_id)], load_output=False)
    inputs = found[0].input if found else None
    args = inputs.get("args") if isinstance(inputs, dict) else None
    first = args[0] if args else None
    return dict(first) if isinstance(first, dict) else None


def counts(db: Database) -> dict[str, int]:
    """Jobs by DBOS status, counted in SQL (for metrics: a scrape must not load every workflow)."""
    url = system_url(db)
    engine = _count_engine(url)
    table = "dbos.workflow_status" if db.is_postgres else "workflow_status"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT status, count(*) FROM {table} GROUP BY status"))
        return {str(s): int(n) for s, n in rows}


_count_engines: dict[str, sa.Engine] = {}


def _count_engine(url: str) -> sa.Engine:
    with _clients_lock:
        found = _count_engines.get(url)
        if found is None:
            found = _count_engines[url] = sa.create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True)
        return found


# --- liveness -------------------------------------------------------------------------------------


class Liveness(Protocol):
    """A lock an executor holds while its process lives; anyone may ask whether another's is held."""

    def hold(self, executor_id: str) -> None: ...

    def is_dead(self, executor_id: str) -> bool: ...

    def close(self) -> None: ...


def _key(executor_id: str) -> str:
    return f"orderops-executor:{executor_id}"


class PostgresLiveness:
    """A session advisory lock on a connection kept open for the process's life; the server drops
    it when the connection dies with the process."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._conn: sa.Connection | None = None
        self._lock = threading.Lock()

    def hold(self, executor_id: str) -> None:
        self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = self._conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": _key(executor_id)})
        if not got.scalar():
            raise ValidationFailed(f"executor id {executor_id!r} is in use by a live worker")

    def is_dead(self, executor_id: str) -> bool:
        with self._lock, self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            k = {"k": _key(executor_id)}
            if not c.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:k))"), k).scalar():
                return False
            c.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:k))"), k)
            return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()


class FileLiveness:
    """An exclusive ``flock`` on ``<dir>/<executor>.lock``; the kernel drops it when the process dies."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._held: IO[bytes] | None = None

    def _path(self, executor_id: str) -> Path:
        return self.dir / f"{hashlib.sha256(_key(executor_id).encode()).hexdigest()[:32]}.lock"

    def hold(self, executor_id: str) -> None:
        f = self._path(executor_id).open("ab")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise ValidationFailed(f"executor id {executor_id!r} is in use by a live worker") from None
        self._held = f

    def is_dead(self, executor_id: str) -> bool:
        path = self._path(executor_id)
        if path == (Path(self._held.name) if self._held is not None else None):
            return False
        with path.open("ab") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f, fcntl.LOCK_UN)
            return True

    def close(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None


def liveness_for(db: Database) -> Liveness:
    if db.is_postgres:
        return PostgresLiveness(system_url(db))
    return FileLiveness(Path(f"{db.engine.url.database}.dbos-executors"))


# --- consuming ------------------------------------------------------------------------------------


class DbosEngine:
    """DBOS launched in this process as executor ``executor_id``, running the workflows with
    ``handlers``: ``threads`` jobs at a time, the queues polled every ``poll_s`` seconds.

    One per process (DBOS is a process-wide singleton): :meth:`close` before launching another.
    """

    def __init__(
        self,
        db: Database,
        handlers: Handlers,
        executor_id: str,
        *,
        threads: int = 1,
        poll_s: float = 0.5,
        recovery_interval_s: float = RECOVERY_INTERVAL_S,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.executor_id = executor_id
        self.threads = threads
        self.poll_s = poll_s
        self.recovery_interval_s = recovery_interval_s
        self.url = system_url(db)
        self.liveness = liveness_for(db)
        self._stop = threading.Event()
        self._recovery: threading.Thread | None = None
        self.recovered = 0
        """Workflows of dead executors this engine put back on their queues."""

    def launch(self) -> None:
        self.liveness.hold(self.executor_id)
        try:
            self._launch()
        except BaseException:
            with contextlib.suppress(Exception):
                DBOS.destroy()  # a half-launched DBOS would refuse the next launch in this process
            bind(None)
            self.liveness.close()
            raise

    def _launch(self) -> None:
        bind(self.handlers)
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": self.url,
            "dbos_system_schema": SCHEMA,
            "executor_id": self.executor_id,
            "application_version": APP_VERSION,
            "log_level": "WARNING",
            "max_executor_threads": self.threads + 8,
            "sys_db_pool_size": max(4, self.threads + 2),
        }
        DBOS(config=config)
        DBOS.launch()
        for name in (RUNS_QUEUE, INTAKE_QUEUE):
            DBOS.register_queue(
                name,
                worker_concurrency=self.threads,
                partition_concurrency=1 if name == RUNS_QUEUE else None,
                polling_interval_sec=self.poll_s,
                on_conflict="always_update",
            )
        self._recovery = threading.Thread(target=self._recover_loop, name="orderops-recovery", daemon=True)
        self._recovery.start()

    def _recover_loop(self) -> None:
        while not self._stop.wait(self.recovery_interval_s):
            try:
                self.recover_dead()
            except Exception:
                log.exception("executor %s: recovering dead executors' workflows failed", self.executor_id)

    def recover_dead(self) -> int:
        """Put the PENDING workflows of executors whose process is gone back on their queues."""
        pending = DBOS.list_workflows(status="PENDING", load_input=False, load_output=False)
        others = sorted({w.executor_id for w in pending if w.executor_id and w.executor_id != self.executor_id})
        dead = [e for e in others if self.liveness.is_dead(e)]
        if not dead:
            return 0
        handles = DBOS._recover_pending_workflows(dead)
        self.recovered += len(handles)
        log.warning(
            "executor %s: re-queued %d workflow(s) of dead executor(s) %s", self.executor_id, len(handles), dead
        )
        return len(handles)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking jobs, let those in hand finish for up to ``timeout_s``, then shut DBOS down;
        a job still running then is recovered by another worker once this process is gone."""
        self._stop.set()
        if self._recovery is not None:
            self._recovery.join()
        DBOS.destroy(workflow_completion_timeout_sec=int(timeout_s))
        bind(None)
        self.liveness.close()
