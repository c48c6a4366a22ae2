"""Migration 0018 on both backends: the retired polling queue's ``jobs`` columns go without losing a
row, the storm index replaces the old one, and the downgrade puts both back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from core.db import SCHEMA_HEAD, Database, check_schema, make_database, migrate
from core.db.migrate import alembic_config, current_revision

BEFORE = "0017_intake_ack_dedup"
POLLING = {"locked_by", "locked_until", "max_attempts"}

pytestmark = pytest.mark.parametrize(
    "empty_db_url",
    [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


def _downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def _indexes(db: Database, table: str) -> dict[str, list[str | None]]:
    return {str(ix["name"]): list(ix["column_names"]) for ix in inspect(db.engine).get_indexes(table)}


def _job_rows(db: Database) -> list[tuple[str, str, str | None]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, dedup_key FROM jobs ORDER BY id"))
        return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def test_upgrade_drops_the_polling_columns_keeps_the_rows_and_downgrades_back(empty_db_url: str) -> None:
    db = make_database(url=empty_db_url)
    try:
        migrate(db, BEFORE)
        now = datetime(2026, 12, 7, tzinfo=UTC)
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO jobs (id, kind, payload, dedup_key, serial_key, status, attempts, max_attempts, "
                    "run_after, locked_by, locked_until, created_at, updated_at) VALUES "
                    "('job_1', 'k', '{}', 'dk_1', 'run_1', 'running', 1, 5, :t, 'old-worker', :t, :t, :t)"
                ),
                {"t": now},
            )
        migrate(db)
        assert current_revision(db) == SCHEMA_HEAD
        check_schema(db)
        assert not POLLING & _columns(db, "jobs")
        assert _job_rows(db) == [("job_1", "running", "dk_1")]
        # The table copy SQLite makes keeps the job indexes and the unique dedup key.
        assert {"ix_jobs_claim", "ix_jobs_serial"} <= set(_indexes(db, "jobs"))
        uniques = inspect(db.engine).get_unique_constraints("jobs")
        assert [u["column_names"] for u in uniques] == [["dedup_key"]]
        alerts = _indexes(db, "alerts")
        assert alerts["ix_alerts_storm_outcome"] == ["storm_key", "outcome", "received_at"]
        assert "ix_alerts_storm" not in alerts

        _downgrade(db, BEFORE)
        assert current_revision(db) == BEFORE
        assert _columns(db, "jobs") >= POLLING
        assert _job_rows(db) == [("job_1", "running", "dk_1")]
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT max_attempts, locked_by FROM jobs")).one() == (1, None)
        alerts = _indexes(db, "alerts")
        assert alerts["ix_alerts_storm"] == ["storm_key", "received_at"]
        assert "ix_alerts_storm_outcome" not in alerts

        migrate(db)
        check_schema(db)
        assert not POLLING & _columns(db, "jobs")
    finally:
        db.dispose()
