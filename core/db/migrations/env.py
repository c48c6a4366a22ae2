"""Alembic environment. Normally run through :func:`core.db.migrate.migrate`, which passes a
connection in; the URL branch serves the ``alembic`` command line and autogenerate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from core.db.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _run(conn)
else:
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")))
    with engine.begin() as connection:
        _run(connection)
