"""The guardrail tables' migration: fresh upgrade, round trip, and refusing a newer schema."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from core.db import SCHEMA_HEAD, check_schema, make_database, migrate
from core.db.migrate import alembic_config, current_revision
from core.errors import ConfigurationError, SchemaTooNew

GUARDRAIL_TABLES = {"audit_events", "audit_heads", "idempotency_keys", "approval_requests", "approval_decisions"}

pytestmark = pytest.mark.parametrize(
    "empty_db_url",
    [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


def test_fresh_database_upgrades_to_head_and_passes_the_check(empty_db_url: str) -> None:
    db = make_database(url=empty_db_url)
    try:
        assert ScriptDirectory.from_config(alembic_config()).get_revision("0002_audit_approvals") is not None
        migrate(db)
        assert current_revision(db) == SCHEMA_HEAD
        assert set(inspect(db.engine).get_table_names()) >= GUARDRAIL_TABLES | {"orders"}
        check_schema(db)
    finally:
        db.dispose()


def test_downgrade_to_network_schema_and_back(empty_db_url: str) -> None:
    db = make_database(url=empty_db_url)
    try:
        migrate(db)
        cfg = alembic_config(db)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001_network")
        assert current_revision(db) == "0001_network"
        with pytest.raises(ConfigurationError, match="older schema"):
            check_schema(db)
        assert not GUARDRAIL_TABLES & set(inspect(db.engine).get_table_names())
        migrate(db)
        check_schema(db)
    finally:
        db.dispose()


def test_database_stamped_with_a_future_revision_is_refused(empty_db_url: str) -> None:
    db = make_database(url=empty_db_url)
    try:
        migrate(db)
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
        with pytest.raises(SchemaTooNew):
            check_schema(db)
        with pytest.raises(SchemaTooNew):
            migrate(db)
    finally:
        db.dispose()
