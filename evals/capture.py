"""Captured production runs as eval scenarios: a real incident becomes a regression case.

``orderops eval capture RUN_ID`` reads a finished run from the configured installation and writes
one YAML file (:class:`CapturedScenario`) that ``orderops eval run --suite captured`` replays:

- the trigger: the alert or the goal that started the run;
- the network: the generated network it runs on (the spec ``orderops init`` recorded in the
  database's meta) and what differs from it now (nodes, carriers, orders, stock), plus this run's
  own executed writes as their compensating calls, undone on the replay copy before the run starts.
  That is the network as of the run's start, except for what others changed after it (the file
  says so in ``snapshot.as_of`` / ``snapshot.note``; a write without a compensating call makes it
  ``now``);
- the expectation: the run's end status, the writes it executed (tool and orders) and what people
  decided on each approval (approve, a subset, reject); replayed, approvals are decided the same
  way, and the case passes when the same writes execute, none without its approval.

Personal data is redacted the way the audit trail redacts it (the product's :class:`Redactor`,
given by the caller): goal and alert text, decision reasons. The rest is identifiers and states.

What this module must never do: write to the installation it captures from (it only reads; the
baseline network is generated into a temporary file), or replay on anything but a case's own copy.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from core.db import Database, make_database
from core.db.tables import (
    ApprovalRequestRow,
    CarrierRow,
    InventoryRow,
    MetaRow,
    NodeRow,
    OrderRow,
)
from core.errors import Conflict, ValidationFailed
from core.netgen import NetworkSpec
from evals.datasets import exceptions as exds
from evals.env import CaseEnv, fresh_database, prepare_template
from evals.metrics import CaseResult
from graphs.runs import FINAL_STATUSES, RunStore, RunSummary
from guardrails.approvals import ApprovalStore, DecisionKind
from guardrails.audit import AuditTrail
from guardrails.redaction import Redactor
from tools.executed import executed_calls

CAPTURED_DIR = Path(__file__).resolve().parent / "datasets" / "captured"
"""Where ``eval capture`` writes and ``--suite captured`` reads by default."""

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


class NodeState(BaseModel):
    status: str
    daily_capacity: int
    backlog: int


class CarrierState(BaseModel):
    status: str
    outage_states: list[str] = Field(default_factory=list)


class OrderState(BaseModel):
    status: str
    held_from: str | None = None
    node_id: str | None = None
    carrier_service_id: str | None = None


class Undo(BaseModel):
    """A compensating call of the captured run, executed on the replay copy before the run starts."""

    tool: str
    args: dict[str, Any]


class Snapshot(BaseModel):
    """The network as the run found it, as a difference from the generated network of ``spec``."""

    as_of: Literal["run_start", "now"]
    note: str
    spec: dict[str, Any]
    twin_time: datetime
    """The twin's "today" when the run started (its clock decides ETAs and lateness)."""
    nodes: dict[str, NodeState]
    carriers: dict[str, CarrierState]
    orders: dict[str, OrderState] = Field(default_factory=dict)
    """Orders whose state differs from the generated network (at capture time)."""
    stock: dict[str, list[int]] = Field(default_factory=dict)
    """``node|sku`` -> [on hand, reserved] where it differs from the generated network."""
    undo: list[Undo] = Field(default_factory=list)


class CapturedDecision(BaseModel):
    tool: str
    items: list[str] = Field(default_factory=list)
    """What the request covered (order ids): the replay's request for the same items gets this decision."""
    decision: Literal["approve", "reject"]
    subset: list[str] | None = None
    reason: str | None = None
    approver: str | None = None


class CapturedWrite(BaseModel):
    tool: str
    orders: list[str]


class Expected(BaseModel):
    """What the run did and what people decided: the case passes when the replay does the same."""

    status: str
    writes: list[CapturedWrite]
    decisions: list[CapturedDecision]
    unapproved_writes: int = 0


class CapturedScenario(BaseModel):
    id: str
    run_id: str
    captured_at: datetime
    description: str
    planner: str | None = None
    """The planner the original run used (the replay uses the eval's planner)."""
    goal: str | None = None
    alert: dict[str, Any] | None = None
    snapshot: Snapshot
    expected: Expected

    @property
    def spec(self) -> NetworkSpec:
        s = dict(self.snapshot.spec)
        s["business_date"] = date.fromisoformat(str(s["business_date"]))
        return NetworkSpec(**s)


# --- capture ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The installation a run is captured from (read only)."""

    db: Database
    audit: AuditTrail
    redactor: Redactor
    twin_clock_mode: Literal["network", "system"]
    writes: Mapping[str, Any]
    """The gateway's write tools by name (their compensating calls undo the run on the replay)."""


def capture(src: Source, run_id: str, *, now: datetime | None = None) -> CapturedScenario:
    """The scenario of finished run ``run_id``; NotFound for an unknown run, Conflict for one still
    in progress, ValidationFailed for a network ``orderops init`` did not generate."""
    run = RunStore(src.db).get(run_id=run_id)
    if run.status not in FINAL_STATUSES:
        raise Conflict(f"run {run_id} is {run.status}; capture it once it has finished", run_id=run_id)
    spec = _network_spec(src.db)
    snapshot = _snapshot(src, run, spec)
    expected = _expected(src, run)
    safe = _SAFE_ID.sub("-", run_id)
    return CapturedScenario(
        id=f"captured-{safe}",
        run_id=run_id,
        captured_at=now or datetime.now(UTC),
        description=f"run {run_id} ({run.kind}, {run.status}) captured from production",
        planner=run.planner,
        goal=src.redactor.redact_text(run.goal) if run.goal else None,
        alert=_redacted_alert(src.redactor, run.alert),
        snapshot=snapshot,
        expected=expected,
    )


def _redacted_alert(redactor: Redactor, alert: dict[str, Any] | None) -> dict[str, Any] | None:
    if alert is None:
        return None
    out = dict(alert)
    for key in ("summary", "text"):
        if isinstance(out.get(key), str):
            out[key] = redactor.redact_text(out[key])
    if isinstance(out.get("labels"), dict):
        out["labels"] = {k: redactor.redact_text(str(v)) for k, v in out["labels"].items()}
    return out


def _network_spec(db: Database) -> NetworkSpec:
    with db.sessions() as s:
        row = s.get(MetaRow, "spec")
        raw = row.value if row is not None else None
    if raw is None:
        raise ValidationFailed(
            "this network was not generated by `orderops init` (no spec in its meta): a captured run "
            "is replayed on the generated network plus what differs from it"
        )
    d = json.loads(raw)
    d["business_date"] = date.fromisoformat(d["business_date"])
    return NetworkSpec(**d)


def _state(db: Database) -> dict[str, dict[str, Any]]:
    """Nodes, carriers, orders and stock of ``db``, keyed by id."""
    with db.sessions() as s:
        nodes = {
            r.id: NodeState(status=r.status, daily_capacity=r.daily_capacity, backlog=r.backlog)
            for r in s.scalars(select(NodeRow))
        }
        carriers = {
            r.id: CarrierState(status=r.status, outage_states=list(r.outage_states or []))
            for r in s.scalars(select(CarrierRow))
        }
        cols = (OrderRow.id, OrderRow.status, OrderRow.held_from, OrderRow.node_id, OrderRow.carrier_service_id)
        orders = {
            r[0]: OrderState(status=r[1], held_from=r[2], node_id=r[3], carrier_service_id=r[4])
            for r in s.execute(select(*cols))
        }
        inv = select(InventoryRow.node_id, InventoryRow.sku, InventoryRow.on_hand, InventoryRow.reserved)
        stock = {f"{r[0]}|{r[1]}": [int(r[2]), int(r[3])] for r in s.execute(inv)}
    return {"nodes": nodes, "carriers": carriers, "orders": orders, "stock": stock}


def _snapshot(src: Source, run: RunSummary, spec: NetworkSpec) -> Snapshot:
    now = _state(src.db)
    with tempfile.TemporaryDirectory(prefix="orderops-capture-") as tmp:
        base_db = make_database(url=f"sqlite:///{prepare_template(Path(tmp), spec)}")
        try:
            base = _state(base_db)
        finally:
            base_db.dispose()
    orders = {k: v for k, v in now["orders"].items() if k in base["orders"] and base["orders"][k] != v}
    extra = len(set(now["orders"]) - set(base["orders"]))
    undo, missing = _undo_calls(src, run.id)
    as_of: Literal["run_start", "now"] = "now" if missing else "run_start"
    note = (
        f"network as captured; this run's {len(undo)} compensating call(s) undo its writes on the replay copy, so it "
        "is the network as of the run's start except for what others changed after it started"
        if not missing
        else f"network NOW, not as of the run's start: {', '.join(missing)} cannot be undone (no compensating call)"
    )
    if extra:
        note += f"; {extra} order(s) created after `orderops init` are not in the snapshot"
    twin_time = (
        datetime.combine(spec.business_date, datetime.min.time().replace(hour=9), tzinfo=UTC)
        if src.twin_clock_mode == "network"
        else run.created_at
    )
    return Snapshot(
        as_of=as_of,
        note=note,
        spec=json.loads(spec.to_json()),
        twin_time=twin_time,
        nodes=now["nodes"],
        carriers=now["carriers"],
        orders=orders,
        undo=undo,
        stock={k: v for k, v in now["stock"].items() if base["stock"].get(k) != v},
    )


def _undo_calls(src: Source, run_id: str) -> tuple[list[Undo], list[str]]:
    """This run's executed writes as compensating calls, newest first; and the writes that have none."""
    from tools.base import WriteResult

    undo: list[Undo] = []
    missing: list[str] = []
    for call in reversed(executed_calls(src.audit, run_id)):
        tool = src.writes.get(call.tool)
        comps = []
        if tool is not None:
            args = tool.args_model.model_validate(dict(call.arguments))
            comps = tool.compensations(args, WriteResult.model_validate(dict(call.result)))
        if not comps:
            missing.append(call.tool)
        undo += [Undo(tool=c.tool, args=dict(c.args)) for c in comps]
    return undo, missing


def _writes(audit: AuditTrail, run_id: str) -> list[CapturedWrite]:
    """What ``run_id`` executed, as the capture records it and the replay is compared on."""
    return [
        CapturedWrite(tool=c.tool, orders=sorted(str(x) for x in c.result.get("done", [])))
        for c in executed_calls(audit, run_id)
    ]


def _expected(src: Source, run: RunSummary) -> Expected:
    writes = _writes(src.audit, run.id)
    with src.db.sessions() as s:
        ids = list(
            s.scalars(
                select(ApprovalRequestRow.id)
                .where(ApprovalRequestRow.run_id == run.id)
                .order_by(ApprovalRequestRow.created_at, ApprovalRequestRow.id)
            )
        )
    store = ApprovalStore(src.db)
    decisions: list[CapturedDecision] = []
    for request_id in ids:
        req = store.get(request_id)
        final = next((d for d in reversed(req.decisions) if d.decision != DecisionKind.EDIT), None)
        if final is None:
            continue
        decisions.append(
            CapturedDecision(
                tool=req.tool,
                items=sorted(req.items),
                decision="approve" if final.decision == DecisionKind.APPROVE else "reject",
                subset=list(req.approved_items)
                if req.approved_items is not None and set(req.approved_items) != set(req.items)
                else None,
                reason=src.redactor.redact_text(final.reason) if final.reason else None,
                approver=final.approver_id,
            )
        )
    unapproved = exds.audit_findings(src.audit.list(run_id=run.id), set())["unapproved"]
    return Expected(status=run.status, writes=writes, decisions=decisions, unapproved_writes=len(unapproved))


# --- files ------------------------------------------------------------------------------------------


def write_scenario(sc: CapturedScenario, out_dir: Path | None = None) -> Path:
    """``<out_dir>/<id>.yaml`` (default :data:`CAPTURED_DIR`)."""
    folder = out_dir or CAPTURED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sc.id}.yaml"
    head = f"# Captured by `orderops eval capture {sc.run_id}`; snapshot as of: {sc.snapshot.as_of}.\n"
    path.write_text(head + yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


def load_scenarios(folder: Path | None = None) -> dict[str, CapturedScenario]:
    """Every ``*.yaml`` under ``folder`` (default :data:`CAPTURED_DIR`), by id; a bad file raises
    ValidationFailed naming it."""
    out: dict[str, CapturedScenario] = {}
    root = folder or CAPTURED_DIR
    for path in sorted(root.glob("*.yaml")) if root.is_dir() else []:
        try:
            sc = CapturedScenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValueError) as exc:
            raise ValidationFailed(f"captured scenario {path.name} is not valid: {str(exc)[:300]}") from exc
        out[sc.id] = sc
    return out


# --- replay -----------------------------------------------------------------------------------------


def build_env(db: Database, sc: CapturedScenario, policy_path: Path | None) -> CaseEnv:
    """The case's dependencies, on the twin clock of the captured run."""
    return CaseEnv.build(db, sc.spec, policy_path, now=sc.snapshot.twin_time)


def apply_snapshot(env: CaseEnv, snap: Snapshot) -> None:
    """Set the case copy to the captured state, then undo the captured run's writes on it."""
    with env.db.begin() as s:
        for node_id, n in snap.nodes.items():
            s.execute(update(NodeRow).where(NodeRow.id == node_id).values(**n.model_dump()))
        for carrier_id, c in snap.carriers.items():
            s.execute(update(CarrierRow).where(CarrierRow.id == carrier_id).values(**c.model_dump()))
        for order_id, o in snap.orders.items():
            s.execute(update(OrderRow).where(OrderRow.id == order_id).values(**o.model_dump()))
        for key, (on_hand, reserved) in snap.stock.items():
            node_id, _, sku = key.partition("|")
            s.execute(
                update(InventoryRow)
                .where(InventoryRow.node_id == node_id, InventoryRow.sku == sku)
                .values(on_hand=on_hand, reserved=reserved)
            )
    writes = env.gateway.writes
    for u in snap.undo:
        tool = writes[u.tool]
        tool.execute(env.gateway.env, tool.args_model.model_validate(u.args))


def _decide(cards: list[dict[str, Any]], env: CaseEnv, todo: list[CapturedDecision]) -> list[dict[str, Any]]:
    """Decide each pending card as a person decided the captured run's request for the same tool and
    items (else the next one for that tool); a card the captured run never had is rejected (the
    replay asked for more than production did)."""
    out = []
    for card in cards:
        req = env.guard.approvals.get(str(card["approval_id"]))
        same = [d for d in todo if d.tool == req.tool]
        match = next((d for d in same if set(d.items) == set(req.items)), same[0] if same else None)
        if match is None:
            out.append({"approval_id": card["approval_id"], "decision": "reject", "reason": "not in the capture"})
            continue
        todo.remove(match)
        d: dict[str, Any] = {
            "approval_id": card["approval_id"],
            "decision": match.decision,
            "reason": match.reason or "as decided in production",
        }
        if match.subset is not None:
            d["subset"] = match.subset
        out.append(d)
    return out


def replay(sc: CapturedScenario, env: CaseEnv, planner: Any, *, run_id: str) -> tuple[str, list[CapturedWrite], int]:
    """Run the captured trigger on ``env`` deciding approvals as people did; (status, writes, unapproved)."""
    from agents.plan import Alert
    from graphs.checkpoints import open_checkpointer
    from graphs.exception import ExceptionRuns, RunDeps

    approver = {"id": "eval-approver", "roles": ["approver"]}
    alert = Alert.model_validate(sc.alert) if sc.alert is not None else None
    todo = list(sc.expected.decisions)
    with open_checkpointer(env.db) as cp:
        deps = RunDeps(
            gateway=env.gateway, planner=planner, runs=RunStore(env.db, env.clock), requested_by="eval-operator"
        )
        runs = ExceptionRuns(deps, cp)
        result = runs.start(alert=alert, goal=sc.goal if alert is None else None, run_id=run_id)
        for _ in range(10):
            if not result.waiting:
                break
            result = runs.resume(run_id, decisions=_decide(result.approvals, env, todo), approver=approver)
    audit = env.guard.audit.list(run_id=run_id)
    writes = _writes(env.guard.audit, run_id)
    return str(result.status), writes, len(exds.audit_findings(audit, set())["unapproved"])


def compare(sc: CapturedScenario, status: str, writes: list[CapturedWrite], unapproved: int) -> list[str]:
    """Every difference from what the captured run did, as 'expected ..., found ...' lines."""
    fails: list[str] = []
    exp = sc.expected
    if status != exp.status:
        fails.append(f"expected run status {exp.status}, found {status}")
    if unapproved:
        fails.append(f"expected no unapproved write, found {unapproved}")
    want = [(w.tool, w.orders) for w in exp.writes]
    got = [(w.tool, w.orders) for w in writes]
    if want != got:
        fails.append(
            f"expected writes {[(t, len(o)) for t, o in want]}, found {[(t, len(o)) for t, o in got]}"
            + _first_difference(want, got)
        )
    return fails


def _first_difference(want: list[tuple[str, list[str]]], got: list[tuple[str, list[str]]]) -> str:
    for (wt, wo), (gt, go) in zip(want, got, strict=False):
        if wt != gt or wo != go:
            only_w, only_g = sorted(set(wo) - set(go))[:3], sorted(set(go) - set(wo))[:3]
            return f" (first: {wt} vs {gt}; only expected {only_w}, only found {only_g})"
    return ""


def captured_case(
    sc: CapturedScenario, planner_for: Callable[[CaseEnv], Any], policy_path: Path | None, workdir: Path, trial: int
) -> CaseResult:
    """One trial of a captured scenario on its own copy of its generated network."""
    db = fresh_database(workdir, sc.spec, f"{sc.id}-t{trial}")
    try:
        env = build_env(db, sc, policy_path)
        apply_snapshot(env, sc.snapshot)
        status, writes, unapproved = replay(sc, env, planner_for(env), run_id=f"eval-{sc.id}-{trial}")
    finally:
        db.dispose()
    failures = compare(sc, status, writes, unapproved)
    metrics = {
        "status": status,
        "unapproved_writes": unapproved,
        "orders_changed": len({o for w in writes for o in w.orders}),
        "writes": len(writes),
        "snapshot_as_of": sc.snapshot.as_of,
        "approvals_requested": len(sc.expected.decisions),
    }
    return CaseResult(
        suite="captured",
        case_id=sc.id,
        category="captured",
        trial=trial,
        passed=not failures,
        metrics=metrics,
        failures=failures,
    )


def specs(scenarios: Mapping[str, CapturedScenario]) -> Iterator[NetworkSpec]:
    for sc in scenarios.values():
        yield sc.spec
