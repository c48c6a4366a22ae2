"""The issue's end-to-end check (issue 15, "Done when"): on a fresh `orderops init`, `orderops run
"DC-... is closed" --json` parks with its run id and says how to approve; approving through the
HTTP API with a key, from another process (`orderops serve`, its own hash seed), executes each step
exactly once and completes the run; `orderops runs undo` then puts the orders back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO
from tests.test_cli_safety import cli, cli_json, home, new_key, rows  # noqa: F401


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(pred: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_closure_parks_is_approved_over_http_by_another_process_and_undone(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    small = ["--orders", "600", "--nodes", "5", "--skus", "60", "--customers", "6"]
    assert cli(capsys, "init", *small, "--json")[0] == 0
    state = cli_json(capsys, "network", "show")
    dc = max((n for n in state["nodes"] if n["id"].startswith("DC-")), key=lambda n: n["load"]["unreleased_orders"])
    parked = cli_json(capsys, "run", f"{dc['id']} is closed")
    assert parked["status"] == "awaiting_approval"
    run_id = parked["run_id"]
    assert any(f"/v1/runs/{run_id}/approval" in how for how in json.dumps(parked).split('"'))
    before = dict(rows(home, "select id, node_id from orders"))

    key = new_key(home, "ana", "approver")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(ORDEROPS_HOME=str(home), PYTHONHASHSEED="11", ORDEROPS_CLOCK=os.environ.get("ORDEROPS_CLOCK", "network"))
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert _wait_until(up, 120), server.stderr.read().decode() if server.stderr and server.poll() else "no server"
        auth = {"Authorization": f"Bearer {key}"}
        card = httpx.get(f"{base}/v1/runs/{run_id}/approval", headers=auth, timeout=30).json()
        assert len(card["steps"]) == len(parked["approvals"])
        r = httpx.post(f"{base}/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=auth, timeout=60)
        assert r.status_code == 200, r.text

        def finished() -> bool:
            got = httpx.get(f"{base}/v1/runs/{run_id}", headers=auth, timeout=30).json()
            return str(got["status"]) in ("completed", "partially_completed", "failed")

        assert _wait_until(finished, 300)
    finally:
        server.terminate()
        server.wait(30)
    assert rows(home, f"select status from runs where id = '{run_id}'") == [("completed",)]
    executed = Counter(
        call
        for call, result in rows(
            home,
            f"select call_id, result from audit_events where run_id = '{run_id}' "
            "and event_type = 'executed' and tool in ('reroute_orders', 'set_node_status')",
        )
        if not json.loads(result).get("replayed")
    )
    assert len(executed) == len(parked["approvals"])
    assert set(executed.values()) == {1}
    moved = [o for o, n in rows(home, "select id, node_id from orders") if before[o] != n]
    assert moved

    # Undo: the node is reopened first, then (a second undo) every order goes back.
    for _ in range(2):
        undo = cli_json(capsys, "runs", "undo", run_id, "--approve", "auto", "--key", key)
        assert undo["status"] == "completed", undo
    after = dict(rows(home, "select id, node_id from orders"))
    assert {o: after[o] for o in moved} == {o: before[o] for o in moved}
