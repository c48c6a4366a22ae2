"""Live A/B experiments between two sourcing profiles, and their report.

While an experiment runs, the decision API (:mod:`services.decisions`) decides each order with
profile A or B by :func:`arm_for`: a hash of the experiment id and the order id, so the same order
always gets the same arm (in every process, on every retry) and nobody chooses which orders go
where. Every decision is logged with its arm.

Outcomes are read from the network **after execution**, not from the decision's own prediction:
an order counts once it has shipped (it, or the orders split off it, ``<order>-S<n>``, have
shipments). From the shipments the embedded carrier recorded, the twin prices what really happened:
cost to serve (the node's pick/pack plus the rate of the service actually used, from
:meth:`tools.twin.TwinView.fulfil`), on time (every shipment's ETA on or before the promise), split
(more than one shipment) and CO2e (:func:`agents.sourcing.co2e_kg` on the node-to-customer distance,
the service's mode and the shipped weight). Orders decided but not shipped yet are counted as
pending. Each arm's means and the difference B - A come with bootstrap intervals; the stopping rule
is a fixed horizon (:func:`core.stats.fixed_horizon_n`, documented there).

What this module must never do: change an order, or let anything but the hash choose an arm.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from agents.sourcing import co2e_kg
from core import changes, geo
from core.clock import Clock, SystemClock
from core.db import Database
from core.db.tables import OrderRow
from core.db.tables_sourcing import SourcingDecisionRow, SourcingExperimentRow
from core.domain import Order, Shipment
from core.errors import Conflict, NotFound, ValidationFailed
from core.stats import Estimate, bootstrap_diff, bootstrap_mean, fixed_horizon_n
from services.profiles import Profile
from tools.adapters.protocols import Adapters
from tools.twin import TwinView

Arm = Literal["A", "B"]
METRICS = ("cost_to_serve", "on_time", "split", "co2e_kg")


class Experiment(BaseModel):
    """A live experiment: arm A and arm B are profile versions; ``share_b`` of orders get B."""

    id: str
    name: str
    a_name: str
    a_version: int
    b_name: str
    b_version: int
    share_b: float
    mde_usd: float
    status: str
    started_at: datetime
    stopped_at: datetime | None = None
    started_by: str = ""

    def profile_of(self, arm: Arm) -> tuple[str, int]:
        return (self.a_name, self.a_version) if arm == "A" else (self.b_name, self.b_version)


def arm_for(experiment_id: str, order_id: str, share_b: float) -> Arm:
    """The arm of ``order_id``: B when sha256("<experiment>:<order>") read as a fraction of 2**64
    falls below ``share_b``. Deterministic, independent of arrival order, uniform over ids."""
    digest = hashlib.sha256(f"{experiment_id}:{order_id}".encode()).digest()
    return "B" if int.from_bytes(digest[:8], "big") / 2**64 < share_b else "A"


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def _from_row(row: SourcingExperimentRow) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        a_name=row.a_name,
        a_version=row.a_version,
        b_name=row.b_name,
        b_version=row.b_version,
        share_b=row.share_b,
        mde_usd=row.mde_usd,
        status=row.status,
        started_at=row.started_at.replace(tzinfo=UTC),
        stopped_at=row.stopped_at.replace(tzinfo=UTC) if row.stopped_at else None,
        started_by=row.started_by,
    )


@dataclass(frozen=True)
class ExperimentStore:
    """Experiments in ``db`` (``sourcing_experiments``); at most one runs at a time."""

    db: Database
    clock: Clock = field(default_factory=SystemClock)

    def start(
        self, name: str, a: Profile, b: Profile, *, share_b: float = 0.5, mde_usd: float = 1.0, by: str
    ) -> Experiment:
        """Start splitting decisions between ``a`` and ``b``; refused while another one runs."""
        if not 0.0 < share_b < 1.0:
            raise ValidationFailed("share_b must be strictly between 0 and 1")
        if mde_usd <= 0:
            raise ValidationFailed("mde_usd (the difference worth detecting) must be positive")
        running = self.running()
        if running is not None:
            raise Conflict(f"experiment {running.id} ({running.name}) is running: stop it first")
        row = SourcingExperimentRow(
            id="exp_" + uuid.uuid4().hex[:16],
            name=name,
            a_name=a.name,
            a_version=a.version,
            b_name=b.name,
            b_version=b.version,
            share_b=share_b,
            mde_usd=mde_usd,
            status="running",
            started_at=_naive(self.clock.now()),
            started_by=by,
        )
        with self.db.begin() as s:
            s.add(row)
        changes.publish(changes.SOURCING)
        return _from_row(row)

    def stop(self, experiment_id: str | None = None) -> Experiment:
        """Stop ``experiment_id`` (default: the running one); decisions go back to the active profile."""
        target = self.get(experiment_id) if experiment_id else self.running()
        if target is None:
            raise NotFound("running experiment", "-")
        with self.db.begin() as s:
            s.execute(
                update(SourcingExperimentRow)
                .where(SourcingExperimentRow.id == target.id, SourcingExperimentRow.status == "running")
                .values(status="stopped", stopped_at=_naive(self.clock.now()))
            )
        changes.publish(changes.SOURCING)
        return self.get(target.id)

    def get(self, experiment_id: str) -> Experiment:
        with self.db.sessions() as s:
            row = s.get(SourcingExperimentRow, experiment_id)
        if row is None:
            raise NotFound("experiment", experiment_id)
        return _from_row(row)

    def running(self) -> Experiment | None:
        with self.db.sessions() as s:
            q = select(SourcingExperimentRow).where(SourcingExperimentRow.status == "running")
            row = s.scalars(q.order_by(SourcingExperimentRow.started_at.desc()).limit(1)).first()
        return _from_row(row) if row is not None else None

    def latest(self) -> Experiment | None:
        with self.db.sessions() as s:
            q = select(SourcingExperimentRow).order_by(SourcingExperimentRow.started_at.desc()).limit(1)
            row = s.scalars(q).first()
        return _from_row(row) if row is not None else None


# --- outcomes and the report ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one decided order turned out to cost and do, from its shipments."""

    cost: float
    on_time: bool
    split: bool
    co2e_kg: float

    def row(self) -> tuple[float, float, float, float]:
        return (self.cost, float(self.on_time), float(self.split), self.co2e_kg)


class ArmResult(BaseModel):
    arm: str
    profile: str
    decided: int
    measured: int = Field(description="Decided orders that have shipped (their outcome is known).")
    means: dict[str, Estimate]


class LiveABReport(BaseModel):
    """Per-arm outcomes, the difference B - A per metric and the fixed-horizon verdict."""

    experiment: Experiment
    arms: list[ArmResult]
    difference: dict[str, Estimate] = Field(description="mean(B) - mean(A) with a bootstrap interval")
    confidence: float
    sigma_cost: float = Field(description="SD of cost to serve in arm A, used for the horizon")
    horizon_per_arm: int
    reached: bool = Field(description="Both arms measured at least the horizon: the result may be read.")
    verdict: str


def _shipments_by_parent(db: Database, adapters: Adapters, order_ids: list[str]) -> dict[str, list[Shipment]]:
    """Each decided order's shipments, its split-off children's (``<order>-S<n>``) included."""
    wanted = set(order_ids)
    with db.sessions() as s:
        children = [
            i for i in s.scalars(select(OrderRow.id).where(OrderRow.id.like("%-S%"))) if i.rsplit("-S", 1)[0] in wanted
        ]
    out: dict[str, list[Shipment]] = defaultdict(list)
    ids = [*order_ids, *children]
    for start in range(0, len(ids), 1000):
        for sh in adapters.carriers.shipments(ids[start : start + 1000]):
            parent = sh.order_id if sh.order_id in wanted else sh.order_id.rsplit("-S", 1)[0]
            out[parent].append(sh)
    return out


def _outcome(view: TwinView, promised: Order, shipped: list[Shipment], orders: dict[str, Order]) -> Outcome:
    cost = 0.0
    co2 = 0.0
    for sh in shipped:
        order = orders[sh.order_id]
        f = view.fulfil(order, sh.node_id, service_id=sh.carrier_service_id)
        cost += float(f.cost)
        node, address = view.nodes[sh.node_id], view.addresses[order.ship_to_id]
        miles = geo.distance_miles(node.lat, node.lon, address.lat, address.lon)
        co2 += co2e_kg(air=view.services[sh.carrier_service_id].air, miles=miles, weight_kg=order.weight_kg)
    on_time = all(sh.eta <= promised.promised_date for sh in shipped)
    return Outcome(cost=cost, on_time=on_time, split=len(shipped) > 1, co2e_kg=co2)


def _decided(db: Database, experiment_id: str) -> dict[str, Arm]:
    """Each decided order's arm (the first decision; the hash makes every later one the same)."""
    with db.sessions() as s:
        q = (
            select(SourcingDecisionRow.order_id, SourcingDecisionRow.arm)
            .where(SourcingDecisionRow.experiment_id == experiment_id)
            .order_by(SourcingDecisionRow.id)
        )
        out: dict[str, Arm] = {}
        for order_id, arm in s.execute(q):
            out.setdefault(order_id, "B" if arm == "B" else "A")
    return out


def measure(db: Database, adapters: Adapters, clock: Clock, experiment_id: str) -> dict[Arm, list[Outcome | None]]:
    """Per arm, each decided order's outcome (None while it has not shipped)."""
    arms = _decided(db, experiment_id)
    shipped = _shipments_by_parent(db, adapters, list(arms))
    ids = sorted({sh.order_id for lst in shipped.values() for sh in lst} | set(arms))
    orders = {o.id: o for start in range(0, len(ids), 1000) for o in adapters.oms.get_orders(ids[start : start + 1000])}
    view = TwinView.load(adapters, clock)
    view.prepare(orders.values())
    out: dict[Arm, list[Outcome | None]] = {"A": [], "B": []}
    for order_id, arm in arms.items():
        lst = shipped.get(order_id)
        out[arm].append(_outcome(view, orders[order_id], lst, orders) if lst else None)
    return out


def live_report(
    db: Database,
    adapters: Adapters,
    clock: Clock,
    experiment: Experiment,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> LiveABReport:
    """Join the experiment's decisions to their outcomes and compare the arms."""
    outcomes = measure(db, adapters, clock, experiment.id)
    cols = {
        arm: np.array([o.row() for o in lst if o is not None], dtype=np.float64).reshape(-1, 4)
        for arm, lst in outcomes.items()
    }
    arms = []
    for arm in ("A", "B"):
        name, version = experiment.profile_of(arm)  # type: ignore[arg-type]
        means = {
            m: bootstrap_mean(cols[arm][:, i], resamples=resamples, confidence=confidence, seed=seed)
            for i, m in enumerate(METRICS)
        }
        arms.append(
            ArmResult(
                arm=arm, profile=f"{name}@v{version}", decided=len(outcomes[arm]), measured=len(cols[arm]), means=means
            )
        )  # type: ignore[index]
    diff = {
        m: bootstrap_diff(cols["A"][:, i], cols["B"][:, i], resamples=resamples, confidence=confidence, seed=seed)
        for i, m in enumerate(METRICS)
    }
    sigma = float(np.std(cols["A"][:, 0], ddof=1)) if len(cols["A"]) > 1 else math.nan
    horizon = fixed_horizon_n(sigma, experiment.mde_usd)
    reached = min(len(cols["A"]), len(cols["B"])) >= horizon
    return LiveABReport(
        experiment=experiment,
        arms=arms,
        difference=diff,
        confidence=confidence,
        sigma_cost=sigma,
        horizon_per_arm=horizon,
        reached=reached,
        verdict=_verdict(diff["cost_to_serve"], reached, horizon),
    )


def _verdict(cost: Estimate, reached: bool, horizon: int) -> str:
    if not reached:
        return f"keep running: the fixed horizon is {horizon} shipped orders per arm; intervals so far are provisional"
    if cost.excludes_zero:
        better = "B" if cost.mean < 0 else "A"
        return f"horizon reached: cost to serve differs (B - A = {cost.mean:+.2f} USD/order); {better} is cheaper"
    return "horizon reached: no difference in cost to serve at this confidence"
