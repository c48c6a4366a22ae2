"""An approval decided in one process executes in another (issue 15, problem 2).

The preview hash once covered ``facts.ship_to_states`` — a frozenset — in string-hash order, so a
process with another ``PYTHONHASHSEED`` saw "the network changed since approval" for the same
network. These tests run each side in its own interpreter with its own seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, drop_postgres, fresh_postgres_url

HASH_SCRIPT = """
from guardrails.approvals import preview_hash
from guardrails.calls import CallFacts
states = ["CA", "TX", "NY", "FL", "WA", "IL", "GA", "NJ", "OH", "PA", "AZ", "CO", "NV", "OR", "UT"]
facts = CallFacts.model_validate(dict(
    order_count=3, order_value=0, cost_delta=0, max_tier=None, carriers=(), target_node_id="DC-A",
    target_node_status=None, hazmat=False, hazmat_by_air=False, cold_chain=False, ship_to_states=frozenset(states)))
print(preview_hash({"facts": facts}), preview_hash(facts))
"""


def _python(code_or_args: list[str], seed: int, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **(env or {}), "PYTHONHASHSEED": str(seed)}
    done = subprocess.run(
        [sys.executable, *code_or_args], cwd=REPO, env=full, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_preview_hash_is_the_same_under_every_hash_seed() -> None:
    hashes = {_python(["-c", HASH_SCRIPT], seed) for seed in (0, 1, 2, 3, 17)}
    assert len(hashes) == 1, hashes


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_approval_decided_in_another_process_executes_there_once(backend: str, tmp_path: Path) -> None:
    url = fresh_postgres_url() if backend == "postgres" else None
    env = {"ORDEROPS_HOME": str(tmp_path), "ORDEROPS_CLOCK": "network", "ORDEROPS_ORDERS": "3000"}
    if url:
        env["DATABASE_URL"] = url
    try:
        init = subprocess.run(
            [sys.executable, "-c", "from api.cli import run; raise SystemExit(run(['init', '--json']))"],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONHASHSEED": "5"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert init.returncode == 0, init.stderr[-3000:]
        approval_id = _python(["-m", "tests.guardrails.xproc", "propose"], 1, env)
        first = json.loads(_python(["-m", "tests.guardrails.xproc", "approve", approval_id], 2, env))
        assert first["status"] == "executed", first
    finally:
        if url:
            drop_postgres(url)
