"""`orderops serve`: run the HTTP API under uvicorn.

With one worker (the default) the app runs in this process on one :class:`AppContext`, built from
the CLI's settings (the schema must be current: a server never migrates), handed to
:func:`api.app.create_app`, and closed when the server stops. With ``--workers N`` (N > 1) uvicorn's
supervisor runs N processes on one socket, each with its own context, and the job pool runs once,
in the supervisor (:mod:`api.serve_multi`).

The event loop and HTTP parser are uvloop and httptools when they are installed (they are
dependencies; ``--loop asyncio --http h11`` is the pure-Python fallback uvicorn would use without
them): on this 2-core machine they cut the server's CPU per request (see :func:`api.serve_multi.stack`).
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from api.bootstrap import open_context
from api.serve_multi import HTTP_CHOICES, LOOP_CHOICES, stack
from core.settings import Settings


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the API to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 8080,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="HTTP processes sharing the port (one Python process uses one core; about one per core). "
            "The job pool runs once whatever the number.",
        ),
    ] = 1,
    loop: Annotated[
        str, typer.Option(help=f"Event loop: {'|'.join(LOOP_CHOICES)} (auto: uvloop when installed, else asyncio).")
    ] = "auto",
    http: Annotated[
        str, typer.Option(help=f"HTTP parser: {'|'.join(HTTP_CHOICES)} (auto: httptools when installed, else h11).")
    ] = "auto",
) -> None:
    """Serve the HTTP API (approvals, network reads, decisions, audit, health and metrics)."""
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    loop, http = stack(loop, http)
    if workers > 1:
        from api.serve_multi import serve_workers

        serve_workers(settings, workers=workers, host=host, port=port, log_level=log_level, loop=loop, http=http)
        return
    actx = open_context(settings)
    try:
        app = create_app(actx, workers=settings.worker_threads)
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=True, loop=loop, http=http)
        uvicorn.Server(config).run()
    finally:
        actx.close()
