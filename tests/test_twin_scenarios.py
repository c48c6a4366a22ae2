"""Scenario files on the twin (issue 18, item 2): parsed into typed events with findings for bad
files, staged on the live twin through the gateway (audited, parked for approval), and played as
what-ifs on a copy that leaves the live database as it was."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import AppContext, open_context
from api.cli import run as cli
from api.cli_network import seed_network
from core.domain import CarrierStatus, NodeStatus
from core.netgen import NetworkSpec
from core.settings import Settings
from guardrails.audit import EventType
from guardrails.calls import Actor
from services.scenarios import (
    DemandSurgeEvent,
    NodeCapacityEvent,
    apply_scenario,
    live_fingerprint,
    parse_scenario,
    whatif,
)
from services.wiring import choose_planner

OPERATOR = Actor(kind="user", id="ops-1", roles=frozenset({"operator"}))
APPROVER = Actor(kind="user", id="boss-1", roles=frozenset({"approver"}))


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small network on the network clock (so promise dates mean the same on every run)."""
    home = tmp_path_factory.mktemp("twin")
    seed_network(
        Settings(home=home, clock="network"), NetworkSpec(orders=400, skus=120), reset=False, show_progress=False
    )
    return home


@pytest.fixture
def home(seeded_home: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded network per test (tests that stage change it)."""
    import shutil

    target = tmp_path / "home"
    shutil.copytree(seeded_home, target)
    return target


@contextmanager
def _ctx(home: Path) -> Iterator[AppContext]:
    ctx = open_context(Settings(home=home, clock="network"))
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def actx(home: Path) -> Iterator[AppContext]:
    with _ctx(home) as ctx:
        yield ctx


def _busiest_dc(actx: AppContext) -> str:
    loads = [ld for ld in actx.adapters.wms.node_load() if ld.node_id.startswith("DC-")]
    return max(loads, key=lambda ld: ld.unreleased_orders).node_id


def _cli(home: Path, *argv: str) -> int:
    old = {k: os.environ.get(k) for k in ("ORDEROPS_HOME", "ORDEROPS_CLOCK")}
    os.environ.update({"ORDEROPS_HOME": str(home), "ORDEROPS_CLOCK": "network"})
    try:
        return cli(list(argv))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- parsing ------------------------------------------------------------------------------------------


def test_a_good_file_parses_into_typed_events_by_their_key() -> None:
    parsed = parse_scenario(
        "name: two things\nevents:\n"
        "  - node_capacity: {node: DC-A, factor: 0.5}\n"
        "  - demand_surge: {skus: [S1, S2], factor: 2, days: 3}\n"
    )
    assert parsed.ok, parsed.findings
    assert parsed.scenario is not None
    first, second = parsed.scenario.events
    assert isinstance(first, NodeCapacityEvent)
    assert first.node_capacity.factor == 0.5
    assert isinstance(second, DemandSurgeEvent)
    assert second.demand_surge.skus == ["S1", "S2"]
    assert parsed.event_lines == (3, 4)


@pytest.mark.parametrize(
    ("text", "code", "line", "field"),
    [
        ("name: x\nevents:\n  - node_status: {node: A, status: shut}\n", "enum", 3, "events.0.node_status.status"),
        (
            "name: x\nevents:\n  - node_status: {node: A, status: open}\n  - flood: {node: A}\n",
            "unknown_event",
            4,
            "events.1",
        ),
        (
            "name: x\nevents:\n  - node_capacity:\n      node: A\n      factor: -1\n",
            "greater_than",
            5,
            "events.0.node_capacity.factor",
        ),
        (
            "name: x\nevents:\n  - carrier_outage: {carrier: C, states: [Texas]}\n",
            "string_pattern_mismatch",
            3,
            "events.0.carrier_outage.states.0",
        ),
        ("name: x\nevents: []\n", "too_short", 2, "events"),
        ("events:\n  - node_status: {node: A, status: open}\n", "missing", 1, "name"),
        ("name: x\nevents:\n  - node_status: {node: A, status: open, extra: 1}\n", "extra_forbidden", 3, None),
        ("name: [unclosed\n", "yaml_syntax", None, ""),
        ("- just a list\n", "not_a_mapping", None, ""),
    ],
)
def test_a_bad_file_is_findings_with_line_and_field_never_an_exception(
    text: str, code: str, line: int | None, field: str | None
) -> None:
    parsed = parse_scenario(text)
    assert not parsed.ok
    assert parsed.scenario is None
    assert code in {f.code for f in parsed.findings}
    hit = next(f for f in parsed.findings if f.code == code)
    if line is not None:
        assert hit.line == line
    if field is not None:
        assert hit.field == field


def test_cli_rejects_a_bad_file_with_status_2_and_changes_nothing(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nevents:\n  - node_status: {node: DC-NOWHERE, status: closed}\n")
    with _ctx(home) as ctx:
        before = live_fingerprint(ctx.db)
    assert _cli(home, "twin", "apply", str(bad), "--json") == 2
    assert _cli(home, "twin", "whatif", str(bad), "--json") == 2
    with _ctx(home) as ctx:
        assert live_fingerprint(ctx.db) == before


# --- staging on the live twin ----------------------------------------------------------------------------


def test_apply_goes_through_the_gateway_parks_for_approval_and_audits_every_call(actx: AppContext) -> None:
    node = _busiest_dc(actx)
    wms = actx.adapters.wms
    cap = wms.get_node(node).daily_capacity
    carrier = next(c.id for c in actx.adapters.carriers.list_carriers() if c.status is CarrierStatus.OPERATIONAL)
    stock = next(p for p in wms.inventory(node_ids=[node]) if p.atp > 0)
    parsed = parse_scenario(
        f"""name: bad day at {node}
events:
  - node_capacity: {{node: {node}, factor: 0.5}}
  - carrier_outage: {{carrier: {carrier}, states: [tx, ok]}}
  - inbound_delay: {{node: {node}, sku: {stock.sku}, days: 4}}
  - node_status: {{node: {node}, status: congested}}
"""
    )
    assert parsed.ok, parsed.findings
    report = apply_scenario(parsed, actx.gateway, actor=OPERATOR)
    assert report.ok
    assert [o.tool for o in report.outcomes] == [
        "set_node_capacity",
        "set_carrier_status",
        "adjust_stock",
        "set_node_status",
    ]
    # The default policy allows none of these network writes: each waits for an approver.
    assert {o.status for o in report.outcomes} == {"awaiting_approval"}
    assert wms.get_node(node).daily_capacity == cap
    assert actx.adapters.carriers.get_carrier(carrier).status is CarrierStatus.OPERATIONAL
    trail = actx.guard.audit.list(run_id=report.run_id)
    assert [e.event_type for e in trail].count(EventType.PROPOSED) == 4
    assert [e.event_type for e in trail].count(EventType.AWAITING_APPROVAL) == 4

    # Approved, each executes exactly what the card showed, once.
    by_tool = {o.tool: o for o in report.outcomes}
    for tool in ("set_node_capacity", "set_carrier_status", "adjust_stock"):
        approval_id = by_tool[tool].approval_id
        assert approval_id is not None
        actx.gateway.decide(approval_id, approver=APPROVER, decision="approve")
        from tools.gateway import RunLedger

        out = actx.gateway.execute_approved(approval_id, actor=OPERATOR, run=RunLedger(run_id=report.run_id))
        assert out.status == "executed", out.reasons
    assert wms.get_node(node).daily_capacity == round(cap * 0.5)
    outage = actx.adapters.carriers.get_carrier(carrier)
    assert outage.status is CarrierStatus.OUTAGE
    assert outage.outage_states == ("OK", "TX")
    assert wms.inventory(node_ids=[node], skus=[stock.sku])[0].atp == 0
    executed = actx.guard.audit.list(run_id=report.run_id, event_type=EventType.EXECUTED)
    assert sorted(str(e.tool) for e in executed) == ["adjust_stock", "set_carrier_status", "set_node_capacity"]
    assert actx.guard.audit.verify().ok


def test_the_staging_tools_undo_exactly(actx: AppContext) -> None:
    """Each staging tool's compensation puts the twin back (what `runs undo` relies on)."""
    from tools.base import ToolEnv
    from tools.twin_writes import TWIN_WRITE_TOOLS

    env = ToolEnv(actx.adapters, actx.twin_clock)
    tools = {t.name: t for t in TWIN_WRITE_TOOLS}
    node = _busiest_dc(actx)
    wms = actx.adapters.wms
    before = wms.get_node(node)
    carriers_before = actx.adapters.carriers.list_carriers()
    calls = [
        ("set_node_capacity", {"node_id": node, "daily_capacity": 7}),
        ("add_node_backlog", {"added": {node: 500}}),
        ("set_carrier_status", {"carrier_id": actx.adapters.carriers.list_carriers()[0].id, "status": "outage"}),
    ]
    for name, raw in calls:
        tool = tools[name]
        args = tool.args_model.model_validate(raw)
        result = tool.execute(env, args)
        assert result.done
        for comp in tool.compensations(args, result):
            tools[comp.tool].execute(env, tools[comp.tool].args_model.model_validate(comp.args))
    after = wms.get_node(node)
    assert (after.daily_capacity, after.backlog) == (before.daily_capacity, before.backlog)
    assert actx.adapters.carriers.list_carriers() == carriers_before


def test_a_scenario_naming_what_the_twin_lacks_stages_nothing(actx: AppContext) -> None:
    node = _busiest_dc(actx)
    parsed = parse_scenario(
        f"name: x\nevents:\n  - node_status: {{node: {node}, status: closed}}\n"
        "  - carrier_outage: {carrier: NOPE, states: [TX]}\n"
    )
    before = live_fingerprint(actx.db)
    report = apply_scenario(parsed, actx.gateway, actor=OPERATOR)
    assert not report.ok
    assert report.outcomes == []
    finding = next(f for f in report.findings if f.code == "unknown_carrier")
    assert (finding.line, finding.field) == (4, "events.1.carrier_outage.carrier")
    assert live_fingerprint(actx.db) == before


# --- what-if on a copy -----------------------------------------------------------------------------------


def test_whatif_on_a_closure_reports_kpis_and_leaves_the_live_database_unchanged(actx: AppContext) -> None:
    node = _busiest_dc(actx)
    parsed = parse_scenario(f"name: {node} closes\nevents:\n  - node_status: {{node: {node}, status: closed}}\n")
    before = live_fingerprint(actx.db)
    report = whatif(parsed, actx.db, actx.twin_clock, choose_planner(actx, "playbook"))
    assert live_fingerprint(actx.db) == before
    assert actx.adapters.wms.get_node(node).status is NodeStatus.OPEN

    assert report.alert is not None
    assert report.alert.labels == {"node": node}
    assert report.before is not None
    assert report.after is not None
    assert report.after_plan is not None
    closed = {n.node_id: n.status for n in report.after.nodes}
    assert closed[node] == "closed"
    assert {n.node_id: n.status for n in report.before.nodes}[node] == "open"
    # Closing the node strands its orders; the agent's reroutes (played on the copy) bring some back.
    assert report.after.unavailable > report.before.unavailable
    assert report.after_plan.unavailable < report.after.unavailable
    assert report.planner.startswith("playbook")
    assert any(s.tool == "reroute_orders" and s.played.startswith("done") for s in report.steps)
    # Nothing was proposed, parked or executed on the live trail.
    assert actx.guard.audit.list(event_type=EventType.EXECUTED) == []


def test_whatif_surge_and_capacity_cut_raise_backlog_days(actx: AppContext) -> None:
    node = _busiest_dc(actx)
    skus = sorted({ln.sku for o in actx.adapters.oms.list_orders(_open_at(node), with_lines=True) for ln in o.lines})
    parsed = parse_scenario(
        f"name: rush\nevents:\n  - node_capacity: {{node: {node}, factor: 0.25}}\n"
        f"  - demand_surge: {{skus: [{', '.join(skus[:5])}], factor: 3, days: 2}}\n"
    )
    report = whatif(parsed, actx.db, actx.twin_clock, choose_planner(actx, "playbook"))
    assert report.ok, report.findings
    assert [c.tool for c in report.staged] == ["set_node_capacity", "add_node_backlog"]
    assert report.before is not None
    assert report.after is not None
    days = {n.node_id: n.backlog_days for n in report.before.nodes}
    after = {n.node_id: n.backlog_days for n in report.after.nodes}
    assert after[node] > days[node] * 4 - 0.01
    assert report.alert is not None
    assert report.alert.kind.value == "node_congestion"


def _open_at(node: str) -> Any:
    from core.domain import OPEN_STATUSES
    from tools.adapters.protocols import OrderFilter

    return OrderFilter(node_ids=[node], statuses=sorted(OPEN_STATUSES))


def test_cli_whatif_json_prints_kpis_before_and_after(home: Path, tmp_path: Path) -> None:
    with _ctx(home) as ctx:
        node = _busiest_dc(ctx)
        before = live_fingerprint(ctx.db)
    f = tmp_path / "closure.yaml"
    f.write_text(f"name: closure\nevents:\n  - node_status: {{node: {node}, status: closed}}\n")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = _cli(home, "twin", "whatif", str(f), "--planner", "playbook", "--json")
    assert code == 0
    out = json.loads(buf.getvalue())
    assert out["scenario"] == "closure"
    assert out["before"]["on_time_rate"] >= out["after"]["on_time_rate"]
    assert out["after"]["unavailable"] > 0
    assert {"before", "after", "after_plan"} <= out.keys()
    with _ctx(home) as ctx:
        assert live_fingerprint(ctx.db) == before


# --- over HTTP ---------------------------------------------------------------------------------------------


def test_http_whatif_and_apply_need_an_operator_and_report_findings(actx: AppContext, home: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import ApiKeyStore, Role, create_key

    keys = ApiKeyStore(actx.db, home=home)
    viewer = create_key(keys, "vic", [Role.VIEWER])
    operator = create_key(keys, "otto", [Role.OPERATOR])
    client = TestClient(create_app(actx, keys=keys))
    node = _busiest_dc(actx)
    closure = {"name": "closure", "events": [{"node_status": {"node": node, "status": "closed"}}]}
    before = live_fingerprint(actx.db)
    as_operator = {"Authorization": f"Bearer {operator}"}

    denied = client.post("/v1/twin/whatif", json={"scenario": closure}, headers={"Authorization": f"Bearer {viewer}"})
    assert denied.status_code == 403

    bad = client.post(
        "/v1/twin/apply",
        json={"scenario": {"name": "x", "events": [{"node_capacity": {"node": node, "factor": 0}}]}},
        headers=as_operator,
    )
    assert bad.status_code == 422
    unknown = client.post(
        "/v1/twin/apply",
        json={"scenario": {"name": "x", "events": [{"node_status": {"node": "DC-NOWHERE", "status": "closed"}}]}},
        headers=as_operator,
    )
    assert unknown.status_code == 404
    assert unknown.json()["details"]["findings"][0]["field"] == "events.0.node_status.node"
    assert live_fingerprint(actx.db) == before

    played = client.post("/v1/twin/whatif", json={"scenario": closure, "planner": "playbook"}, headers=as_operator)
    assert played.status_code == 200, played.text
    assert played.json()["after"]["unavailable"] > played.json()["before"]["unavailable"]
    assert live_fingerprint(actx.db) == before

    staged = client.post("/v1/twin/apply", json={"scenario": closure}, headers=as_operator)
    assert staged.status_code == 200, staged.text
    outcome = staged.json()["outcomes"][0]
    assert (outcome["tool"], outcome["status"]) == ("set_node_status", "awaiting_approval")
    parked = actx.guard.audit.list(run_id=staged.json()["run_id"], event_type=EventType.AWAITING_APPROVAL)
    assert [e.actor for e in parked] == ["user:otto"]


def test_the_documented_example_parses_and_stages_on_the_generated_network(actx: AppContext) -> None:
    from services.scenarios import load_scenario, stage_calls
    from tools.base import ToolEnv

    parsed = load_scenario(Path(__file__).parents[1] / "docs" / "scenarios" / "dallas-bad-day.yaml")
    assert parsed.ok, parsed.findings
    calls, findings = stage_calls(parsed, ToolEnv(actx.adapters, actx.twin_clock))
    assert findings == []
    assert [c.tool for c in calls] == ["set_node_status", "set_node_capacity", "set_carrier_status"]


# --- unknown SKUs -------------------------------------------------------------------------------------------

BAD_SKUS = (
    "name: x\nevents:\n"
    "  - demand_surge: {{skus: [NOPE-1, {sku}, NOPE-2], factor: 2, days: 1}}\n"
    "  - inbound_delay: {{node: {node}, sku: NOPE-3, days: 2}}\n"
)


def _bad_skus(actx: AppContext) -> str:
    node = _busiest_dc(actx)
    sku = actx.adapters.oms.list_products(limit=1)[0].sku
    return BAD_SKUS.format(node=node, sku=sku)


def test_cli_whatif_and_apply_report_unknown_skus_as_findings_and_change_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogue's NotFound for a SKU used to escape as the command's error (one SKU, no line,
    no field); it is a finding on its event, every unknown SKU named, and nothing changes."""
    with _ctx(home) as ctx:
        text = _bad_skus(ctx)
        before = live_fingerprint(ctx.db)
    f = tmp_path / "skus.yaml"
    f.write_text(text)
    for argv in (("whatif", str(f), "--planner", "playbook", "--json"), ("apply", str(f), "--json")):
        capsys.readouterr()
        code = _cli(home, "twin", *argv)
        out = capsys.readouterr()
        assert code == 2, out
        assert "Traceback" not in out.err
        report = json.loads(out.out)
        assert report["ok"] is False
        found = [(x["code"], x["line"], x["field"]) for x in report["findings"]]
        assert found == [
            ("unknown_sku", 3, "events.0.demand_surge.skus"),
            ("unknown_sku", 4, "events.1.inbound_delay.sku"),
        ]
        assert "'NOPE-1', 'NOPE-2'" in report["findings"][0]["message"]
    with _ctx(home) as ctx:
        assert live_fingerprint(ctx.db) == before


def test_http_whatif_names_unknown_skus_in_its_findings(actx: AppContext, home: Path) -> None:
    import yaml
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import ApiKeyStore, Role, create_key

    keys = ApiKeyStore(actx.db, home=home)
    operator = create_key(keys, "otto", [Role.OPERATOR])
    client = TestClient(create_app(actx, keys=keys))
    scenario = yaml.safe_load(_bad_skus(actx))
    before = live_fingerprint(actx.db)
    for path in ("/v1/twin/whatif", "/v1/twin/apply"):
        r = client.post(path, json={"scenario": scenario}, headers={"Authorization": f"Bearer {operator}"})
        assert r.status_code == 404, r.text
        fields = [f["field"] for f in r.json()["details"]["findings"]]
        assert fields == ["events.0.demand_surge.skus", "events.1.inbound_delay.sku"]
    assert live_fingerprint(actx.db) == before


def test_a_long_list_of_unknown_skus_names_five_and_says_there_may_be_more(actx: AppContext) -> None:
    from services.scenarios import stage_calls
    from tools.base import ToolEnv

    skus = ", ".join(f"NOPE-{i}" for i in range(40))
    parsed = parse_scenario(f"name: x\nevents:\n  - demand_surge: {{skus: [{skus}], factor: 2, days: 1}}\n")
    calls, findings = stage_calls(parsed, ToolEnv(actx.adapters, actx.twin_clock))
    assert calls == []
    assert [f.code for f in findings] == ["unknown_sku"]
    assert findings[0].message == "no products 'NOPE-0', 'NOPE-1', 'NOPE-2', 'NOPE-3', 'NOPE-4' and perhaps more"
