"""Shared fixtures: a global guard against outside network access, and databases on both backends.

``db`` is parametrized over SQLite and PostgreSQL. PostgreSQL tests carry the ``postgres`` marker;
they skip when no server answers, except under CI (``CI=true``), where a missing server fails the
run so that "skipped" can never pass for "passed".
"""

from __future__ import annotations

import _socket
import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from core.db import Database, make_database, migrate

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
# The twin's "today" is pinned to the seeded business date in tests, as in evals: outcomes that depend
# on lateness must not change with the day the suite runs. Tests of the wall-clock default set
# ``clock="system"`` explicitly.
os.environ.setdefault("ORDEROPS_CLOCK", "network")

PG_ADMIN_URL = os.environ.get("ORDEROPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --- no outside network -------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_local(host: Any) -> bool:
    if host in (None, "", "localhost") or (isinstance(host, str) and host.endswith(".localhost")):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


# The patched methods are typed on ``_socket.socket``: typeshed declares connect/connect_ex there, so
# replacements typed on the ``socket.socket`` subclass would not be assignable to them.
def _guard_address(sock: _socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise OSError(f"tests must not reach the outside network (tried {address!r})")


def _connect(self: _socket.socket, address: Any) -> None:
    _guard_address(self, address)
    _real_connect(self, address)


def _connect_ex(self: _socket.socket, address: Any) -> int:
    _guard_address(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host.decode() if isinstance(host, bytes) else host):
        raise socket.gaierror(f"tests must not resolve outside hosts ({host!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo


# --- databases ----------------------------------------------------------------------------------

_pg_available: bool | None = None


def _postgres_available() -> bool:
    global _pg_available
    if _pg_available is None:
        try:
            eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with eng.connect() as conn:
                conn.execute(text("select 1"))
            eng.dispose()
            _pg_available = True
        except Exception:
            _pg_available = False
    return _pg_available


def require_postgres() -> None:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but {PG_ADMIN_URL} does not answer")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}")


def fresh_postgres_url() -> str:
    """Create an empty database for one test; the caller drops it with :func:`drop_postgres`."""
    require_postgres()
    name = f"orderops_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of the backend named by ``request.param`` (default sqlite)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'orderops.db'}"
        return
    url = fresh_postgres_url()
    try:
        yield url
    finally:
        drop_postgres(url)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if backend == "sqlite":
        database = make_database(url=f"sqlite:///{tmp_path / 'orderops.db'}")
        migrate(database)
        yield database
        database.dispose()
        return
    url = fresh_postgres_url()
    database = make_database(url=url)
    try:
        migrate(database)
        yield database
    finally:
        database.dispose()
        drop_postgres(url)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty SQLite database (for tests that are not about the backend)."""
    database = make_database(url=f"sqlite:///{tmp_path / 'orderops.db'}")
    migrate(database)
    yield database
    database.dispose()
