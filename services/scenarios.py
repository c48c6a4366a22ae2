"""Scenarios on the digital twin: a YAML file of incidents, staged on the live twin or played as a
what-if on a copy of it.

A scenario file::

    name: Dallas closes, RDG down in Texas
    description: optional free text
    events:
      - node_status: {node: DC-DALLAS, status: closed}
      - node_capacity: {node: DC-ATLANTA, factor: 0.5}
      - carrier_outage: {carrier: RDG, states: [TX, OK]}
      - demand_surge: {skus: [SKU-1, SKU-2], factor: 2.0, days: 3}
      - inbound_delay: {node: DC-RENO, sku: SKU-3, days: 5}
      - node_backlog: {node: DC-ATLANTA, days: 3}

Each event is a mapping with exactly one key, which names its type (the typed models below,
discriminated by that key). Parsing never raises: a bad file comes back as findings naming the
line and field, and nothing is staged (:func:`parse_scenario`, then :func:`check_scenario` against
the twin before the first write).

How each event lands on the twin (the twin has no demand series or inbound ledger, so two of them
are modelled on what it does have; both are written into the audit reason):

- ``node_status``: ``set_node_status``.
- ``node_capacity``: ``set_node_capacity`` to ``round(capacity x factor)`` (at least 1), read when
  staged, so the call an approver sees is the number that executes.
- ``carrier_outage``: ``set_carrier_status`` (outage in those states; none: everywhere).
- ``demand_surge``: extra work queued at the nodes that ship those SKUs (``add_node_backlog``): a
  node in steady state takes in what it ships, so the SKUs' share of its open orders times its
  daily capacity is their daily demand there; ``factor`` x that for ``days`` days adds
  ``(factor - 1) x share x capacity x days`` orders of backlog.
- ``node_backlog``: work queued at the node until it holds ``days`` x its daily capacity
  (``add_node_backlog`` of the difference, read when staged; nothing when it already holds that much).
- ``inbound_delay``: the node's free stock of the SKU (on hand less reserved) is what was promised
  against the late receipt, so it comes off (``adjust_stock``) until the receipt lands; orders
  needing it there then have to be sourced elsewhere.

Staging (:func:`apply_scenario`) goes through the tool gateway: each call is simulated, judged by
policy (these tools need an approver under the default policy), audited, and executed once.

A what-if (:func:`whatif`) plays the same calls on a **copy** of the database and plans there. Why a
copy and not a transaction rolled back: the adapters, the planner and the twin view each open and
commit their own sessions (``db.begin()``), so no single outer transaction can hold every write
the scenario and the plan make; wrapping them would mean a second, test-only code path for every
adapter. A file copy (SQLite's online backup, reading the live file read-only) runs the real code
unchanged and is thrown away afterwards, so the live twin cannot change. It needs SQLite: on a
server database a what-if is refused with a clear error (a copy there is a ``CREATE DATABASE ...
TEMPLATE``, which needs rights a service account should not hold).
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
)
from sqlalchemy import text

from agents.plan import Alert, ExceptionKind, Plan, Planner, Triage
from agents.triage import triage_alert, triage_goal
from core.clock import Clock
from core.db import Database, make_database
from core.domain import OPEN_STATUSES, Node, NodeStatus
from core.errors import ConfigurationError, DomainError, NotFound, OrderOpsError
from guardrails.calls import Actor
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters, OrderFilter
from tools.base import MAX_BATCH, ToolEnv
from tools.gateway import Outcome, RunLedger, ToolGateway
from tools.twin import TwinView
from tools.write import WRITE_TOOLS

MAX_EVENTS = 200

# --- the file -----------------------------------------------------------------------------------------


Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
"""A node, carrier or SKU id: text every database can store (no NUL byte; PostgreSQL refuses one),
said in the schema so an API client learns it before sending."""

StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
"""A two-letter US state (``TX``); the schema says so, so an API client learns it before sending."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeStatusSpec(_Spec):
    node: Name
    status: NodeStatus


class NodeCapacitySpec(_Spec):
    node: Name
    factor: float = Field(gt=0, le=10, description="Capacity is multiplied by this (0.5: half). Closed: node_status.")


class CarrierOutageSpec(_Spec):
    carrier: Name
    states: list[StateCode] = Field(
        default_factory=list, max_length=60, description="Two-letter states; none: everywhere."
    )

    @field_validator("states")
    @classmethod
    def _states(cls, value: list[str]) -> list[str]:
        return sorted({s.upper() for s in value})


class DemandSurgeSpec(_Spec):
    skus: list[Name] = Field(min_length=1, max_length=500)
    factor: float = Field(gt=1, le=20, description="Demand is multiplied by this while the surge lasts.")
    days: int = Field(ge=1, le=90)


class InboundDelaySpec(_Spec):
    node: Name
    sku: Name
    days: int = Field(ge=1, le=365)


class NodeBacklogSpec(_Spec):
    node: Name
    days: float = Field(gt=0, le=60, description="Backlog becomes this many days of the node's daily capacity.")


class NodeStatusEvent(_Spec):
    node_status: NodeStatusSpec


class NodeCapacityEvent(_Spec):
    node_capacity: NodeCapacitySpec


class CarrierOutageEvent(_Spec):
    carrier_outage: CarrierOutageSpec


class DemandSurgeEvent(_Spec):
    demand_surge: DemandSurgeSpec


class InboundDelayEvent(_Spec):
    inbound_delay: InboundDelaySpec


class NodeBacklogEvent(_Spec):
    node_backlog: NodeBacklogSpec


EVENT_TYPES: tuple[str, ...] = (
    "node_status",
    "node_capacity",
    "carrier_outage",
    "demand_surge",
    "inbound_delay",
    "node_backlog",
)


def _event_key(value: Any) -> str | None:
    """The event's type: its one key. Anything else matches no tag, which pydantic reports."""
    if isinstance(value, Mapping) and len(value) == 1:
        key = next(iter(value))
        return key if key in EVENT_TYPES else None
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


Event = Annotated[
    Annotated[NodeStatusEvent, Tag("node_status")]
    | Annotated[NodeCapacityEvent, Tag("node_capacity")]
    | Annotated[CarrierOutageEvent, Tag("carrier_outage")]
    | Annotated[DemandSurgeEvent, Tag("demand_surge")]
    | Annotated[InboundDelayEvent, Tag("inbound_delay")]
    | Annotated[NodeBacklogEvent, Tag("node_backlog")],
    Discriminator(
        _event_key,
        custom_error_type="unknown_event",
        custom_error_message="an event is a mapping with exactly one key, one of: " + ", ".join(EVENT_TYPES),
    ),
]


class Scenario(_Spec):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    description: str = Field(default="", max_length=5000, pattern=r"^[^\x00]*$")
    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS)


class ScenarioFinding(BaseModel):
    """A problem with a scenario file, where it is: the 1-based line and the field's path."""

    model_config = ConfigDict(frozen=True)

    severity: Literal["error", "warning"] = "error"
    code: str
    message: str
    line: int | None = None
    field: str = ""


@dataclass(frozen=True)
class ParsedScenario:
    """A scenario that parsed, or the findings that say why not (``scenario`` is then None)."""

    scenario: Scenario | None
    findings: list[ScenarioFinding]
    event_lines: tuple[int | None, ...] = ()

    @property
    def ok(self) -> bool:
        return self.scenario is not None and not any(f.severity == "error" for f in self.findings)


def _line_of(node: yaml.Node | None, path: Sequence[int | str]) -> int | None:
    """The 1-based line of ``path`` in a composed YAML tree: as deep as the path exists there."""
    if node is None:
        return None
    line: int | None = node.start_mark.line + 1
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None:  # point at the key itself for a missing or unexpected value
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            return line
        node, line = child, child.start_mark.line + 1
    return line


def parse_scenario(text: str) -> ParsedScenario:
    """Parse a scenario file's text. Never raises: a YAML error or a field out of place is a finding
    with its line and field path, and no scenario."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return ParsedScenario(
            None,
            [
                ScenarioFinding(
                    code="yaml_syntax",
                    message=f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                    line=mark.line + 1 if mark is not None else None,
                )
            ],
        )
    if not isinstance(data, dict):
        return ParsedScenario(
            None, [ScenarioFinding(code="not_a_mapping", message="a scenario file is a mapping with name and events")]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        findings = []
        for err in exc.errors()[:20]:
            loc = _file_path(err["loc"])
            findings.append(
                ScenarioFinding(
                    code=str(err["type"]),
                    message=str(err["msg"]),
                    line=_line_of(root, loc),
                    field=".".join(str(p) for p in loc),
                )
            )
        return ParsedScenario(None, findings)
    lines = tuple(_line_of(root, ["events", i]) for i in range(len(scenario.events)))
    return ParsedScenario(scenario, [], lines)


def _file_path(loc: Sequence[int | str]) -> list[int | str]:
    """Pydantic's error location as a path in the file: ``events.0.node_capacity.factor`` (pydantic
    adds the discriminator's tag after the index, which the file does not have)."""
    out = list(loc)
    if len(out) >= 3 and out[0] == "events" and out[2] in EVENT_TYPES and len(out) >= 4 and out[3] == out[2]:
        del out[2]
    return out


def load_scenario(path: Path) -> ParsedScenario:
    """Read and parse ``path``; an unreadable file is a finding too."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return ParsedScenario(None, [ScenarioFinding(code="unreadable", message=f"cannot read {path}: {exc.strerror}")])
    if len(raw) > 1_000_000:
        return ParsedScenario(None, [ScenarioFinding(code="too_large", message="a scenario file is at most 1 MB")])
    try:
        text_ = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ParsedScenario(None, [ScenarioFinding(code="not_utf8", message="a scenario file is UTF-8 text")])
    return parse_scenario(text_)


# --- from events to calls -------------------------------------------------------------------------------


class StagedCall(BaseModel):
    """One write a scenario event becomes, with the event it came from."""

    event: int
    tool: str
    args: dict[str, Any]


def _finding(parsed: ParsedScenario, i: int, key: str, field_: str, message: str, code: str) -> ScenarioFinding:
    line = parsed.event_lines[i] if i < len(parsed.event_lines) else None
    return ScenarioFinding(code=code, message=message, line=line, field=f"events.{i}.{key}.{field_}")


@dataclass
class _Staging:
    """What staging one scenario reads once and shares across its events: the twin's nodes and
    carriers as they are now, the audit reason, and the findings so far (in event order)."""

    parsed: ParsedScenario
    env: ToolEnv
    nodes: dict[str, Node]
    carrier_ids: set[str]
    why: str
    findings: list[ScenarioFinding]

    def find(self, i: int, key: str, field_: str, message: str, code: str, *, warning: bool = False) -> None:
        """Record a finding on event ``i``; a warning (an event that would change nothing) does not
        stop the others from staging, an error does."""
        finding = _finding(self.parsed, i, key, field_, message, code)
        self.findings.append(finding.model_copy(update={"severity": "warning"}) if warning else finding)

    def unknown_node(self, i: int, key: str, node: str) -> bool:
        """Whether event ``i`` names a node the network lacks (recorded as a finding)."""
        if node in self.nodes:
            return False
        self.find(i, key, "node", f"no node {node!r} in the network", "unknown_node")
        return True


def _stage_node_status(st: _Staging, i: int, ev: NodeStatusEvent) -> StagedCall | None:
    """``set_node_status`` as the file says."""
    s = ev.node_status
    if st.unknown_node(i, "node_status", s.node):
        return None
    return StagedCall(
        event=i, tool="set_node_status", args={"node_id": s.node, "status": s.status.value, "reason": st.why}
    )


def _stage_node_capacity(st: _Staging, i: int, ev: NodeCapacityEvent) -> StagedCall | None:
    """``set_node_capacity`` to the factor of today's capacity, computed now so the approver sees the
    number that executes."""
    c = ev.node_capacity
    if st.unknown_node(i, "node_capacity", c.node):
        return None
    cap = max(1, round(st.nodes[c.node].daily_capacity * c.factor))
    return StagedCall(
        event=i,
        tool="set_node_capacity",
        args={"node_id": c.node, "daily_capacity": cap, "reason": f"{st.why}: capacity x {c.factor}"},
    )


def _stage_carrier_outage(st: _Staging, i: int, ev: CarrierOutageEvent) -> StagedCall | None:
    """``set_carrier_status`` to an outage in the file's states."""
    o = ev.carrier_outage
    if o.carrier not in st.carrier_ids:
        st.find(i, "carrier_outage", "carrier", f"no carrier {o.carrier!r}", "unknown_carrier")
        return None
    return StagedCall(
        event=i,
        tool="set_carrier_status",
        args={"carrier_id": o.carrier, "status": "outage", "outage_states": o.states, "reason": st.why},
    )


def _stage_demand_surge(st: _Staging, i: int, ev: DemandSurgeEvent) -> StagedCall | None:
    """Extra backlog where the SKUs ship (the twin has no demand series; see the module docstring);
    a surge that adds no work is a warning, not a call."""
    d = ev.demand_surge
    missing, more = _unknown_skus(st.env.adapters, d.skus)
    if missing:
        named = ", ".join(repr(m) for m in missing) + (" and perhaps more" if more else "")
        plural = "s" if len(missing) > 1 or more else ""
        st.find(i, "demand_surge", "skus", f"no product{plural} {named}", "unknown_sku")
        return None
    added = _surge_backlog(st.env.adapters, d, list(st.nodes.values()))
    if not added:
        msg = "no open order at any node carries these SKUs: the surge adds no work"
        st.find(i, "demand_surge", "skus", msg, "no_effect", warning=True)
        return None
    return StagedCall(
        event=i,
        tool="add_node_backlog",
        args={"added": added, "reason": f"{st.why}: demand x {d.factor} for {d.days} days on {len(d.skus)} SKUs"},
    )


def _stage_node_backlog(st: _Staging, i: int, ev: NodeBacklogEvent) -> StagedCall | None:
    """Backlog raised to ``days`` of the node's capacity; nothing when it already holds that much."""
    q = ev.node_backlog
    if st.unknown_node(i, "node_backlog", q.node):
        return None
    node = st.nodes[q.node]
    target = round(node.daily_capacity * q.days)
    if target <= node.backlog:
        return None
    return StagedCall(
        event=i,
        tool="add_node_backlog",
        args={
            "added": {q.node: target - node.backlog},
            "reason": f"{st.why}: {q.days:g} days of work queued at {q.node}",
        },
    )


def _stage_inbound_delay(st: _Staging, i: int, ev: InboundDelayEvent) -> StagedCall | None:
    """The free stock promised against the late receipt taken away (the twin has no inbound ledger;
    see the module docstring); no free stock is a warning, not a call."""
    b = ev.inbound_delay
    if st.unknown_node(i, "inbound_delay", b.node):
        return None
    if _unknown_skus(st.env.adapters, [b.sku])[0]:
        st.find(i, "inbound_delay", "sku", f"no product {b.sku!r}", "unknown_sku")
        return None
    pos = st.env.adapters.wms.inventory(node_ids=[b.node], skus=[b.sku])
    free = pos[0].atp if pos else 0
    if free <= 0:
        msg = f"{b.node} has no free stock of {b.sku}: a late receipt changes nothing it can promise now"
        st.find(i, "inbound_delay", "sku", msg, "no_effect", warning=True)
        return None
    return StagedCall(
        event=i,
        tool="adjust_stock",
        args={
            "node_id": b.node,
            "sku": b.sku,
            "delta": -free,
            "reason": f"{st.why}: inbound of {b.sku} at {b.node} {b.days} days late; its free stock was "
            "promised against that receipt",
        },
    )


_MAX_MISSING_NAMED = 5
"""How many unknown SKUs a finding names: looking for more costs a read each."""


def _unknown_skus(adapters: Adapters, skus: Sequence[str]) -> tuple[list[str], bool]:
    """The SKUs of ``skus`` the catalogue lacks, in order, up to :data:`_MAX_MISSING_NAMED`; and
    whether SKUs were left unchecked after that many (there may be more).

    The embedded ``get_products`` answers NotFound naming the first unknown SKU rather than a
    shorter list, so each NotFound takes its SKU out and asks again: one read when all are known,
    one more per unknown SKU (an adapter that leaves unknown SKUs out of its answer instead is read
    once). A scenario's unknown SKU is a finding on its event (with line and field), never the
    adapter's NotFound escaping as the request's error."""
    rest = list(dict.fromkeys(skus))
    missing: list[str] = []
    while rest and len(missing) < _MAX_MISSING_NAMED:
        try:
            found = {p.sku for p in adapters.oms.get_products(rest)}
        except NotFound as exc:
            sku = str(exc.ident)
            if sku not in rest:  # pragma: no cover - the adapter names a SKU it was asked for
                raise
            missing.append(sku)
            rest.remove(sku)
            continue
        missing.extend(s for s in rest if s not in found)
        rest = []
    return missing[:_MAX_MISSING_NAMED], len(missing) > _MAX_MISSING_NAMED or bool(rest)


_STAGERS: dict[type[_Spec], Callable[[_Staging, int, Any], StagedCall | None]] = {
    NodeStatusEvent: _stage_node_status,
    NodeCapacityEvent: _stage_node_capacity,
    CarrierOutageEvent: _stage_carrier_outage,
    DemandSurgeEvent: _stage_demand_surge,
    NodeBacklogEvent: _stage_node_backlog,
    InboundDelayEvent: _stage_inbound_delay,
}
"""One stager per event type (a table, not an if/elif chain): each returns the event's call, or
None with a finding recorded (or, for a node already backlogged enough, nothing to do)."""


def stage_calls(parsed: ParsedScenario, env: ToolEnv) -> tuple[list[StagedCall], list[ScenarioFinding]]:
    """The write calls that stage ``parsed`` on the twin ``env`` reads, or findings for events that
    name what the twin does not have (then no calls: a bad file changes nothing)."""
    scenario = parsed.scenario
    if scenario is None:
        return [], list(parsed.findings)
    st = _Staging(
        parsed=parsed,
        env=env,
        nodes={n.id: n for n in env.adapters.wms.list_nodes()},
        carrier_ids={c.id for c in env.adapters.carriers.list_carriers()},
        why=f"scenario {scenario.name!r}",
        findings=[],
    )
    calls: list[StagedCall] = []
    for i, ev in enumerate(scenario.events):
        stager = _STAGERS.get(type(ev))
        call = stager(st, i, ev) if stager is not None else None
        if call is not None:
            calls.append(call)
    if any(f.severity == "error" for f in st.findings):
        return [], st.findings
    return calls, st.findings


def _surge_backlog(adapters: Adapters, surge: DemandSurgeSpec, nodes: Sequence[Any]) -> dict[str, int]:
    """Orders of extra work per node (see the module docstring for the model)."""
    added: dict[str, int] = {}
    for node in nodes:
        if node.status is NodeStatus.CLOSED:
            continue
        flt_all = OrderFilter(node_ids=[node.id], statuses=sorted(OPEN_STATUSES))
        total = adapters.oms.count_orders(flt_all)
        if not total:
            continue
        with_skus = adapters.oms.count_orders(
            OrderFilter(node_ids=[node.id], statuses=sorted(OPEN_STATUSES), skus=surge.skus)
        )
        extra = round((surge.factor - 1) * (with_skus / total) * node.daily_capacity * surge.days)
        if extra > 0:
            added[node.id] = extra
    return added


# --- staging on the live twin ------------------------------------------------------------------------------


class StagedOutcome(BaseModel):
    event: int
    tool: str
    status: str
    summary: str = ""
    approval_id: str | None = None
    reasons: list[str] = Field(default_factory=list)


class ApplyReport(BaseModel):
    scenario: str
    run_id: str
    findings: list[ScenarioFinding] = Field(default_factory=list)
    outcomes: list[StagedOutcome] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def apply_scenario(parsed: ParsedScenario, gateway: ToolGateway, *, actor: Actor) -> ApplyReport:
    """Stage ``parsed`` on the live twin through ``gateway``: every event's call is simulated,
    judged, audited under one run id, and executed or parked for approval. Findings (a bad file, a
    node the twin lacks) stage nothing at all."""
    run_id = f"scenario_{uuid.uuid4().hex[:16]}"
    name = parsed.scenario.name if parsed.scenario else ""
    calls, findings = stage_calls(parsed, gateway.env)
    report = ApplyReport(scenario=name, run_id=run_id, findings=findings)
    if not report.ok:
        return report
    ledger = RunLedger(run_id=run_id)
    for n, call in enumerate(calls):
        out: Outcome = gateway.propose(call.tool, call.args, actor=actor, run=ledger, idempotency_key=f"{run_id}:{n}")
        report.outcomes.append(
            StagedOutcome(
                event=call.event,
                tool=call.tool,
                status=out.status,
                summary=out.preview.summary if out.preview else "",
                approval_id=out.approval_id,
                reasons=out.reasons,
            )
        )
    return report


# --- KPIs ----------------------------------------------------------------------------------------------


class NodeKpi(BaseModel):
    node_id: str
    status: str
    daily_capacity: int
    backlog: int
    backlog_days: float


class Kpis(BaseModel):
    """The network's service and cost as the twin prices its open orders now."""

    open_orders: int = Field(description="Open orders with a node (the ones that ship).")
    on_time: int
    on_time_rate: float = Field(description="Share of those whose ETA meets the promise (unavailable: late).")
    unavailable: int = Field(description="Orders that cannot ship as booked (closed node, carrier down).")
    cost_to_serve: Decimal = Field(description="Carriage plus pick-pack of every open order, as booked.")
    cost_per_order: Decimal
    nodes: list[NodeKpi]
    co2e_kg: float | None = Field(default=None, description="Not modelled by the twin yet: always null.")


def network_kpis(adapters: Adapters, clock: Clock) -> Kpis:
    view = TwinView.load(adapters, clock)
    orders = [
        o
        for o in adapters.oms.list_orders(OrderFilter(statuses=sorted(OPEN_STATUSES)), limit=MAX_BATCH)
        if o.node_id is not None
    ]
    view.prepare(orders)
    on_time = unavailable = 0
    cost = Decimal(0)
    for o in orders:
        assert o.node_id is not None
        f = view.booked(o, o.node_id)
        cost += f.cost
        unavailable += not f.available
        on_time += not view.is_late(o, f)
    n = len(orders)
    return Kpis(
        open_orders=n,
        on_time=on_time,
        on_time_rate=round(on_time / n, 4) if n else 1.0,
        unavailable=unavailable,
        cost_to_serve=cost.quantize(Decimal("0.01")),
        cost_per_order=(cost / n).quantize(Decimal("0.01")) if n else Decimal(0),
        nodes=[
            NodeKpi(
                node_id=nd.id,
                status=nd.status.value,
                daily_capacity=nd.daily_capacity,
                backlog=nd.backlog,
                backlog_days=round(nd.backlog_days, 2),
            )
            for nd in sorted(view.nodes.values(), key=lambda x: x.id)
        ],
    )


# --- what-if on a copy -----------------------------------------------------------------------------------


@contextmanager
def database_copy(db: Database) -> Iterator[Database]:
    """A throw-away copy of ``db`` (SQLite only; see the module docstring for why a copy)."""
    if not db.is_sqlite or not db.engine.url.database or db.engine.url.database == ":memory:":
        raise ConfigurationError(
            "a what-if plays the scenario on a copy of the database, which needs a SQLite file; "
            f"{db.url} is not one (stage it with `orderops twin apply` on a test installation instead)"
        )
    live = Path(db.engine.url.database)
    with tempfile.TemporaryDirectory(prefix="orderops-whatif-") as tmp:
        copy_path = Path(tmp) / "whatif.db"
        src = sqlite3.connect(f"{live.resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(copy_path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        copy = make_database(url=f"sqlite:///{copy_path}")
        try:
            yield copy
        finally:
            copy.dispose()


class PlannedStep(BaseModel):
    tool: str
    reason: str
    orders: int
    played: str = Field(default="", description="What playing it on the copy did (done/skipped), or why not.")


class WhatIfReport(BaseModel):
    scenario: str
    findings: list[ScenarioFinding] = Field(default_factory=list)
    staged: list[StagedCall] = Field(default_factory=list)
    alert: Alert | None = None
    goal: str | None = None
    triage: Triage | None = None
    plan_summary: str = ""
    planner: str = ""
    steps: list[PlannedStep] = Field(default_factory=list)
    before: Kpis | None = Field(default=None, description="The live twin as it is.")
    after: Kpis | None = Field(default=None, description="With the scenario staged, nothing done about it.")
    after_plan: Kpis | None = Field(default=None, description="With the scenario and the agent's plan, on the copy.")

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def scenario_alert(scenario: Scenario) -> Alert | None:
    """The alert a monitor would raise for the scenario's worst event: a closure before congestion
    (a capacity cut or a surge), before a carrier outage, before a stockout."""
    rank = {
        ExceptionKind.NODE_CLOSURE: 0,
        ExceptionKind.NODE_CONGESTION: 1,
        ExceptionKind.CARRIER_OUTAGE: 2,
        ExceptionKind.STOCKOUT: 3,
    }
    found: list[tuple[int, int, Alert]] = []
    for i, ev in enumerate(scenario.events):
        kind: ExceptionKind | None = None
        labels: dict[str, str] = {}
        if isinstance(ev, NodeStatusEvent) and ev.node_status.status is not NodeStatus.OPEN:
            closed = ev.node_status.status is NodeStatus.CLOSED
            kind = ExceptionKind.NODE_CLOSURE if closed else ExceptionKind.NODE_CONGESTION
            labels = {"node": ev.node_status.node}
        elif isinstance(ev, NodeCapacityEvent) and ev.node_capacity.factor < 1:
            kind, labels = ExceptionKind.NODE_CONGESTION, {"node": ev.node_capacity.node}
        elif isinstance(ev, CarrierOutageEvent):
            kind = ExceptionKind.CARRIER_OUTAGE
            labels = {"carrier": ev.carrier_outage.carrier}
            if ev.carrier_outage.states:
                labels["states"] = ",".join(ev.carrier_outage.states)
        elif isinstance(ev, InboundDelayEvent):
            kind = ExceptionKind.STOCKOUT
            labels = {"node": ev.inbound_delay.node, "sku": ev.inbound_delay.sku}
        if kind is not None:
            alert = Alert(
                id=f"scenario-{kind.value}-{i}",
                kind=kind,
                severity="critical",
                labels=labels,
                summary=f"{scenario.name}: {kind.value.replace('_', ' ')} ({', '.join(labels.values())})",
            )
            found.append((rank[kind], i, alert))
    return min(found, key=lambda t: (t[0], t[1]))[2] if found else None


def _play(calls: Sequence[StagedCall], env: ToolEnv) -> list[str]:
    """Run ``calls`` on the copy's systems directly: no policy, no approvals, no audit, since
    nothing real changes; narrowed to what the simulation accepts, as the gateway would."""
    tools = {t.name: t for t in WRITE_TOOLS}
    played: list[str] = []
    for call in calls:
        tool = tools[call.tool]
        try:
            args = tool.args_model.model_validate(call.args)
            preview = tool.simulate(env, args)
            if tool.items(args):
                accepted = set(preview.affected)
                if not accepted:
                    played.append("nothing to do: " + preview.summary)
                    continue
                args = tool.restrict(args, [i for i in tool.items(args) if i in accepted])
            res = tool.execute(env, args)
            played.append(f"done {len(res.done)}, skipped {len(res.skipped)}")
        except (DomainError, ValidationError) as exc:
            played.append(f"not played: {exc.message if isinstance(exc, OrderOpsError) else exc}")
    return played


def stage_directly(parsed: ParsedScenario, env: ToolEnv) -> list[ScenarioFinding]:
    """Stage ``parsed`` on ``env``'s systems without the gateway: no policy, approval or audit.
    Only for a twin that is nobody's live network — the demo's own installation, a what-if's copy —
    where the scenario stands in for the outside world (a monitor's incident), not for an agent's
    action. Returns the findings; with an error among them nothing is staged."""
    calls, findings = stage_calls(parsed, env)
    if not any(f.severity == "error" for f in findings):
        _play(calls, env)
    return findings


def live_fingerprint(db: Database) -> dict[str, str]:
    """Row count and content hash of every table of ``db``: what a what-if must leave as it was."""
    out: dict[str, str] = {}
    with db.engine.connect() as conn:
        names = [
            r[0]
            for r in conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            )
        ]
        for name in names:
            digest = hashlib.sha256()
            count = 0
            for row in conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')):  # names from the schema
                digest.update(repr(tuple(row)).encode())
                count += 1
            out[name] = f"{count}:{digest.hexdigest()[:16]}"
    return out


def whatif(
    parsed: ParsedScenario,
    db: Database,
    clock: Clock,
    planner: Planner,
    *,
    goal: str | None = None,
) -> WhatIfReport:
    """Play ``parsed`` on a copy of ``db``: KPIs before, after staging it, and after the agent's
    plan (for ``goal`` if given, else for the alert the scenario raises). The live database is
    only read; nothing there executes, nothing is audited or parked."""
    name = parsed.scenario.name if parsed.scenario else ""
    live_env = ToolEnv(embedded_adapters(db, clock), clock)
    calls, findings = stage_calls(parsed, live_env)
    report = WhatIfReport(scenario=name, findings=findings, staged=calls, goal=goal)
    if not report.ok or parsed.scenario is None:
        return report
    report.before = network_kpis(live_env.adapters, clock)
    with database_copy(db) as copy:
        env = ToolEnv(embedded_adapters(copy, clock), clock)
        _play(calls, env)
        report.after = network_kpis(env.adapters, clock)
        if goal:
            report.triage = triage_goal(goal, env)
        else:
            report.alert = scenario_alert(parsed.scenario)
            report.triage = triage_alert(report.alert, env) if report.alert else None
        if report.triage is not None and report.triage.kind is not ExceptionKind.UNKNOWN:
            plan: Plan = planner.plan(report.triage, env)
            report.plan_summary, report.planner = plan.summary, plan.planner
            steps = [StagedCall(event=-1, tool=s.tool, args=s.args) for s in plan.steps]
            played = _play(steps, env)
            report.steps = [
                PlannedStep(
                    tool=s.tool,
                    reason=s.reason,
                    orders=len(s.args.get("order_ids", [])),
                    played=p,
                )
                for s, p in zip(plan.steps, played, strict=True)
            ]
            report.after_plan = network_kpis(env.adapters, clock)
    return report


__all__ = [
    "ApplyReport",
    "Kpis",
    "ParsedScenario",
    "Scenario",
    "ScenarioFinding",
    "StagedCall",
    "WhatIfReport",
    "apply_scenario",
    "database_copy",
    "live_fingerprint",
    "load_scenario",
    "network_kpis",
    "parse_scenario",
    "scenario_alert",
    "stage_calls",
    "stage_directly",
    "whatif",
]
