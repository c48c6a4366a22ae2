"""`orderops run` / `orderops runs ...` on a Typer app that mounts them as api/cli.py will."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from api.auth import create_key
from api.cli_keys import keys_app
from api.cli_runs import run_command, runs_app
from core.db import make_database, migrate
from core.settings import Settings
from tests.graphs.support import congest, congestion_alert
from tests.tools.conftest import build_net


def _app(home: Path) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = Settings(home=home, database_url=None, llm_base_url=None, llm_model=None)

    app.command("run")(run_command)
    app.add_typer(runs_app, name="runs")
    app.add_typer(keys_app, name="keys")
    return app


def test_run_alert_with_auto_approval_as_a_keyed_approver_then_list_and_show(tmp_path: Path) -> None:
    db = make_database(url=f"sqlite:///{tmp_path / 'orderops.db'}")
    migrate(db)
    net = build_net(db)
    node, _ = congest(net)
    db.dispose()
    alert = tmp_path / "alert.json"
    alert.write_text(congestion_alert(node).model_dump_json())
    app, runner = _app(tmp_path), CliRunner()
    made = runner.invoke(app, ["keys", "create", "--name", "ana", "--role", "approver", "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)["key"]

    argv = ["run", "--alert", str(alert), "--approve", "auto", "--key", key, "--run-id", "cli-1", "--json"]
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["status"] == "completed"
    assert report["decisions"]
    assert all(d["approver"] == "ana" for d in report["decisions"])
    assert "Approving as ana" in res.stderr
    assert report["plan"]["planner"].startswith("playbook:")
    assert "no model is configured" in report["plan"]["summary"]

    listed = runner.invoke(app, ["runs", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in json.loads(listed.stdout)] == ["cli-1"]
    shown = runner.invoke(app, ["runs", "show", "cli-1", "--json"])
    assert json.loads(shown.stdout)["status"] == "completed"


def test_run_denied_then_resume_is_refused_cleanly(tmp_path: Path) -> None:
    db = make_database(url=f"sqlite:///{tmp_path / 'orderops.db'}")
    migrate(db)
    net = build_net(db)
    node, _ = congest(net)
    before = net.snapshot()
    app, runner = _app(tmp_path), CliRunner()
    key = create_key(tmp_path, "ana", ["approver"])
    argv = ["run", f"{node} is congested", "--approve", "deny", "--key", key, "--run-id", "cli-2", "--json"]
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["status"] in ("rejected", "partially_completed")
    rejected = [s for s in report["steps"] if s["status"] == "rejected"]
    assert rejected
    # Only steps the policy allowed on its own ran; nothing that needed approval did.
    moved = {oid for oid, what in report["orders"].items() if what.endswith(": done")}
    after = {r[0]: r for r in net.snapshot()[0]}
    assert {r[0] for r in before[0] if after[r[0]] != r} == moved
    # The run is over: resuming it decides nothing and changes nothing.
    again = runner.invoke(app, ["runs", "resume", "cli-2", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["status"] == report["status"]
    assert {r[0]: r for r in net.snapshot()[0]} == after
    db.dispose()


def test_run_without_approve_parks_and_resume_carries_on_decisions_made_elsewhere(tmp_path: Path) -> None:
    db = make_database(url=f"sqlite:///{tmp_path / 'orderops.db'}")
    migrate(db)
    net = build_net(db)
    node, _ = congest(net)
    before = net.snapshot()
    app, runner = _app(tmp_path), CliRunner()
    res = runner.invoke(app, ["run", f"{node} is congested", "--run-id", "cli-3", "--json"])
    assert res.exit_code == 0, res.output
    parked = json.loads(res.stdout)
    assert (parked["run_id"], parked["status"]) == ("cli-3", "awaiting_approval")
    assert parked["approvals"]
    assert not any(s["status"] in ("executed", "replayed") for s in parked["steps"])
    assert net.snapshot() == before  # parked: nothing moved

    # Resuming without --approve decides nothing either.
    res = runner.invoke(app, ["runs", "resume", "cli-3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "awaiting_approval"
    assert net.snapshot() == before
    db.dispose()
