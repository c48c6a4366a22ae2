"""The fast decision API's engine: decide one order from an in-memory twin snapshot, log it.

``POST /v1/decide/route`` used to load the twin's reference data (nodes, carriers, services, rate
cards, customers) on every request. :class:`SnapshotCache` keeps one :class:`~tools.twin.TwinView`
in memory and checks it against the database **at most every** ``max_staleness_s`` (default
0.25 s): the check reads every node and carrier row (a dozen rows: status, backlog, capacity,
outages) plus the newest profile activation and the running experiment, and compares them with
what the snapshot was built from; any difference rebuilds it. So a decision never uses node or
carrier state, an active profile or an experiment older than ``max_staleness_s`` before the
request. Writes made in this process do not wait for that bound: the tool gateway (after each
executed write) and the profile and experiment stores publish a :mod:`core.changes` notice, and
the next decision checks the database first (writes by other processes wait for the bound). What
is read fresh on every request, never cached: the order itself and the stock (ATP) at the
candidate nodes for its SKUs. Addresses and products are cached by id once read (the
embedded systems never edit them; new ones are read on a miss). Carrier services and rate cards
are loaded with the snapshot and assumed fixed (no write path changes them).

Each decision gets an id and is logged (``sourcing_decisions``) with a sha256 of its inputs (the
order as read, its ATP, the snapshot's network state, the profile), the profile name and version
and, while an experiment runs, the experiment and the arm (:func:`services.experiments.arm_for`).
:class:`DecisionLog` writes rows in batches (``batch`` rows or ``max_delay_s`` after the first
unwritten one, whichever comes first, and on :meth:`DecisionLog.flush`): the API answers without
waiting for a commit, and a crash loses at most the unwritten batch. ``batch=1`` writes each
decision before answering. With the flusher thread running, a due batch is handed to it rather
than written by the request that filled it: on SQLite, two server processes take turns on the
write lock, and a request that waited for it there held up every request of its event loop (a p99
of 84-187 ms at 1,300-1,600 decisions/s with p50 5 ms). Only when rows pile up past
:data:`BACKLOG_BATCHES` batches (the flusher stuck) does a request write them itself.

Within one snapshot, answers are memoised by inputs hash (the same order, stock, network state,
profile, arm and hour give the same answer, so it is not scored twice); a new snapshot starts empty.
At most :data:`MAX_PARALLEL` decisions run at once in a process.

What this module must never do: change the network, or answer from a snapshot older than its bound.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from pydantic import Field
from sqlalchemy import Table, insert, select

from agents.sourcing import RouteDecision, decide_order
from core import changes
from core.clock import Clock
from core.db import Database
from core.db.tables_sourcing import SourcingDecisionRow
from core.domain import Order
from core.errors import ValidationFailed
from services.experiments import Experiment, ExperimentStore, arm_for
from services.profiles import ActiveProfile, Profile, ProfileStore
from tools.adapters.protocols import Adapters
from tools.twin import TwinView

DEFAULT_MAX_STALENESS_S = 0.25
BACKLOG_BATCHES = 16
"""Rows waiting past this many batches are written by the request that adds one (back-pressure
when the flusher thread cannot keep up), so memory stays bounded."""
MEMO_SIZE = 5_000
MAX_PARALLEL = 4
log = logging.getLogger(__name__)
_decisions_t: Table = SourcingDecisionRow.__table__  # type: ignore[assignment]


class LoggedDecision(RouteDecision):
    """A route decision as the API answers it: what was decided and under what."""

    decision_id: str
    inputs_hash: str = Field(description="sha256 of the order, its stock, the network state and the profile.")
    profile_name: str
    profile_version: int
    experiment_id: str | None = None
    arm: str | None = Field(default=None, description="A or B while an experiment runs.")
    snapshot_age_ms: float = Field(description="How long before this decision the twin snapshot was last checked.")


@dataclass
class Snapshot:
    """The twin's reference data and the decision settings, as of ``checked_at`` (monotonic s)."""

    view: TwinView
    state: tuple[Any, ...]
    digest: str
    active: ActiveProfile
    experiment: Experiment | None
    arms: dict[str, Profile]
    checked_at: float
    memo: dict[str, RouteDecision] = field(default_factory=dict)
    """Decisions by inputs hash, for this snapshot only (bounded by :data:`MEMO_SIZE`)."""

    def remember(self, digest: str, decision: RouteDecision) -> None:
        if len(self.memo) >= MEMO_SIZE:
            self.memo.clear()
        self.memo[digest] = decision

    def profile_for(self, order_id: str) -> tuple[Profile, str | None]:
        """The profile deciding ``order_id`` and its arm (None outside an experiment)."""
        if self.experiment is None:
            return self.active.profile, None
        arm = arm_for(self.experiment.id, order_id, self.experiment.share_b)
        return self.arms[arm], arm


@dataclass
class SnapshotCache:
    """One snapshot, checked against the database at most every ``max_staleness_s``."""

    adapters: Adapters
    clock: Clock
    profiles: ProfileStore
    experiments: ExperimentStore
    max_staleness_s: float = DEFAULT_MAX_STALENESS_S
    monotonic: Callable[[], float] = time.monotonic
    _snap: Snapshot | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    loads: int = 0
    """How many times the snapshot was (re)built: for tests and the bench."""
    _changed: bool = False
    """A write in this process (:mod:`core.changes`) may have changed what the snapshot holds."""

    def __post_init__(self) -> None:
        changes.subscribe(self.changed)  # held weakly: a dropped cache stops hearing

    def changed(self, _topic: str = "") -> None:
        """Check the database before the next decision, whatever the snapshot's age: a write in
        this process (the tool gateway, a profile or experiment change) may have changed it."""
        self._changed = True

    def _fresh(self, snap: Snapshot | None, now: float) -> bool:
        return snap is not None and not self._changed and now - snap.checked_at <= self.max_staleness_s

    def get(self) -> Snapshot:
        """A snapshot checked no more than ``max_staleness_s`` ago and since the last change this
        process published (checking now if it is due)."""
        snap = self._snap
        if self._fresh(snap, self.monotonic()):
            assert snap is not None
            return snap
        with self._lock:
            snap = self._snap
            now = self.monotonic()  # taken before the reads: the state read is at least this fresh
            if self._fresh(snap, now):
                assert snap is not None
                return snap
            self._changed = False  # before the reads: a change published during them is heard next time
            state = self._state()
            if snap is None or state != snap.state:
                snap = self._load(state, now, snap)
            else:
                snap.checked_at = now
            self._snap = snap
            return snap

    def invalidate(self) -> None:
        """Forget the snapshot: the next decision checks (and rebuilds) first."""
        self._snap = None

    def _state(self) -> tuple[Any, ...]:
        running = self.experiments.running()
        return (
            tuple(self.adapters.wms.list_nodes()),
            tuple(self.adapters.carriers.list_carriers()),
            self.profiles.activation_token(),
            None if running is None else (running.id, running.status),
        )

    def _load(self, state: tuple[Any, ...], now: float, old: Snapshot | None) -> Snapshot:
        view = TwinView.load(self.adapters, self.clock)
        # The state just read wins over what TwinView.load read a moment later only in identity:
        # both are the database; keeping state's rows makes the next comparison exact.
        view.nodes = {n.id: n for n in state[0]}
        view.carriers = {c.id: c for c in state[1]}
        if old is not None:  # immutable reference data survives a rebuild
            view.addresses.update(old.view.addresses)
            view.products.update(old.view.products)
        experiment = self.experiments.running()
        arms: dict[str, Profile] = {}
        if experiment is not None:
            arms = {arm: self.profiles.get(*experiment.profile_of(arm)) for arm in ("A", "B")}  # type: ignore[arg-type]
        self.loads += 1
        return Snapshot(
            view=view,
            state=state,
            digest=hashlib.sha256(repr(state).encode()).hexdigest(),
            active=self.profiles.active(),
            experiment=experiment,
            arms=arms,
            checked_at=now,
        )


@dataclass
class DecisionLog:
    """Decisions to ``sourcing_decisions``, written in batches (see the module docstring)."""

    db: Database
    batch: int = 1
    max_delay_s: float = 0.2
    monotonic: Callable[[], float] = time.monotonic
    _rows: list[dict[str, Any]] = field(default_factory=list)
    _first_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _writing: threading.Lock = field(default_factory=threading.Lock)
    _due: threading.Event = field(default_factory=threading.Event)
    _flusher: threading.Thread | None = None

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            if not self._rows:
                self._first_at = self.monotonic()
            self._rows.append(row)
            waiting = len(self._rows)
            due = waiting >= self.batch or self.monotonic() - self._first_at >= self.max_delay_s
        if due and self._flusher is not None and self._flusher.is_alive() and waiting < BACKLOG_BATCHES * self.batch:
            self._due.set()
            return
        if due:
            try:
                self.flush()
            except Exception:  # the decision stands; its row stays queued for the next write
                log.exception("writing the decision log failed; kept for the next try")

    def start_flusher(self) -> None:
        """Write waiting rows every ``max_delay_s`` from a daemon thread, and at interpreter exit, so
        a quiet server does not sit on a batch (a busy one flushes as requests come). The thread
        ends when this log is garbage or after three failed writes in a row (each one logged)."""
        ref = weakref.ref(self)
        atexit.register(_flush_at_exit, ref)
        self._flusher = threading.Thread(target=_flush_loop, args=(ref, self._due), name="decision-log", daemon=True)
        self._flusher.start()

    def flush(self) -> int:
        """Write whatever is waiting; how many rows. One write at a time: a flush at exit waits for
        a write in progress (the flusher's daemon thread dies at exit, a write it holds would be lost)."""
        with self._writing:
            with self._lock:
                rows = self._take()
            self._write(rows)
        return len(rows)

    @property
    def pending(self) -> int:
        return len(self._rows)

    def _take(self) -> list[dict[str, Any]]:
        rows, self._rows = self._rows, []
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self.db.engine.begin() as conn:
                conn.execute(insert(_decisions_t), rows)
        except Exception:
            with self._lock:  # put them back (first), so a failed write loses nothing
                self._rows[:0] = rows
            raise


_seq = itertools.count()


def new_decision_id() -> str:
    """``dec_`` + wall-clock nanoseconds + process id + a per-process counter: unique (no two
    decisions of one host share all three) and sorting by id is the order decisions were made
    (within a process exactly; across processes by time)."""
    return f"dec_{time.time_ns():016x}{os.getpid() % 0x1000000:06x}{next(_seq) % 0x1000000:06x}"


def _flush_at_exit(ref: weakref.ref[DecisionLog]) -> None:
    log_ = ref()
    if log_ is not None:
        log_.flush()  # also waits for a write the flusher thread may be in the middle of


def _flush_loop(ref: weakref.ref[DecisionLog], due: threading.Event) -> None:
    failures = 0
    while failures < 3:
        log_ = ref()
        if log_ is None:
            return
        delay = log_.max_delay_s
        try:
            if log_.pending:
                log_.flush()
            failures = 0
        except Exception:  # logged; the rows stay queued for the next try
            failures += 1
            log.exception("writing the decision log failed (%d in a row)", failures)
        del log_
        due.wait(delay)  # woken early when a request fills a batch
        due.clear()


def inputs_hash(order: Order, atp: dict[str, dict[str, int]], snap: Snapshot, profile: Profile, arm: str | None) -> str:
    """sha256 of everything the decision read: same hash, same inputs, same answer. The ETA depends
    on the hour (carrier cutoffs are whole hours), so the hour is an input too."""
    doc = (
        (order.id, order.version, order.status, order.node_id, order.carrier_service_id),
        (order.ship_to_id, order.service_level, order.promised_date.isoformat(), order.weight_kg),
        tuple((ln.sku, ln.quantity) for ln in order.lines),
        tuple((sku, tuple(sorted(by_node.items()))) for sku, by_node in sorted(atp.items())),
        snap.digest,
        (profile.name, profile.version),
        arm,
        snap.view.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H"),
    )
    return hashlib.sha256(repr(doc).encode()).hexdigest()


@dataclass
class DecisionService:
    """Decide an order now, from the snapshot, and log the decision."""

    adapters: Adapters
    clock: Clock
    cache: SnapshotCache
    log: DecisionLog
    local_reads: bool = False
    """The reads wait on no network (SQLite): an async caller may decide inline rather than in a
    thread (see :mod:`api.routes.decide`)."""
    gate: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(MAX_PARALLEL))
    """At most :data:`MAX_PARALLEL` decisions at once: more threads only fight over the GIL and
    open connections beyond the pool's (each new SQLite connection runs its pragmas)."""

    @classmethod
    def build(
        cls,
        db: Database,
        adapters: Adapters,
        twin_clock: Clock,
        *,
        record_clock: Clock | None = None,
        max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
        batch: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> DecisionService:
        """The service on ``db``: ``twin_clock`` dates promises, ``record_clock`` stamps the log."""
        rec = record_clock or twin_clock
        cache = SnapshotCache(
            adapters,
            twin_clock,
            ProfileStore(db, rec),
            ExperimentStore(db, rec),
            max_staleness_s=max_staleness_s,
            monotonic=monotonic,
        )
        return cls(adapters, rec, cache, DecisionLog(db, batch=batch, monotonic=monotonic), local_reads=db.is_sqlite)

    def decide(self, order_id: str) -> LoggedDecision:
        if not order_id:
            raise ValidationFailed("order_id must not be empty")
        with self.gate:
            return self._decide(order_id)

    def _decide(self, order_id: str) -> LoggedDecision:
        snap = self.cache.get()
        started = self.cache.monotonic()
        order = self.adapters.oms.get_order(order_id)
        profile, arm = snap.profile_for(order.id)
        snap.view.prepare([order])
        c = profile.constraints
        node_ids = list(c.nodes) if c.nodes is not None else sorted(snap.view.nodes)
        skus = sorted({ln.sku for ln in order.lines})
        # Every node in one query (naming nodes costs the WMS a second one); the scorer only looks
        # at the candidates.
        atp = self.adapters.wms.atp(skus, c.nodes) if skus else {}
        digest = inputs_hash(order, atp, snap, profile, arm)
        d = snap.memo.get(digest)
        if d is None:  # same inputs hash, same answer: only new inputs are scored
            d = decide_order(
                order,
                snap.view,
                atp,
                profile.weights,
                candidates=node_ids,
                exclude_carriers=c.exclude_carriers,
                allow_split=c.allow_split,
            )
            snap.remember(digest, d)
        out = LoggedDecision.model_construct(
            **dict(d),
            decision_id=new_decision_id(),
            inputs_hash=digest,
            profile_name=profile.name,
            profile_version=profile.version,
            experiment_id=snap.experiment.id if arm is not None and snap.experiment else None,
            arm=arm,
            snapshot_age_ms=round(max(0.0, started - snap.checked_at) * 1000, 3),
        )
        self.log.add(self._row(out))
        return out

    def _row(self, d: LoggedDecision) -> dict[str, Any]:
        return {
            "id": d.decision_id,
            "at": self.clock.now().astimezone(UTC).replace(tzinfo=None),
            "order_id": d.order_id,
            "inputs_hash": d.inputs_hash,
            "profile_name": d.profile_name,
            "profile_version": d.profile_version,
            "experiment_id": d.experiment_id,
            "arm": d.arm,
            "node_id": d.node_id if d.node_id is not None else ("+".join(d.split_legs) or None),
            "carrier_service_id": d.carrier_service_id,
            "split": d.is_split,
            "score": d.score,
            "cost": float(d.cost) if d.cost is not None else None,
            "eta": d.eta,
            "co2e_kg": d.co2e_kg,
            "meets_promise": d.meets_promise,
            "snapshot_age_ms": d.snapshot_age_ms,
        }


def decisions_since(db: Database, *, order_id: str | None = None) -> list[dict[str, Any]]:
    """Logged decisions (newest last), optionally for one order: for tests and the CLI."""
    q = select(_decisions_t).order_by(_decisions_t.c.id)
    if order_id is not None:
        q = q.where(_decisions_t.c.order_id == order_id)
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
