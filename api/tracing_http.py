"""An ``http.server`` span per API request: method, route template and status code only.

The route template (``/v1/orders/{order_id}``), never the path with its ids filled in or the query,
so a span names which endpoint, not whose order. Spans of the run, tool and model calls the request
causes hang under it (:mod:`core.tracing`).

:class:`HttpSpanMiddleware` is plain ASGI (not ``app.middleware("http")``, whose task group and
streamed answer cost CPU on every request, traced or not). With tracing off :func:`core.tracing.span`
records nothing, so this layer costs a few microseconds.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import route_template
from core import tracing


class HttpSpanMiddleware:
    """The request in a server span named ``HTTP <method>``; the route template and the status the
    answer started with are added when the app is done (an exception marks the span as an error,
    by type, and adds neither)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.span(f"HTTP {method}", **{"http.request.method": method}) as span:
            await self.app(scope, receive, send_status)
            tracing.annotate(span, **{"http.route": route_template(scope), "http.response.status_code": status})
