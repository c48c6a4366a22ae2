"""The demo never touches a real installation, and a reset never silently undoes what runs did
(issue 15, problem 3: `orderops demo` re-seeded an installation, undoing 300 executed reroutes while
the runs and audit rows stayed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from api.cli import run
from core.db import make_database
from tests.test_cli import SMALL, cli_env, orders_digest  # noqa: F401


def test_the_demo_leaves_the_configured_database_alone(
    cli_env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = cli_env / "real.db"
    url = f"sqlite:///{real}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert run(["init", *SMALL, "--json"]) == 0
    before = orders_digest(url)
    assert run(["demo", "--orders", "300", "--json"]) == 0
    assert orders_digest(url) == before
    assert (cli_env / "demo" / "orderops.db").exists()
    capsys.readouterr()
    # the demo refuses a home whose network it did not create
    monkeypatch.delenv("DATABASE_URL")
    assert run(["init", *SMALL, "--json"]) == 0
    assert run(["demo", "--orders", "300", "--home", str(cli_env), "--json"]) == 3


def test_reset_of_a_network_that_runs_acted_on_needs_a_yes(cli_env: Path) -> None:  # noqa: F811
    assert run(["init", *SMALL, "--json"]) == 0
    url = f"sqlite:///{cli_env / 'orderops.db'}"
    db = make_database(url=url)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "insert into runs (id, thread_id, kind, status, created_at, updated_at) "
                "values ('run_x', 'exception:run_x', 'goal', 'completed', current_timestamp, current_timestamp)"
            )
        )
    db.dispose()
    before = orders_digest(url)
    assert run(["init", *SMALL, "--seed", "7", "--reset", "--json"]) == 3
    assert orders_digest(url) == before
    assert run(["init", *SMALL, "--seed", "7", "--reset", "--yes", "--json"]) == 0
    assert orders_digest(url) != before
