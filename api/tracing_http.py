"""An ``http.server`` span per API request: method, route template and status code only.

The route template (``/v1/orders/{order_id}``), never the path with its ids filled in or the query,
so a span names which endpoint, not whose order. Spans of the run, tool and model calls the request
causes hang under it (:mod:`core.tracing`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from api.metrics import route_template
from core import tracing


async def http_span(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """FastAPI ``http`` middleware: the request in a server span."""
    with tracing.span(f"HTTP {request.method}", **{"http.request.method": request.method}) as span:
        response = await call_next(request)
        tracing.annotate(
            span,
            **{"http.route": route_template(request), "http.response.status_code": response.status_code},
        )
        return response
