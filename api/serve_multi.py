"""``orderops serve --workers N`` (N > 1): N uvicorn processes answering on one listening socket.

One Python process tops out at one core (the GIL): on two cores ``GET /healthz`` stopped near
900 req/s and ``POST /v1/decide/route`` near 280/s with the second core idle. uvicorn's own
supervisor (:class:`uvicorn.supervisors.Multiprocess`) binds the socket once, spawns N children that
accept on it, restarts a child that dies or stops answering its health pings, and on SIGTERM/SIGINT
stops them all (each finishes its requests and runs the app's shutdown) before it returns.

What each process holds, and why:

* every child builds its own app on its own :class:`~api.bootstrap.AppContext` in
  :func:`child_app` (children are *spawned*, not forked: a forked database pool or DBOS thread would
  be shared by accident). Each has its own decision snapshot (checked against the database every
  0.25 s) and decision log, flushed by the app's shutdown; the context is closed after it.
* the supervisor holds one more context and runs the in-process DBOS job pool
  (``settings.worker_threads``) once for the whole server, not once per child: a child that is
  restarted does not take the jobs in hand down with it, and N children do not mean N times the
  job concurrency the setting asked for.

The children are new interpreters, so the settings travel to them: those the CLI set explicitly
(``--database-url``, or whatever a caller built its :class:`Settings` with) go as JSON in
:data:`SETTINGS_ENV`; the rest each child reads from the environment and ``.env`` as the parent did.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from prometheus_client import Gauge
from pydantic import SecretStr
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from api.bootstrap import AppContext, open_context
from core.errors import ConfigurationError
from core.settings import Settings

SETTINGS_ENV = "ORDEROPS_SERVE_SETTINGS"
"""Environment variable carrying the parent's explicitly set settings (JSON) to the children.
Settings ignores it (no field has this name)."""

CHILD_APP = "api.serve_multi:child_app"

log = logging.getLogger("uvicorn.error")

LOOP_CHOICES = ("auto", "uvloop", "asyncio")
HTTP_CHOICES = ("auto", "httptools", "h11")


def stack(loop: str = "auto", http: str = "auto") -> tuple[str, str]:
    """uvicorn's ``loop`` and ``http`` settings: ``auto`` is uvloop and httptools when installed
    (C event loop and parser: less server CPU per request than asyncio and h11, which stay the
    fallback). Named explicitly, so the choice is the same in every process and a bench can
    compare the two stacks. An unknown name, or one that is not installed, is a ConfigurationError."""
    if loop not in LOOP_CHOICES:
        raise ConfigurationError(f"--loop must be one of {', '.join(LOOP_CHOICES)}, not {loop!r}")
    if http not in HTTP_CHOICES:
        raise ConfigurationError(f"--http must be one of {', '.join(HTTP_CHOICES)}, not {http!r}")
    if loop == "auto":
        loop = "uvloop" if _installed("uvloop") else "asyncio"
    if http == "auto":
        http = "httptools" if _installed("httptools") else "h11"
    for name in (loop, http):
        if name in ("uvloop", "httptools") and not _installed(name):
            raise ConfigurationError(f"{name} is not installed (pip install {name}, or choose the fallback)")
    return loop, http


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def settings_to_env(settings: Settings) -> str:
    """The fields ``settings`` was built with explicitly, as JSON a child can build the same
    :class:`Settings` from (secrets in clear: the child needs their values, not ``**********``)."""
    names = settings.model_fields_set
    data: dict[str, Any] = settings.model_dump(mode="json", include=names)
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    return json.dumps(data)


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """The settings of a child: the parent's explicit ones (:data:`SETTINGS_ENV`) over the environment."""
    raw = (os.environ if environ is None else environ).get(SETTINGS_ENV, "{}")
    return Settings(**json.loads(raw))


def child_app() -> FastAPI:
    """uvicorn's app factory in each child: an app on a context of its own, with no job pool (the
    supervisor runs it), that closes its context after the app's own shutdown (decision log flushed).

    A child that cannot build its app exits with uvicorn's STARTUP_FAILURE, which stops the
    supervisor: any other exit would be restarted, failing the same way, forever."""
    try:
        return _build_child_app()
    except Exception:
        log.exception("server process %d could not build the app", os.getpid())
        sys.exit(STARTUP_FAILURE)


def _build_child_app() -> FastAPI:
    from api.app import create_app
    from core import tracing

    settings = settings_from_env()
    tracing.configure(settings, os.environ)  # as the CLI root does in the parent
    actx = open_context(settings)
    try:
        app = create_app(actx, workers=0)
        _label_process(app)
    except BaseException:
        actx.close()
        raise
    _close_after_lifespan(app, actx)
    return app


def _label_process(app: FastAPI) -> None:
    """``orderops_server_process{pid=...} 1`` on ``/metrics``: each process counts only its own
    requests, so a scrape says which process answered (nothing per request)."""
    metrics = getattr(app.state, "metrics", None)
    registry = getattr(metrics, "registry", None)
    if registry is None:
        return
    gauge = Gauge(
        "orderops_server_process",
        "The server process that answered this scrape (orderops serve --workers N runs N; each counts its own).",
        ["pid"],
        registry=registry,
    )
    gauge.labels(str(os.getpid())).set(1)


def _close_after_lifespan(app: FastAPI, actx: AppContext) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(a) as state:
                yield state
        finally:
            actx.close()

    app.router.lifespan_context = lifespan


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """uvicorn's bound socket, marked as TCP (``proto`` 6) for the children.

    ``Config.bind_socket`` leaves ``proto`` at 0; accepted sockets inherit it, and asyncio sets
    ``TCP_NODELAY`` only on sockets that say IPPROTO_TCP (uvloop sets it on every TCP connection;
    the fix keeps the asyncio fallback right). Without it every keep-alive response
    after the first waited ~40 ms for the client's delayed ACK (measured: healthz p50 44 ms with two
    processes vs 1.5 ms with one; uvicorn issue #3149). Same descriptor, same bound address."""
    sock = config.bind_socket()
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
        return sock
    tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    tcp.set_inheritable(True)
    return tcp


def serve_workers(
    settings: Settings,
    *,
    workers: int,
    host: str,
    port: int,
    log_level: str,
    loop: str = "auto",
    http: str = "auto",
) -> None:
    """Run ``workers`` HTTP processes under uvicorn's supervisor until SIGTERM/SIGINT; the job pool
    (``settings.worker_threads``) runs here in the supervisor. Raises ConfigurationError when the
    children could not start (schema, settings, port), as ``orderops serve`` does with one process.
    ``loop`` and ``http``: uvicorn's, as :func:`stack` chooses them."""
    loop, http = stack(loop, http)
    actx = open_context(settings)  # checks the schema before any child starts
    pool: Any = None
    try:
        if settings.worker_threads > 0:
            from api.worker_dbos import DbosPool  # DBOS loads only where it runs

            pool = DbosPool(actx, settings.worker_threads)
            pool.start()
        os.environ[SETTINGS_ENV] = settings_to_env(settings)
        config = uvicorn.Config(
            CHILD_APP,
            factory=True,
            host=host,
            port=port,
            log_level=log_level,
            access_log=True,
            workers=workers,
            loop=loop,
            http=http,
        )
        supervisor = Multiprocess(config, sockets=[listening_socket(config)])
        supervisor.run()
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            raise ConfigurationError("a server process failed to start (see its log above); the server stopped")
    finally:
        if pool is not None:
            pool.stop()
        actx.close()
