"""The HTTP service: :func:`create_app` builds a FastAPI app around one :class:`AppContext`.

Everything a request uses comes from the context (and the API key store) given here; the app holds
them on ``app.state`` and reads no settings or environment of its own, so tests build an app on any
database by building a different context. Errors become RFC 9457 problems in :mod:`api.problems`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import console, problems
from api.auth import ApiKeyStore
from api.bootstrap import AppContext
from api.http_guard import RequestGuard
from api.metrics import Metrics, MetricsMiddleware
from api.routes import alerts, approval_links, approvals, audit, decide, health, network, review, runs, twin, wismo
from api.tracing_http import HttpSpanMiddleware

API_VERSION = "1.0.0"


def create_app(actx: AppContext, *, keys: ApiKeyStore | None = None, workers: int = 0) -> FastAPI:
    """The OrderOps API on ``actx``. ``keys`` defaults to the ``api_keys`` table of ``actx.db``.

    ``workers``: jobs at once of an in-process DBOS worker (:class:`~api.worker_dbos.DbosPool`) running
    while the app serves (``orderops serve`` passes ``settings.worker_threads``); 0 leaves jobs to other workers.
    The app does not own ``actx``: whoever built the context closes it (``orderops serve`` does,
    after the server stops).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool: Any = None
        if workers > 0:
            from api.worker_dbos import DbosPool  # DBOS loads only where it runs

            pool = DbosPool(actx, workers)
        if pool is not None:
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()
            decide.flush_log(_app)  # the decision log's last batch (uvicorn re-raises SIGTERM: no atexit)

    app = FastAPI(
        lifespan=lifespan,
        title="OrderOps API",
        version=API_VERSION,
        description="Fulfillment exceptions and B2B order intake, with approvals and a tamper-evident audit "
        "trail. Authenticate with an API key (`Authorization: Bearer <key>` or `X-API-Key`). Errors are "
        "RFC 9457 problem details (`application/problem+json`) with a stable `code`.",
    )
    app.state.actx = actx
    app.state.keys = keys if keys is not None else ApiKeyStore.for_settings(actx.settings, actx.db)
    app.state.metrics = metrics = Metrics(actx)
    # Plain ASGI layers (api.metrics explains why not app.middleware("http")); the span is outside
    # the metrics, as it always was, so its duration covers them. Innermost, the decision route's
    # fast path (api.routes.decide.FastRoute): counted and traced like any route.
    app.add_middleware(decide.FastRoute)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(HttpSpanMiddleware)
    problems.install(app)
    for module in (health, wismo, network, approvals, approval_links, decide, audit, alerts, runs, review, twin):
        app.include_router(module.router)
    console.install(app)
    if actx.settings.slack_configured:
        from api import slack  # slack-bolt is loaded only where Slack is configured

        slack.install(app, actx)
    # Added last, so it is the outermost layer: sizes and credentials are checked before any body is read.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=actx.settings.max_body_bytes,
        keys=app.state.keys,
        slack=actx.settings.slack_configured,
    )
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """Add the :class:`~api.problems.Problem` schema that every error response refers to (no route
    returns it as a model, so FastAPI would not list it by itself)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
