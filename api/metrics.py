"""Prometheus metrics of one app instance: request counts and latencies by route, pending approvals.

Each :func:`api.app.create_app` gets its own registry (no module-level collectors), so two apps in
one process — tests, or an admin app beside the public one — never share or double-register series.
Routes are labelled by their template (``/v1/orders/{order_id}``), never the raw path, so label
cardinality stays bounded whatever clients send.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match

from api.bootstrap import AppContext

UNMATCHED = "unmatched"


class Metrics:
    def __init__(self, actx: AppContext) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "orderops_http_requests",
            "HTTP requests handled, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "orderops_http_request_duration_seconds",
            "Time to handle a request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "orderops_approvals_pending",
            "Approval requests waiting for a decision (not expired), read at scrape time.",
            registry=self.registry,
        )

        def pending_count() -> float:
            try:
                return float(len(actx.guard.approvals.list_pending()))
            except Exception:  # a scrape must not fail because the database blinked
                return math.nan

        self.pending.set_function(pending_count)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = route_template(request)
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(request.method, route).observe(time.perf_counter() - started)


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in request.app.router.routes:  # not routed yet (an error before routing)
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED
