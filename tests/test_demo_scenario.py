"""The demo stages its congestion through a scenario file (issue 18, item 2): the bundled
api/demo_congestion.yaml, with its node filled in, staged on a twin by services.scenarios; and the
``node_status``/``node_backlog`` events it uses, including what a bad file does (nothing)."""

from __future__ import annotations

from string import Template

import pytest

from api.demo import SCENARIO_FILE
from core.db import Database
from core.domain import NodeStatus
from services.scenarios import live_fingerprint, parse_scenario, stage_directly
from tests.tools.conftest import Net, build_net
from tools.base import ToolEnv


@pytest.fixture
def sqlite_net(sqlite_db: Database) -> Net:
    return build_net(sqlite_db)


def _node(net: Net) -> str:
    return net.other_dc(net.busiest_dc())


def test_the_demo_file_congests_the_node_with_three_days_of_backlog(sqlite_net: Net) -> None:
    node = _node(sqlite_net)
    parsed = parse_scenario(Template(SCENARIO_FILE.read_text()).substitute(node=node))
    assert parsed.scenario is not None
    assert parsed.findings == []
    env = ToolEnv(sqlite_net.adapters, sqlite_net.clock)
    assert stage_directly(parsed, env) == []
    after = sqlite_net.adapters.wms.get_node(node)
    assert after.status is NodeStatus.CONGESTED
    assert after.backlog == after.daily_capacity * 3
    # staged again: the backlog already holds three days, so nothing more is added
    assert stage_directly(parsed, env) == []
    assert sqlite_net.adapters.wms.get_node(node).backlog == after.daily_capacity * 3


def test_an_unknown_node_or_a_bad_backlog_stages_nothing(sqlite_net: Net) -> None:
    env = ToolEnv(sqlite_net.adapters, sqlite_net.clock)
    node = _node(sqlite_net)
    before = live_fingerprint(sqlite_net.db)
    text = (
        f"name: x\nevents:\n  - node_status: {{node: {node}, status: congested}}\n"
        "  - node_backlog: {node: DC-NOWHERE, days: 3}\n"
    )
    findings = stage_directly(parse_scenario(text), env)
    assert [f.code for f in findings] == ["unknown_node"]
    bad = parse_scenario(f"name: x\nevents:\n  - node_backlog: {{node: {node}, days: -1}}\n")
    assert bad.scenario is None
    assert bad.findings
    assert stage_directly(bad, env) == bad.findings
    assert live_fingerprint(sqlite_net.db) == before
