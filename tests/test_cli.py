"""The `orderops` command line: seeding, the read commands, and clear errors that change nothing."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from api.cli import run
from core.db import make_database

SMALL = ["--orders", "300", "--nodes", "4", "--skus", "40", "--customers", "5"]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDEROPS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    code = run([*argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def orders_digest(url: str) -> list[tuple[object, ...]]:
    db = make_database(url=url)
    with db.engine.connect() as conn:
        rows = conn.execute(text("select id, status, node_id, version from orders order by id")).all()
    db.dispose()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    "empty_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_init_then_read_commands(cli_env: Path, empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_json(capsys, "--database-url", empty_db_url, "init", *SMALL)
    assert isinstance(summary, dict)
    assert summary["orders"] == 300

    state = run_json(capsys, "--database-url", empty_db_url, "network", "show")
    assert isinstance(state, dict)
    assert len(state["nodes"]) == 4
    assert sum(state["orders_by_status"].values()) == 300
    for node in state["nodes"]:
        inv = node["inventory"]
        assert 0 <= inv["reserved"] <= inv["on_hand"]
        assert inv["atp"] == inv["on_hand"] - inv["reserved"]

    node_id = state["nodes"][0]["id"]
    listed = run_json(
        capsys,
        "--database-url",
        empty_db_url,
        "orders",
        "list",
        "--node",
        node_id,
        "--status",
        "allocated",
        "--limit",
        "5",
    )
    assert isinstance(listed, dict)
    assert listed["total"] >= len(listed["orders"])
    assert all(o["node_id"] == node_id and o["status"] == "allocated" for o in listed["orders"])

    some = listed["orders"][0]["id"] if listed["orders"] else "ORD-0000001"
    shown = run_json(capsys, "--database-url", empty_db_url, "orders", "show", some)
    assert isinstance(shown, dict)
    assert shown["order"]["id"] == some
    assert shown["order"]["lines"]


def test_unknown_order_is_a_clear_error(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", *SMALL, "--json"]) == 0
    before = orders_digest(f"sqlite:///{cli_env / 'orderops.db'}")
    capsys.readouterr()
    assert run(["orders", "show", "ORD-NOPE"]) == 2
    err = capsys.readouterr().err
    assert "not_found" in err
    assert "ORD-NOPE" in err
    assert orders_digest(f"sqlite:///{cli_env / 'orderops.db'}") == before


def test_init_refuses_to_overwrite_a_network_without_reset(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", *SMALL, "--json"]) == 0
    url = f"sqlite:///{cli_env / 'orderops.db'}"
    before = orders_digest(url)
    assert run(["init", *SMALL, "--seed", "7", "--json"]) == 3
    assert "--reset" in capsys.readouterr().err
    assert orders_digest(url) == before
    assert run(["init", *SMALL, "--seed", "7", "--reset", "--json"]) == 0
    assert orders_digest(url) != before


def test_schema_newer_than_code_is_refused_and_left_alone(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", *SMALL, "--json"]) == 0
    url = f"sqlite:///{cli_env / 'orderops.db'}"
    db = make_database(url=url)
    with db.engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '9999_from_the_future'"))
    db.dispose()
    before = orders_digest(url)
    capsys.readouterr()
    assert run(["network", "show"]) == 3
    assert "schema_too_new" in capsys.readouterr().err
    # init must not try to migrate it either
    assert run(["init", *SMALL, "--reset"]) == 3
    assert "9999_from_the_future" in capsys.readouterr().err
    assert orders_digest(url) == before


def test_database_without_schema_says_to_run_init(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["network", "show"]) == 3
    assert "orderops init" in capsys.readouterr().err


def test_bad_option_value_is_a_usage_error(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["orders", "list", "--status", "teleported"]) == 2
    assert "teleported" in capsys.readouterr().err


def _moved_orders(home: Path, node: str) -> int:
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    with db.engine.connect() as conn:
        moved = conn.execute(
            text("select count(*) from orders where version > 1 and node_id is not null and node_id != :n"),
            {"n": node},
        ).scalar_one()
    db.dispose()
    return int(moved)


def test_demo_runs_end_to_end(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "demo", "--orders", "600")
    assert isinstance(out, dict)
    demo_home = Path(out["home"])
    assert demo_home == cli_env / "demo"  # its own installation, never the real one
    assert not (cli_env / "orderops.db").exists()
    assert out["seed"]["orders"] == 600
    assert out["network"]["nodes"]
    scenario = out["scenario"]
    assert scenario["plan"]["planner"] == "playbook:node_congestion"
    assert scenario["plan"]["steps"] >= 1
    optimizer = scenario["plan"]["optimizer"]  # how the congestion plan was made, and how far from the bound
    assert optimizer["method"] in {"highs", "greedy"}  # greedy's plan stands when the optimiser's is no better
    assert optimizer["gap"] is not None, optimizer
    assert optimizer["gap"] >= 0  # its size depends on how long the solve may take: the bench reports it
    assert optimizer["bound"] <= optimizer["objective"]
    assert scenario["status"] == "completed"
    assert scenario["verified"] is True
    assert scenario["audit"]["chain_ok"]
    done = sum(len(s["done"]) if isinstance(s["done"], list) else int(s["done"]) for s in scenario["steps"])
    assert done > 0
    assert _moved_orders(demo_home, scenario["node"]) == done
    intake = scenario["intake"]  # a clean X12 and PDF become orders; the e-mail with an unknown part waits
    assert len(intake["created_orders"]) >= 1
    assert len(intake["review_items"]) >= 1
    assert "x12-855" in intake["documents"][0]["acks"]
    db = make_database(url=f"sqlite:///{demo_home / 'orderops.db'}")
    with db.engine.connect() as conn:
        events = [r[0] for r in conn.execute(text("select event_type from audit_events order by seq"))]
    db.dispose()
    # bulk reroutes wait for a person, then run once each
    assert events.count("awaiting_approval") == events.count("approved") >= 1
    assert events.count("executed") >= scenario["plan"]["steps"]
    # a second demo replaces the default SQLite twin instead of failing
    assert run(["demo", "--orders", "300", "--json"]) == 0


def test_demo_with_deny_executes_only_what_policy_allowed_alone(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_json(capsys, "demo", "--orders", "600", "--approve", "deny")
    assert isinstance(out, dict)
    demo_home = Path(out["home"])
    scenario = out["scenario"]
    assert scenario["status"] != "completed"
    executed = [s for s in scenario["steps"] if s["status"] == "executed"]
    done = sum(len(s["done"]) if isinstance(s["done"], list) else int(s["done"]) for s in executed)
    assert _moved_orders(demo_home, scenario["node"]) == done
    db = make_database(url=f"sqlite:///{demo_home / 'orderops.db'}")
    with db.engine.connect() as conn:
        events = [r[0] for r in conn.execute(text("select event_type from audit_events order by seq"))]
    db.dispose()
    assert "rejected" in events
    assert "approved" not in events


@pytest.mark.parametrize(
    ("tamper", "kind"),
    [
        ("update audit_events set tool = 'cancel_orders' where seq = 2", "edited"),
        ("delete from audit_events where seq = 3", "deleted"),
        (
            "update audit_events set seq = 99 where seq = 2; update audit_events set seq = 2 where seq = 4; "
            "update audit_events set seq = 4 where seq = 99",
            "reordered",
        ),
    ],
)
def test_audit_verify_detects_tampering(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tamper: str, kind: str
) -> None:
    assert run(["demo", "--orders", "600", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("ORDEROPS_HOME", str(cli_env / "demo"))  # look around the demo's installation
    assert run(["audit", "verify"]) == 0
    assert "intact" in capsys.readouterr().out
    db = make_database(url=f"sqlite:///{cli_env / 'demo' / 'orderops.db'}")
    with db.engine.begin() as conn:
        for stmt in tamper.split("; "):
            conn.execute(text(stmt))
    db.dispose()
    assert run(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out
    assert kind in out


def test_audit_export_writes_every_event_as_jsonl(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["demo", "--orders", "600", "--json"]) == 0
    monkeypatch.setenv("ORDEROPS_HOME", str(cli_env / "demo"))
    target = cli_env / "trail.jsonl"
    assert run(["audit", "export", "--out", str(target)]) == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert {"proposed", "awaiting_approval", "approved", "executed"} <= {r["event_type"] for r in lines}
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
    assert all(b["prev_hash"] == a["row_hash"] for a, b in itertools.pairwise(lines))
