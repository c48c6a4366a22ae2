"""`orderops approvals tick|outbox` run the e-mail chase from the command line, and the CLI refuses to
start with LangSmith tracing switched on unless the installation allows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import run
from tests.test_cli import SMALL, cli_env, run_json

__all__ = ["cli_env"]


def test_tick_and_outbox_from_the_cli(cli_env: Path, empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "--database-url", empty_db_url, "init", *SMALL)
    report = run_json(capsys, "--database-url", empty_db_url, "approvals", "tick")
    assert isinstance(report, dict)
    assert report["mailed"] == []
    assert report["sent"] == 0
    assert run_json(capsys, "--database-url", empty_db_url, "approvals", "outbox", "--dead") == []
    capsys.readouterr()
    assert run(["--database-url", empty_db_url, "approvals", "tick"]) == 0
    assert "no SMTP server configured" in capsys.readouterr().out


def test_langsmith_tracing_is_refused_at_start_up(
    cli_env: Path, empty_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_json(capsys, "--database-url", empty_db_url, "init", *SMALL)
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    capsys.readouterr()
    assert run(["--database-url", empty_db_url, "network", "show", "--json"]) == 3
    err = capsys.readouterr().err
    assert "LANGSMITH_TRACING" in err
    assert "Traceback" not in err
    monkeypatch.setenv("ORDEROPS_ALLOW_THIRD_PARTY_TRACING", "true")
    shown = run_json(capsys, "--database-url", empty_db_url, "network", "show")
    assert isinstance(shown, dict)
    assert json.dumps(shown)
