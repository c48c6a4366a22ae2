"""`orderops eval capture RUN_ID`: a real run on the embedded network (run -> a person approves ->
execute) saved as an eval scenario and replayed by the eval runner (`eval run --suite captured`),
with personal data redacted; bad input is a clear error with an exit code.

Each test drives the real CLI on a SQLite installation in a temporary home with a congested DC; the
core round trip also runs on a PostgreSQL installation (the capture reads it, the replay copy is
SQLite as always)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from core.db import make_database, migrate
from evals.capture import CapturedScenario, load_scenarios
from tests.conftest import BACKENDS, drop_postgres, fresh_postgres_url
from tests.graphs.support import congest
from tests.test_cli_safety import cli, cli_json, congested, home, new_key  # noqa: F401
from tests.tools.conftest import build_net


@pytest.fixture(params=BACKENDS)
def installation(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """``congested`` on either backend: the installation in ``home`` (SQLite) or on a fresh PostgreSQL
    database that ``DATABASE_URL`` names; its congested DC."""
    if request.param == "sqlite":
        yield request.getfixturevalue("congested")
        return
    url = fresh_postgres_url()
    try:
        db = make_database(url=url)
        migrate(db)
        node, _ = congest(build_net(db))
        db.dispose()
        monkeypatch.setenv("DATABASE_URL", url)
        yield node
        assert not (home / "orderops.db").exists(), "the CLI used a SQLite installation, not PostgreSQL"
        db = make_database(url=url)
        with db.engine.connect() as conn:
            assert conn.execute(text("select count(*) from runs")).scalar_one() >= 1, "no run reached PostgreSQL"
        db.dispose()
    finally:
        drop_postgres(url)


def approved_run(
    capsys: pytest.CaptureFixture[str], root: Path, *run_args: str, reject: bool = False, leave_out_first: bool = False
) -> str:
    """A congestion run parked for approval, then approved (or rejected, or approved but for its first
    step) by a person with a key: its run id."""
    parked = cli_json(capsys, "run", *run_args)
    assert parked["status"] == "awaiting_approval", parked
    key = new_key(root, "amir", "approver")
    how = ["reject", parked["run_id"], "--reason", "not today"] if reject else ["approve", parked["run_id"]]
    if leave_out_first:
        assert len(parked["approvals"]) > 1
        how += ["--leave-out", parked["approvals"][0]["approval_id"], "--reason", "not that one"]
    done = cli_json(capsys, "runs", *how, "--key", key)["run"]
    assert done["status"] in (("rejected", "nothing_to_do") if reject else ("completed", "partially_completed")), done
    return str(parked["run_id"])


def capture(capsys: pytest.CaptureFixture[str], run_id: str, folder: Path) -> CapturedScenario:
    """``orderops eval capture RUN_ID --out FOLDER``, read back as the scenario it wrote."""
    path = Path(cli_json(capsys, "eval", "capture", run_id, "--out", str(folder))["path"])
    return CapturedScenario.model_validate(yaml.safe_load(path.read_text()))


def eval_run(folder: Path, tmp_path: Path) -> list[str]:
    """``orderops eval run --suite captured`` over FOLDER (one worker, results and report under
    ``tmp_path``), as CLI arguments."""
    where = ["--captured-dir", str(folder), "--results-db", f"sqlite:///{tmp_path / 'results.db'}"]
    return ["eval", "run", "--suite", "captured", *where, "--workers", "1", "--out", str(tmp_path / "report")]


def replay(capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path) -> Any:
    """:func:`eval_run` through the CLI: the run's JSON summary."""
    return cli_json(capsys, *eval_run(folder, tmp_path))


def test_a_captured_run_replays_through_the_eval_runner_and_passes(
    installation: str,
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = installation
    run_id = approved_run(capsys, home, f"{node} is congested")
    folder = tmp_path / "captured"
    got = cli_json(capsys, "eval", "capture", run_id, "--out", str(folder))
    assert got["snapshot"] == "run_start"
    sc = CapturedScenario.model_validate(yaml.safe_load(Path(got["path"]).read_text()))
    assert sc.run_id == run_id
    assert sc.goal == f"{node} is congested"
    assert sc.expected.writes
    assert sc.expected.writes[0].tool == "reroute_orders"
    assert [d.decision for d in sc.expected.decisions] == ["approve"] * len(sc.expected.decisions)
    assert sc.expected.decisions[0].approver == "amir"
    assert sc.snapshot.nodes[node].status == "congested"
    assert sc.snapshot.undo, "the run's reroute is undone on the replay copy: the network as of its start"
    assert list(load_scenarios(folder)) == [sc.id]

    report = replay(capsys, folder, tmp_path)
    metrics = report["metrics"]["captured"]
    assert metrics["tasks"] == 1
    assert metrics["success_rate"] == 1.0, (tmp_path / "report" / "report.md").read_text()
    assert metrics["unapproved_writes"] == 0


def test_a_replay_that_does_something_else_fails_with_the_difference(
    congested: str,  # noqa: F811
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The expectation is what the run did: a capture edited to say it moved other orders fails."""
    from evals.env import fresh_database
    from evals.runner import EvalConfig, captured_case

    run_id = approved_run(capsys, home, f"{congested} is congested")
    folder = tmp_path / "captured"
    path = Path(cli_json(capsys, "eval", "capture", run_id, "--out", str(folder))["path"])
    data = yaml.safe_load(path.read_text())
    data["expected"]["writes"][0]["orders"] = data["expected"]["writes"][0]["orders"][1:]
    path.write_text(yaml.safe_dump(data))
    config = EvalConfig(suites=("captured",), captured_dir=folder)
    sc = CapturedScenario.model_validate(data)
    fresh_database(tmp_path / "work", sc.spec, "warm").dispose()  # the template, as run_tasks makes it
    result = captured_case(sc.id, config, tmp_path / "work", 0)
    assert not result.passed
    assert any(f.startswith("expected writes [('reroute_orders',") for f in result.failures), result.failures


def test_personal_data_in_the_alert_is_redacted_as_in_the_audit_trail(
    congested: str,  # noqa: F811
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alert = tmp_path / "alert.json"
    alert.write_text(
        json.dumps(
            {
                "id": "a-1",
                "kind": "node_congestion",
                "labels": {"node": congested},
                "summary": f"{congested} backlog; on call: jane.doe@example.com, 555-867-5309",
            }
        )
    )
    run_id = approved_run(capsys, home, "--alert", str(alert))
    path = Path(cli_json(capsys, "eval", "capture", run_id, "--out", str(tmp_path / "c"))["path"])
    text = path.read_text()
    assert "jane.doe@example.com" not in text
    assert "867-5309" not in text
    assert "[email:" in text
    assert "[phone:" in text
    assert congested in text, "identifiers stay"


def test_unknown_or_unfinished_runs_are_clear_errors(
    congested: str,  # noqa: F811
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _out, err = cli(capsys, "eval", "capture", "run_nope", "--out", str(tmp_path))
    assert code == 2
    assert "run_nope" in err
    assert "Traceback" not in err
    parked = cli_json(capsys, "run", f"{congested} is congested")
    code, _out, err = cli(capsys, "eval", "capture", parked["run_id"], "--out", str(tmp_path))
    assert code == 2
    assert "awaiting_approval" in err
    assert "once it has finished" in err
    assert not list(tmp_path.glob("*.yaml"))


def test_a_rejected_run_replays_as_rejected(
    congested: str,  # noqa: F811
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A person said no in production: the replay says no too, and nothing may execute."""
    run_id = approved_run(capsys, home, f"{congested} is congested", reject=True)
    folder = tmp_path / "captured"
    sc = capture(capsys, run_id, folder)
    assert sc.expected.writes == []
    assert {d.decision for d in sc.expected.decisions} == {"reject"}
    assert sc.snapshot.as_of == "run_start"
    report = replay(capsys, folder, tmp_path)
    assert report["metrics"]["captured"]["success_rate"] == 1.0


def test_a_captured_file_that_does_not_validate_is_named_in_a_clear_error(
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "broken.yaml").write_text("id: x\nsnapshot: 3\n")
    code, _out, err = cli(capsys, *eval_run(tmp_path, tmp_path))
    assert code == 2
    assert "broken.yaml" in err
    assert "Traceback" not in err


def test_mixed_decisions_replay_step_by_step(
    installation: str,
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One step left out, the others approved: the replay decides each request as production did
    (matched by its tool and orders), so the same orders move and the left-out ones stay."""
    run_id = approved_run(capsys, home, f"{installation} is congested", leave_out_first=True)
    folder = tmp_path / "captured"
    sc = capture(capsys, run_id, folder)
    assert sorted({d.decision for d in sc.expected.decisions}) == ["approve", "reject"]
    assert len(sc.expected.writes) == len(sc.expected.decisions) - 1
    report = replay(capsys, folder, tmp_path)
    assert report["metrics"]["captured"]["success_rate"] == 1.0, (tmp_path / "report" / "report.md").read_text()
