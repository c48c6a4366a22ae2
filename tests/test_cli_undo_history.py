"""`orderops runs undo` and `orderops orders history` end to end through the CLI (issue 15,
problem 10): a closure run approved with a key, its orders' history, then the undo — which reopens
the node first and, run again, moves every order back — each step approved like any other."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_safety import cli, cli_json, congested, home, new_key, rows  # noqa: F401


def nodes(home: Path, ids: list[str]) -> dict[str, str]:  # noqa: F811
    found = rows(home, "select id, node_id from orders")
    return {str(i): str(n) for i, n in found if i in set(ids)}


def test_undo_puts_a_closure_back_and_history_tells_why(
    congested: str,  # noqa: F811
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = new_key(home, "amir", "approver")
    report = cli_json(capsys, "run", f"{congested} is closed", "--approve", "auto", "--key", key)
    assert report["status"] in ("completed", "partially_completed"), report
    moved = sorted(o for o, what in report["orders"].items() if what.endswith(": done") and o.startswith("ORD-"))
    assert moved
    assert congested not in set(nodes(home, moved).values())

    history = cli_json(capsys, "orders", "history", moved[0])
    (change,) = history["changes"]
    assert change["run_id"] == report["run_id"]
    assert change["change"].startswith(f"{congested} -> ")
    assert change["approver"] == "amir"

    first = cli_json(capsys, "runs", "undo", report["run_id"], "--approve", "auto", "--key", key)
    assert first["status"] == "completed", first
    assert rows(home, f"select status from nodes where id = '{congested}'") == [("congested",)]  # as it was
    second = cli_json(capsys, "runs", "undo", report["run_id"], "--approve", "auto", "--key", key)
    assert second["status"] == "completed", second
    assert set(nodes(home, moved).values()) == {congested}
    assert [c["run_id"] for c in cli_json(capsys, "orders", "history", moved[0])["changes"]] == [
        report["run_id"],
        second["run_id"],
    ]


def test_undo_parks_by_default_and_bad_ids_are_clear_errors(
    congested: str,  # noqa: F811
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = new_key(home, "amir", "approver")
    report = cli_json(capsys, "run", f"{congested} is congested", "--approve", "auto", "--key", key)
    parked = cli_json(capsys, "runs", "undo", report["run_id"])
    assert parked["status"] == "awaiting_approval"
    assert cli(capsys, "runs", "undo", "run_nope")[0] == 2
    assert cli(capsys, "orders", "history", "ORD-NOPE")[0] == 2
