from __future__ import annotations

from sqlalchemy import inspect

from core.db import SCHEMA_HEAD, Database, check_schema


def test_migrated_database_has_network_tables_and_passes_check(db: Database) -> None:
    names = set(inspect(db.engine).get_table_names())
    assert {"orders", "order_lines", "inventory", "nodes", "carriers", "shipments"} <= names
    check_schema(db)
    assert SCHEMA_HEAD
