"""`orderops serve`: run the HTTP API under uvicorn on one :class:`AppContext`.

The context is built once from the CLI's settings (the schema must be current: a server never
migrates), handed to :func:`api.app.create_app`, and closed when the server stops.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from api.bootstrap import open_context
from core.settings import Settings


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the API to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 8080,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API (approvals, network reads, decisions, audit, health and metrics)."""
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    actx = open_context(settings)
    try:
        app = create_app(actx, workers=settings.worker_threads)
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=True)
        uvicorn.Server(config).run()
    finally:
        actx.close()
