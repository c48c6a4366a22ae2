"""`orderops profiles ...` and the live A/B report from the command line (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import make_clock
from api.cli import run
from core.clock import FixedClock
from core.db import make_database
from core.settings import Settings
from services.decisions import DecisionService
from tests.test_cli import SMALL
from tests.test_sourcing_live import execute
from tests.tools.conftest import net_on
from tools.adapters.protocols import OrderFilter
from tools.twin import TwinView


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDEROPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDEROPS_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    capsys.readouterr()
    got = run([*argv, "--json"])
    out = capsys.readouterr()
    assert got == code, out.err
    return json.loads(out.out) if code == 0 else out.err


def test_profiles_from_the_command_line_and_the_live_report(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", *SMALL, "--orders", "600", "--json"]) == 0
    admin = cli(capsys, "keys", "create", "--name", "ada", "--role", "admin")["key"]
    viewer = cli(capsys, "keys", "create", "--name", "vic", "--role", "viewer")["key"]

    made = cli(capsys, "profiles", "create", "carbon", "--set", "carbon_per_kg=25", "--note", "greener", "--key", admin)
    assert (made["name"], made["version"], made["weights"]["carbon_per_kg"]) == ("carbon", 1, 25.0)
    assert "admin" in cli(capsys, "profiles", "activate", "carbon", "--key", viewer, code=2)
    assert "API key" in cli(capsys, "profiles", "activate", "carbon", code=2)
    assert cli(capsys, "profiles", "activate", "carbon@v1", "--key", admin)["profile"]["name"] == "carbon"
    listed = cli(capsys, "profiles", "list")
    assert listed["active"] == "carbon@v1"
    assert [p["name"] for p in listed["profiles"]] == ["default", "carbon"]
    back = cli(capsys, "profiles", "rollback", "--key", admin)
    assert (back["profile"]["name"], back["action"], back["by"]) == ("default", "rollback", "ada")
    assert "no experiment" in cli(capsys, "profiles", "ab", code=2)

    exp = cli(capsys, "profiles", "experiment-start", "--b", "carbon", "--mde", "2", "--key", admin)
    assert (exp["a_name"], exp["b_name"], exp["status"]) == ("default", "carbon", "running")

    # live traffic: decisions through the service the API uses, carried out, then shipped
    settings = Settings(home=home)
    db = make_database(settings)
    try:
        clock = make_clock(settings, db)
        net = net_on(db, FixedClock(clock.now()))  # the gateway's clock, frozen at the start
        svc = DecisionService.build(db, net.adapters, clock)
        view = TwinView.load(net.adapters, clock)
        for order in net.adapters.oms.list_orders(OrderFilter(statuses=["created"]), limit=80, with_lines=True):  # type: ignore[list-item]
            execute(net, view, order, svc.decide(order.id))
    finally:
        db.dispose()

    report = cli(capsys, "eval", "ab", "--live", "--resamples", "300")
    assert report["experiment"]["id"] == exp["id"]
    assert [a["profile"] for a in report["arms"]] == ["default@v0", "carbon@v1"]
    assert all(a["measured"] > 0 for a in report["arms"])
    cost = report["difference"]["cost_to_serve"]
    assert cost["low"] <= cost["mean"] <= cost["high"]
    assert report["horizon_per_arm"] >= 2
    stopped = cli(capsys, "profiles", "experiment-stop", "--key", admin)
    assert stopped["status"] == "stopped"
    capsys.readouterr()
    assert run(["profiles", "ab", "--resamples", "300"]) == 0
    text = capsys.readouterr().out
    assert "B - A" in text
    assert "fixed horizon" in text
