"""``orderops watch --once`` (issue 18): a scenario staged with ``orderops twin apply`` and approved
shows on the live twin, and watching raises the alert about the staged node (a run opened, once:
watching again the same day is a duplicate); a quiet twin raises nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import network_meta, open_context
from api.cli import run as cli
from api.cli_network import seed_network
from core.netgen import NetworkSpec
from core.settings import Settings
from guardrails.calls import Actor
from services.watch import history_for, watch_twin
from tools.gateway import RunLedger

APPROVER = Actor(kind="user", id="boss-1", roles=frozenset({"approver"}))


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("watch")
    seed_network(
        Settings(home=home, clock="network"), NetworkSpec(orders=300, skus=80), reset=False, show_progress=False
    )
    return home


@pytest.fixture
def home(seeded_home: Path, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(seeded_home, target)
    return target


def _cli_json(home: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    old = {k: os.environ.get(k) for k in ("ORDEROPS_HOME", "ORDEROPS_CLOCK")}
    os.environ.update({"ORDEROPS_HOME": str(home), "ORDEROPS_CLOCK": "network"})
    capsys.readouterr()
    try:
        code = cli([*argv, "--json"])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code == 0, capsys.readouterr()
    return json.loads(capsys.readouterr().out)


def test_a_quiet_twin_raises_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli_json(home, capsys, "watch", "--once")
    assert out["history"] is True
    assert out["findings"] == []
    assert out["results"] == []


def test_twin_apply_then_watch_once_raises_the_alert_about_the_staged_node(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = "DC-DALLAS"
    scenario = tmp_path / "closure.yaml"
    scenario.write_text(f"name: {node} closes\nevents:\n  - node_status: {{node: {node}, status: closed}}\n")
    staged = _cli_json(home, capsys, "twin", "apply", str(scenario))
    [outcome] = staged["outcomes"]
    assert outcome["status"] == "awaiting_approval"
    assert _cli_json(home, capsys, "watch", "--once")["findings"] == [], "nothing shows before it is approved"

    ctx = open_context(Settings(home=home, clock="network"))
    try:
        ctx.gateway.decide(outcome["approval_id"], approver=APPROVER, decision="approve")
        done = ctx.gateway.execute_approved(
            outcome["approval_id"], actor=APPROVER, run=RunLedger(run_id=str(staged["run_id"]))
        )
        assert done.status == "executed"
    finally:
        ctx.close()

    out = _cli_json(home, capsys, "watch", "--once")
    [finding] = out["findings"]
    assert (finding["kind"], finding["labels"], finding["signal"]) == ("node_closure", {"node": node}, "node_status")
    [result] = out["results"]
    assert result["outcome"] == "started"
    [alert] = out["alerts"]
    assert alert["labels"] == {"node": node}

    again = _cli_json(home, capsys, "watch", "--once")
    [repeat] = again["results"]
    assert (repeat["outcome"], repeat["run_id"]) == ("duplicate", result["run_id"])


def test_a_capacity_cut_and_a_carrier_outage_are_findings_with_their_evidence(home: Path) -> None:
    from core.domain import CarrierStatus

    ctx = open_context(Settings(home=home, clock="network"))
    try:
        history = history_for(network_meta(ctx.db).get("spec"))
        assert history is not None
        wms = ctx.adapters.wms
        node = wms.get_node("DC-RENO")
        wms.set_daily_capacity(node.id, node.daily_capacity // 2)
        carrier = ctx.adapters.carriers.list_carriers()[0]
        ctx.adapters.carriers.set_carrier_status(carrier.id, CarrierStatus.OUTAGE, outage_states=["TX", "OK"])
        found = {f.signal: f for f in watch_twin(ctx.adapters, history)}
    finally:
        ctx.close()
    cut = found["node_capacity"]
    assert cut.labels == {"node": "DC-RENO"}
    assert cut.value == node.daily_capacity // 2
    assert isinstance(cut.threshold, float)
    assert cut.value < cut.threshold
    down = found["carrier_status"]
    assert down.labels == {"carrier": carrier.id, "states": "OK,TX"}
    assert down.kind.value == "carrier_outage"


def test_a_spec_this_version_cannot_read_means_no_history_not_a_crash() -> None:
    assert history_for(None) is None
    assert history_for("{not json") is None
    assert history_for('{"seed": 1}') is None
    spec = NetworkSpec(nodes=3, skus=20, orders=10).to_json()
    newer = spec[:-1] + ', "some_future_field": 1}'
    history = history_for(newer, days=60)
    assert history is not None
    assert len(history.nodes) == 3
