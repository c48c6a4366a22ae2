"""`orderops audit verify` and `orderops audit anchor` on a real installation: the composition root
anchors appends on its own, and a rewrite of the chain together with its head fails verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.auth import ApiKeyStore, Role, create_key
from api.bootstrap import open_context
from api.cli import run
from core.db import make_database
from core.settings import Settings
from guardrails.audit import AuditEvent, AuditTrail, EventType

SMALL = ["--orders", "60", "--nodes", "3", "--skus", "20", "--customers", "3"]


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    monkeypatch.setenv("ORDEROPS_AUDIT_ANCHOR_EVERY", "4")
    for var in ("DATABASE_URL", "ORDEROPS_DATABASE_URL", "ORDEROPS_AUDIT_SIGNING_KEY", "ORDEROPS_AUDIT_ANCHOR_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = run(["audit", "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)


def _append(n: int) -> None:
    actx = open_context(Settings())
    try:
        for i in range(n):
            actx.guard.audit.append(AuditEvent(event_type=EventType.NOTE, reasons=[f"note {i}"]))
    finally:
        actx.close()


def _sql(home: Path, *statements: str) -> None:
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    with db.engine.begin() as conn:
        for stmt in statements:
            conn.execute(text(stmt))
    db.dispose()


def test_the_cli_anchors_and_catches_a_truncation_with_the_head_moved(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init", *SMALL, "--json"]) == 0
    _append(6)  # the composition root anchors seq 1 and 5 on its own
    lines = (home / "audit-anchors.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 5]
    capsys.readouterr()
    assert run(["audit", "anchor"]) == 0
    assert "seq 6" in capsys.readouterr().out
    code, report = _verify(capsys)
    assert code == 0
    assert (report["ok"], report["anchored"], report["anchors_checked"], report["last_anchored_seq"]) == (
        True,
        True,
        3,
        6,
    )

    # the forger cuts the last two rows and moves the head back: the chain alone is consistent
    _sql(
        home,
        "delete from audit_events where seq > 4",
        "update audit_heads set last_seq = 4, last_hash = (select row_hash from audit_events where seq = 4)",
    )
    code, report = _verify(capsys)
    assert code == 1
    assert (report["ok"], report["kind"], report["first_bad_seq"]) == (False, "truncated", 5)
    capsys.readouterr()
    assert run(["audit", "verify"]) == 1
    assert "TAMPERED" in capsys.readouterr().out
    assert run(["audit", "anchor"]) != 0  # a tampered trail is never vouched for
    assert len((home / "audit-anchors.jsonl").read_text().splitlines()) == 3


def test_the_cli_catches_a_wiped_trail_and_an_unanchored_one(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", *SMALL, "--json"]) == 0
    _append(2)
    _sql(home, "delete from audit_events", "delete from audit_heads")
    code, report = _verify(capsys)
    assert (code, report["kind"]) == (1, "wiped")

    # the forger removes the anchor log too and writes a fresh trail with the real code (but not the
    # installation's key): a trail without any checkpoint is itself a finding
    (home / "audit-anchors.jsonl").unlink()
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    AuditTrail(db).append(AuditEvent(event_type=EventType.NOTE))
    db.dispose()
    code, report = _verify(capsys)
    assert (code, report["kind"]) == (1, "unanchored")


def test_the_http_verify_route_holds_the_chain_to_the_anchors(home: Path) -> None:
    assert run(["init", *SMALL, "--json"]) == 0
    _append(3)
    actx = open_context(Settings())
    try:
        keys = ApiKeyStore.under(home)
        admin = {"Authorization": f"Bearer {create_key(keys, 'ada', [Role.ADMIN])}"}
        with TestClient(create_app(actx, keys=keys)) as client:
            report = client.get("/v1/audit/verify", headers=admin).json()
            assert (report["ok"], report["anchored"], report["last_anchored_seq"]) == (True, True, 1)
            _sql(home, "delete from audit_events", "delete from audit_heads")
            report = client.get("/v1/audit/verify", headers=admin).json()
            assert (report["ok"], report["kind"]) == (False, "wiped")
    finally:
        actx.close()
