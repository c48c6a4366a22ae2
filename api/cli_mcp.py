"""`orderops mcp`: serve OrderOps' tools, intake and records to MCP clients (:mod:`api.mcp_server`).

Over stdio (the default, what desktop chat clients launch) the server acts as the person whose API
key is given (``--key`` or ``ORDEROPS_API_KEY``) for as long as it runs; with ``--http`` it serves
streamable HTTP and each request's ``Authorization: Bearer <key>`` decides who acts. Either way every
call goes through the tool gateway and the audit trail, and nothing is approved here.
"""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from api import cli_common as cli
from api.auth import Role
from api.cli_keys import KeyOpt, key_store, principal_for
from api.mcp_server import OrderOpsMcp, build_server, http_app, serve_stdio


def mcp(
    ctx: typer.Context,
    key: KeyOpt = None,
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="With --http: the interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="With --http: the TCP port.")] = 8765,
    path: Annotated[str, typer.Option(help="With --http: the MCP endpoint's path.")] = "/mcp",
    log_level: Annotated[str, typer.Option(help="With --http: uvicorn log level.")] = "info",
) -> None:
    """MCP server: the tools through the gateway, intake, runs, approvals and audit.

    stdio by default, as the person of --key / ORDEROPS_API_KEY; --http serves streamable HTTP, where
    each request's API key (Authorization: Bearer) decides who acts. Writes may wait for a person's
    approval: the tool result says where to give it."""
    settings = cli.settings_of(ctx)
    keys = key_store(settings)
    who = None if http else principal_for(settings, key, role=Role.VIEWER, doing="serve MCP over stdio")
    with cli.app_context(settings) as actx:
        service = OrderOpsMcp(actx=actx, keys=keys, principal=who)
        if not http:
            anyio.run(serve_stdio, build_server(service))
            return
        import uvicorn

        cli.err_console.print(f"MCP over streamable HTTP at http://{host}:{port}{path} (API key per request)")
        config = uvicorn.Config(http_app(service, host=host, path=path), host=host, port=port, log_level=log_level)
        uvicorn.Server(config).run()
