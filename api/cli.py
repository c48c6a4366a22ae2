"""The ``orderops`` command line (Typer + Rich).

Every command that shows data takes ``--json`` so scripts can consume it; errors of the
:mod:`core.errors` hierarchy print their message and exit with status 2 (bad input or state) or 3
(configuration), never a traceback.

This module is the root and stays light: the commands live in the ``api.cli_*`` modules (and
:mod:`api.inbox.cli`), named in :data:`MOUNTS` and imported only when one runs
(:mod:`api.cli_lazy`), so ``orderops --help`` and ``--version`` import neither LangGraph nor
SQLAlchemy nor FastAPI nor the parsers. Keep heavy imports out of this module's top level;
``tests/test_cli_startup.py`` fails when one creeps in.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli_lazy import LazyGroup, Mount
from core.errors import ConfigurationError, OrderOpsError

if TYPE_CHECKING:
    from rich.console import Console

MOUNTS: tuple[Mount, ...] = (
    Mount("run", "api.cli_runs:run_command",
          "Handle one exception: triage, plan, simulate, policy, approval, execute, verify."),
    Mount("serve", "api.cli_serve:serve",
          "Serve the HTTP API (approvals, network reads, decisions, audit, health and metrics)."),
    Mount("worker", "api.cli_worker:worker",
          "Claim and run jobs (exception runs started by the API, alerts, approvals) until stopped."),
    Mount("init", "api.cli_network:init",
          "Create the database, migrate it to the current schema and seed a network."),
    Mount("demo", "api.cli_demo:demo",
          "The main job end to end in the demo's own installation: seed a network, congest a DC, let the "
          "agent propose a reroute, approve it, execute it once and show the audit trail."),
    Mount("network", "api.cli_network:network_app", "The fulfillment network (nodes, load, inventory)."),
    Mount("twin", "api.cli_twin:twin_app", "Scenarios on the digital twin: stage them, or play them as what-ifs."),
    Mount("watch", "api.cli_watch:watch",
          "Check the live twin against its history once (--once) or on an interval; findings become alerts."),
    Mount("forecast", "api.cli_forecast:forecast_app", "Demand forecasts and stock-out warnings: backtests."),
    Mount("orders", "api.cli_network:orders_app", "Orders in the OMS.",
          extra=(("history", "api.cli_ops:orders_history"), ("where", "api.cli_wismo:orders_where"))),
    Mount("audit", "api.cli_guard:audit_app", "The tamper-evident audit trail."),
    Mount("approvals", "api.cli_guard:approvals_app", "Approval requests waiting for a person."),
    Mount("runs", "api.cli_runs:runs_app", "Exception runs: list, show, resume.",
          extra=(("undo", "api.cli_ops:runs_undo"),)),
    Mount("eval", "api.cli_eval:eval_app", "Offline evals: suites, reports, comparisons, sourcing A/B replay."),
    Mount("profiles", "api.cli_profiles:profiles_app",
          "Sourcing profiles: versions, the active one, rollback, live A/B experiments."),
    Mount("inbox", "api.inbox.cli:inbox_app", "E-mail inbox for purchase orders (IMAP, Maildir, folder)."),
    Mount("intake", "api.cli_intake:intake_app",
          "Purchase-order intake: `orderops intake FILE...` or `orderops intake watch DIR`."),
    Mount("review", "api.cli_intake:review_app", "The intake review queue: list, show, correct, approve, reject."),
    Mount("keys", "api.cli_keys:keys_app", "API keys: the identity of people and scripts (CLI, HTTP API, console)."),
    Mount("llm", "api.cli_llm:llm_app", "The model endpoint: what it supports, how fast it answers."),
    Mount("mcp", "api.cli_mcp:mcp", "MCP server: the tools through the gateway, intake, runs, approvals and audit."),
)  # fmt: skip
"""Every command of the root, in the order ``--help`` lists them; imported when invoked."""


class RootGroup(LazyGroup):
    mounts = MOUNTS


app = typer.Typer(
    cls=RootGroup,
    rich_markup_mode=None,  # plain help: Typer's Rich help alone would cost more than the rest of --help
    help="OrderOps: fulfillment exceptions and B2B order intake, with approvals and audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"orderops {package_version()}\n")
        raise typer.Exit(0)


def package_version() -> str:
    """The installed package's version (its metadata), or ``unknown`` when run from a bare tree."""
    import importlib.metadata

    try:
        return importlib.metadata.version("orderops")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None, typer.Option("--database-url", envvar="DATABASE_URL", help="SQLAlchemy URL (default: SQLite)")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    # Imported here, not at the top: --help and --version never get this far.
    from pydantic import ValidationError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from core.settings import Settings

    overrides: dict[str, Any] = {}
    if database_url:
        try:  # a malformed URL is a configuration error, named before anything connects
            make_url(database_url)
        except ArgumentError as exc:
            raise ConfigurationError(
                f"DATABASE_URL (or --database-url) is not a database URL: {database_url[:80]!r}; "
                "expected e.g. postgresql+psycopg://user@host:5432/db or sqlite:///path/orderops.db"
            ) from exc
        overrides["database_url"] = database_url
    try:
        ctx.obj = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigurationError(f"invalid setting {where}: {first['msg']}") from exc
    import os

    from core import tracing

    tracing.configure(ctx.obj, os.environ)  # spans off unless traces_exporter says; refuses LangSmith tracing


def _exit_code(err: OrderOpsError) -> int:
    return 3 if isinstance(err, ConfigurationError) else 2


def database_error(exc: Exception) -> ConfigurationError:
    """A database that cannot be reached or named, as the configuration error it is (no traceback;
    the URL's password never printed)."""
    from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return ConfigurationError(f"the database URL is not usable: {exc}")
    if isinstance(exc, OperationalError | InterfaceError):
        first = str(exc.orig or exc).strip().splitlines()[0][:300]
        return ConfigurationError(f"cannot reach the database ({first}); check DATABASE_URL or --database-url")
    return ConfigurationError(f"database error ({type(exc).__name__}): {str(exc).splitlines()[0][:300]}")


def _is_database_error(exc: Exception) -> bool:
    """An SQLAlchemy error, checked without importing SQLAlchemy (a command that raised one has)."""
    sa = sys.modules.get("sqlalchemy.exc")
    return sa is not None and isinstance(exc, sa.SQLAlchemyError)


def _err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _print_error(code: str, message: str) -> None:
    from rich.markup import escape

    _err_console().print(f"[red]error[/] ({code}): {escape(message)}", highlight=False, soft_wrap=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status (what tests call). Error messages are
    printed on one line (never wrapped at the terminal's width), so scripts can match them."""
    try:
        # Without standalone mode, click hands back a command's typer.Exit code as the return value.
        code = app(args=argv, prog_name="orderops", standalone_mode=False)
    except OrderOpsError as err:
        _print_error(err.code, err.message)
        return _exit_code(err)
    except typer.Abort:
        _err_console().print("[red]aborted[/]: no answer (end of input or interrupted); nothing was changed")
        return 1
    except KeyboardInterrupt:
        _err_console().print("[red]interrupted[/]")
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _err_console().print(f"[red]error[/]: {exc}")
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:
        if _is_database_error(exc):
            bad = database_error(exc)
            _print_error(bad.code, bad.message)
            return _exit_code(bad)
        # A bug: one line and a way to see more, never a wall of traceback.
        if os.environ.get("ORDEROPS_DEBUG"):
            raise
        from rich.markup import escape

        _err_console().print(
            f"[red]internal error[/] ({type(exc).__name__}): {escape(str(exc)[:300])} "
            "(ORDEROPS_DEBUG=1 shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(run())
