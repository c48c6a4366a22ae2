"""`orderops` is safe to run for real: nothing is approved without a named person, identity comes
from an API key, deciding carries the run on, and bad input is a clear error with an exit code.

Each test drives the real CLI (``api.cli.run``) on a SQLite installation in a temporary home with a
congested DC, as an operator would.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.auth import create_key
from api.bootstrap import mark_demo_database, open_context
from api.cli import run
from core.db import make_database, migrate
from core.settings import Settings
from guardrails.calls import Actor
from tests.conftest import REPO
from tests.graphs.support import congest
from tests.tools.conftest import build_net

WRITE_TABLES = ("runs", "approval_requests", "approval_decisions", "audit_events", "idempotency_keys")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    for var in ("DATABASE_URL", "ORDEROPS_DATABASE_URL", "ORDEROPS_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path


@pytest.fixture
def congested(home: Path) -> str:
    """A seeded installation in ``home`` whose busiest DC is congested; returns that DC."""
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    migrate(db)
    node, _ = congest(build_net(db))
    db.dispose()
    return node


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())  # Rich wraps messages at the terminal's width


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    with db.engine.connect() as conn:
        found = [tuple(r) for r in conn.execute(text(sql))]
    db.dispose()
    return found


def counts(home: Path) -> dict[str, int]:
    return {t: int(rows(home, f"select count(*) from {t}")[0][0]) for t in WRITE_TABLES}


def orders(home: Path) -> list[tuple[Any, ...]]:
    return rows(home, "select id, status, node_id, version from orders order by id")


def new_key(home: Path, name: str, role: str) -> str:
    return create_key(home, name, [role])


def events(home: Path) -> list[str]:
    return [r[0] for r in rows(home, "select event_type from audit_events order by seq")]


# --- 1. nothing is approved by itself ----------------------------------------------------------------


def test_run_parks_by_default_and_says_how_to_approve(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = orders(home)
    parked = cli_json(capsys, "run", f"{congested} is congested")
    assert parked["status"] == "awaiting_approval"
    assert parked["run_id"]
    assert parked["approvals"]
    for card in parked["approvals"]:
        assert f"orderops approvals approve {card['approval_id']} --key $ORDEROPS_API_KEY" in parked["how_to_approve"]
    # Nobody approved anything; nothing that needed approval ran.
    assert "approved" not in events(home)
    assert rows(home, "select count(*) from approval_decisions")[0][0] == 0
    gated = {c["approval_id"] for c in parked["approvals"]}
    assert len(gated) == rows(home, "select count(*) from approval_requests where status = 'pending'")[0][0]
    executed = [s for s in parked["steps"] if s["status"] in ("executed", "replayed")]
    if not executed:
        assert orders(home) == before
    shown = cli_json(capsys, "runs", "show", parked["run_id"])
    assert shown["status"] == "awaiting_approval"


def test_auto_approval_needs_an_approver_key(congested: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before, written = orders(home), counts(home)
    code, _, err = cli(capsys, "run", f"{congested} is congested", "--approve", "auto")
    assert code == 2
    assert "API key" in err
    assert (orders(home), counts(home)) == (before, written)  # refused before anything started

    viewer = new_key(home, "vic", "viewer")
    code, _, err = cli(capsys, "run", f"{congested} is congested", "--approve", "auto", "--key", viewer)
    assert code == 2
    assert "not approver" in err
    assert (orders(home), counts(home)) == (before, written)

    approver = new_key(home, "ana", "approver")
    report = cli_json(capsys, "run", f"{congested} is congested", "--approve", "auto", "--key", approver)
    assert report["status"] == "completed"
    assert report["decisions"]
    assert {d["approver"] for d in report["decisions"]} == {"ana"}
    assert "demo-approver" not in json.dumps(report)


def test_only_the_demos_own_database_has_a_built_in_approver(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    mark_demo_database(db)
    db.dispose()
    report = cli_json(capsys, "run", f"{congested} is congested", "--approve", "auto")
    assert report["status"] == "completed"
    assert {d["approver"] for d in report["decisions"]} == {"demo-approver"}


def test_auto_approval_reads_the_key_from_the_environment(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDEROPS_API_KEY", new_key(home, "ana", "approver"))
    report = cli_json(capsys, "run", f"{congested} is congested", "--approve", "auto")
    assert report["status"] == "completed"
    assert {d["approver"] for d in report["decisions"]} == {"ana"}


def test_prompt_at_end_of_input_is_a_clear_error_and_decides_nothing(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key(home, "ana", "approver")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = cli(capsys, "run", f"{congested} is congested", "--approve", "prompt", "--key", key)
    assert code == 2
    assert "no answer at the prompt (end of input)" in err
    assert "stays waiting for approval" in err
    assert rows(home, "select status from runs") == [("awaiting_approval",)]
    assert rows(home, "select count(*) from approval_decisions")[0][0] == 0


# --- 2. identity from API keys ------------------------------------------------------------------------


def test_keys_create_list_revoke(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "keys", "list")
    assert code != 0
    assert "orderops init" in err  # keys live in the database: none yet is a clear error, not a traceback
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    migrate(db)
    made = cli_json(capsys, "keys", "create", "--name", "ana", "--role", "approver", "--expires-in-days", "30")
    key = made["key"]
    assert key.startswith("oo_")
    assert made["principal"] == "ana"
    assert made["expires_at"]
    listed = cli_json(capsys, "keys", "list")
    assert [(k["principal"], k["roles"], k["state"]) for k in listed] == [("ana", ["approver"], "active")]
    assert key not in json.dumps(listed)
    assert "key_hash" not in listed[0]
    stored = rows(home, "select key_id, key_hash, principal from api_keys")
    assert [(r[0], r[2]) for r in stored] == [(made["key_id"], "ana")]
    assert key not in repr(stored)
    db.dispose()

    assert cli(capsys, "keys", "revoke", made["key_id"])[0] == 0
    assert cli_json(capsys, "keys", "list")[0]["state"] == "revoked"
    code, _, err = cli(capsys, "approvals", "approve", "appr-x", "--key", key)
    assert code == 2
    assert "not valid" in err

    assert cli(capsys, "keys", "create", "--name", "bob", "--role", "emperor")[0] == 2
    assert cli(capsys, "keys", "revoke", "nope")[0] == 2


def test_approving_needs_a_key_not_a_self_asserted_name(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parked = cli_json(capsys, "run", f"{congested} is congested")
    approval_id = parked["approvals"][0]["approval_id"]
    code, _, err = cli(capsys, "approvals", "approve", approval_id, "--as", "anybody", "--role", "approver")
    assert code == 2
    assert "--as" in err  # no such option any more
    code, _, err = cli(capsys, "approvals", "approve", approval_id)
    assert code == 2
    assert "API key" in err
    assert rows(home, "select count(*) from approval_decisions")[0][0] == 0


def test_requester_cannot_approve_their_own_request(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    migrate(db)
    net = build_net(db)
    src = net.busiest_dc()
    ids = [o.id for o in net.movable(src)][:40]
    actx = open_context(Settings(home=home))  # the installation's own clocks, as the API would
    try:
        out = actx.gateway.propose(
            "reroute_orders",
            {"order_ids": ids, "to_node_id": net.other_dc(src), "reason": "congestion"},
            actor=Actor(kind="agent", id="planner", on_behalf_of="ana"),
            run=net.run(),
            idempotency_key="own-request",
        )
    finally:
        actx.close()
        db.dispose()
    assert out.status == "awaiting_approval"
    code, _, err = cli(capsys, "approvals", "approve", str(out.approval_id), "--key", new_key(home, "ana", "approver"))
    assert code == 2
    assert "may not approve" in err
    assert rows(home, "select status from approval_requests") == [("pending",)]
    # Another person may; the request belongs to no exception run, so there is nothing to carry on.
    decided = cli_json(capsys, "approvals", "approve", str(out.approval_id), "--key", new_key(home, "bo", "approver"))
    assert (decided["status"], decided["approver"], decided["run_report"]) == ("approved", "bo", None)


# --- 3. deciding carries the run on -------------------------------------------------------------------


def test_approve_carries_the_run_on_and_lists_show_preview_numbers(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parked = cli_json(capsys, "run", f"{congested} is congested")
    listed = cli_json(capsys, "approvals", "list")
    assert {a["id"] for a in listed} == {c["approval_id"] for c in parked["approvals"]}
    for a in listed:
        card = next(c for c in parked["approvals"] if c["approval_id"] == a["id"])
        assert a["numbers"]["orders"] == card["preview"]["affected"] > 0
        assert a["numbers"]["cost_delta"] == card["preview"]["cost_delta"]
        assert (a["numbers"]["late_before"], a["numbers"]["late_after"]) == (
            card["preview"]["late_before"],
            card["preview"]["late_after"],
        )
    code, out, _ = cli(capsys, "approvals", "list")
    assert code == 0
    assert "late before -> after" in out

    key = new_key(home, "ana", "approver")
    last: dict[str, Any] = {}
    for card in parked["approvals"]:
        last = cli_json(capsys, "approvals", "approve", card["approval_id"], "--key", key)
        assert last["status"] == "approved"
        assert last["approver"] == "ana"
    # The last decision carried the run to its end, without `runs resume`.
    assert last["run"] == {"run_id": parked["run_id"], "status": "completed"}
    assert {s["status"] for s in last["run_report"]["steps"]} <= {"executed", "replayed"}
    assert rows(home, "select status from runs") == [("completed",)]
    assert events(home).count("executed") >= len(parked["approvals"])


def test_show_and_resume_skip_approvals_decided_elsewhere(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parked = cli_json(capsys, "run", f"{congested} is congested")
    cards = parked["approvals"]
    if len(cards) < 2:
        pytest.skip("the plan parked a single step")
    # Decided elsewhere (as the HTTP API does: through the gateway, the run not carried on).
    actx = open_context(Settings(home=home))
    try:
        actx.gateway.decide(
            cards[0]["approval_id"],
            approver=Actor(kind="user", id="eve", roles=frozenset({"approver"})),
            decision="approve",
        )
    finally:
        actx.close()

    shown = cli_json(capsys, "runs", "show", parked["run_id"])
    assert cards[0]["approval_id"] not in {c["approval_id"] for c in shown["approvals"]}
    assert shown["decided_not_carried_on"] == [cards[0]["approval_id"]]

    key = new_key(home, "ana", "approver")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * len(cards)))
    code, out, err = cli(capsys, "runs", "resume", parked["run_id"], "--approve", "prompt", "--key", key)
    assert code == 0, err
    assert out.count("Approve step") == len(cards) - 1  # the decided one is not asked again
    assert rows(home, "select status from runs") == [("completed",)]
    decided_by = dict(rows(home, "select request_id, approver_id from approval_decisions"))
    assert decided_by[cards[0]["approval_id"]] == "eve"
    assert set(decided_by.values()) == {"eve", "ana"}


def test_one_decision_per_incident_approves_every_step_and_carries_the_run_on(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parked = cli_json(capsys, "run", f"{congested} is congested")
    assert f"orderops runs approve {parked['run_id']} --key $ORDEROPS_API_KEY" in parked["how_to_approve"]
    cards = parked["approvals"]
    assert max(c["items"] for c in cards) <= parked["incident"]["orders"] <= sum(c["items"] for c in cards)
    assert parked["incident"]["late_before"] == sum(c["preview"]["late_before"] for c in cards)
    key = new_key(home, "ana", "approver")
    leave_out = cards[-1]["approval_id"] if len(cards) > 1 else None
    argv = ["runs", "approve", parked["run_id"], "--key", key]
    if leave_out:
        argv += ["--leave-out", leave_out, "--reason", "not that one"]
    out = cli_json(capsys, *argv)
    statuses = {d["approval_id"]: d["status"] for d in out["decision"]["decided"]}
    assert set(statuses) == {c["approval_id"] for c in cards}
    assert {a for a, st in statuses.items() if st == "rejected"} == ({leave_out} if leave_out else set())
    assert out["run"]["status"] in ("completed", "partially_completed")
    assert rows(home, "select status from runs")[0][0] == out["run"]["status"]
    # Decided once: nothing is left to decide, and a second decision is refused.
    assert cli(capsys, "runs", "approve", parked["run_id"], "--key", key)[0] == 2
    assert {r[0] for r in rows(home, "select approver_id from approval_decisions")} == {"ana"}


def test_rejecting_a_run_needs_a_reason_and_changes_nothing(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = orders(home)
    parked = cli_json(capsys, "run", f"{congested} is congested")
    key = new_key(home, "ana", "approver")
    assert cli(capsys, "runs", "reject", parked["run_id"], "--key", key)[0] == 2  # --reason is required
    out = cli_json(capsys, "runs", "reject", parked["run_id"], "--key", key, "--reason", "wait for the weekend")
    assert {d["status"] for d in out["decision"]["decided"]} == {"rejected"}
    assert out["run"]["status"] in ("rejected", "nothing_to_do", "partially_completed")
    executed = [s for s in parked["steps"] if s["status"] in ("executed", "replayed")]
    if not executed:
        assert orders(home) == before


# --- 4. clear errors, exit codes, no tracebacks -------------------------------------------------------


def test_unparsed_goal_is_bad_input_with_the_grammar(
    congested: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = counts(home)
    code, out, err = cli(capsys, "run", "blah blah")
    assert code == 2
    assert "understood goals" in err
    assert "Traceback" not in out + err
    assert counts(home) == written


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["orders", "list", "--promised-by", "23/11/2026"], 2, "YYYY-MM-DD"),
        (["audit", "export", "-o", "/nonexistent/dir/f.jsonl"], 2, "cannot write /nonexistent/dir/f.jsonl"),
        (["--database-url", "garbage", "network", "show"], 3, "not a database URL"),
        (["--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/x", "network", "show"], 3, "cannot reach"),
    ],
)
def test_bad_input_and_configuration_are_clear_errors(
    congested: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, says: str
) -> None:
    got, out, err = cli(capsys, *argv)
    assert got == code
    assert says in err
    assert "Traceback" not in out + err


def test_database_url_from_the_environment_is_checked_too(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "garbage")
    code, _, err = cli(capsys, "network", "show")
    assert code == 3
    assert "not a database URL" in err


# --- 5. version ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_comes_from_package_metadata(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    code, out, _ = cli(capsys, flag)
    assert code == 0
    assert out.strip() == f"orderops {importlib.metadata.version('orderops')}"


# --- 6. dry run ---------------------------------------------------------------------------------------


def test_dry_run_previews_and_writes_nothing(congested: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before, written = orders(home), counts(home)
    report = cli_json(capsys, "run", f"{congested} is congested", "--dry-run")
    assert report["dry_run"] is True
    assert report["steps"]
    assert any(s["policy"] == "require_approval" for s in report["steps"])
    for s in report["steps"]:
        if s["preview"] is not None:
            assert {"summary", "cost_delta", "late_before", "late_after", "affected"} <= set(s["preview"])
    assert (orders(home), counts(home)) == (before, written)
    code, out, _ = cli(capsys, "run", f"{congested} is congested", "--dry-run")
    assert code == 0
    assert "Dry run" in out
    assert (orders(home), counts(home)) == (before, written)


# --- end to end: park in one process, approve in another -----------------------------------------------

APPROVE_ALL = """
import json, sys
from api.cli import run
for approval_id in json.loads(sys.argv[1]):
    code = run(["approvals", "approve", approval_id, "--json"])
    if code != 0:
        raise SystemExit(code)
"""


def url_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    db = make_database(url=url)
    with db.engine.connect() as conn:
        found = [tuple(r) for r in conn.execute(text(sql))]
    db.dispose()
    return found


@pytest.mark.parametrize(
    "empty_db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_closure_parks_then_approvals_from_another_process_complete_it_once(
    home: Path, empty_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = empty_db_url
    monkeypatch.setenv("DATABASE_URL", url)
    small = ["--orders", "600", "--nodes", "5", "--skus", "60", "--customers", "6"]
    assert cli(capsys, "init", *small, "--json")[0] == 0
    state = cli_json(capsys, "network", "show")
    dc = max((n for n in state["nodes"] if n["id"].startswith("DC-")), key=lambda n: n["load"]["unreleased_orders"])
    parked = cli_json(capsys, "run", f"{dc['id']} is closed")
    assert parked["status"] == "awaiting_approval"
    assert parked["run_id"]
    ids = [c["approval_id"] for c in parked["approvals"]]
    assert ids

    key = new_key(home, "ana", "approver")
    env = {**os.environ, "ORDEROPS_HOME": str(home), "ORDEROPS_API_KEY": key, "PYTHONHASHSEED": "7"}
    done = subprocess.run(
        [sys.executable, "-c", APPROVE_ALL, json.dumps(ids)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert url_rows(url, "select status from runs") == [("completed",)]
    # Each approval decided once, by the key's principal, and executed exactly once.
    decided = url_rows(url, "select request_id, approver_id, decision from approval_decisions")
    assert sorted(decided) == sorted((i, "ana", "approve") for i in ids)
    executed = url_rows(
        url, "select call_id, count(*) from audit_events where event_type = 'executed' group by call_id"
    )
    assert executed
    assert all(n == 1 for _, n in executed)
    parked_calls = url_rows(url, "select call_id from approval_requests")
    assert {c for (c,) in parked_calls} <= {c for c, _ in executed}
