"""`orderops inbox`: pull purchase-order e-mail in from IMAP or a local Maildir / folder.

Mounted by :mod:`api.cli` (``app.add_typer(inbox_app, name="inbox")``). By default each stored
message becomes an ``intake.process`` job for the workers; ``--direct`` runs the intake pipeline in
this process instead (no worker needed). SIGTERM or SIGINT stops after the message in hand.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from api.bootstrap import AppContext, make_document_store, open_context
from api.inbox.imap import ImapConfig, ImapPoller
from api.inbox.ingest import DirectDispatcher, Dispatcher, InboxLedger, Ingestor, JobDispatcher, PollReport
from api.inbox.maildir import MaildirWatcher
from core.errors import ConfigurationError, OrderOpsError
from core.outbox import Outbox
from core.settings import Settings
from intake.pipeline import IntakeDeps

inbox_app = typer.Typer(help="E-mail inbox for purchase orders (IMAP, Maildir, folder).", no_args_is_help=True)
err_console = Console(stderr=True)

Once = Annotated[bool, typer.Option("--once", help="One pass, print what it did as JSON, exit.")]
Direct = Annotated[bool, typer.Option("--direct", help="Run the intake pipeline here instead of enqueueing jobs.")]
Interval = Annotated[float | None, typer.Option(min=0.1, help="Seconds between polls (default: settings).")]


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    return settings if isinstance(settings, Settings) else Settings()


def build_ingestor(actx: AppContext, *, direct: bool) -> Ingestor:
    """The documents store under ``<home>/documents``, the ledger, and the chosen dispatcher."""
    store = make_document_store(actx)
    dispatch: Dispatcher
    if direct:
        dispatch = DirectDispatcher(IntakeDeps(db=actx.db, clock=actx.clock, documents=store, gateway=actx.gateway,
                                               risk_hold=actx.settings.order_risk_hold))  # fmt: skip
    else:
        dispatch = JobDispatcher(Outbox(actx.db))
    return Ingestor(store, InboxLedger(actx.db, actx.clock), dispatch)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def _print(report: PollReport) -> None:
    typer.echo(json.dumps(report.model_dump(mode="json", exclude={"outcomes"})))


def _fail(exc: OrderOpsError) -> typer.Exit:
    err_console.print(f"[red]{exc}[/red]")
    return typer.Exit(3 if isinstance(exc, ConfigurationError) else 2)


@inbox_app.command("imap")
def imap_command(ctx: typer.Context, once: Once = False, direct: Direct = False, interval: Interval = None,
                 idle: Annotated[bool, typer.Option("--idle", help="Wait with IMAP IDLE between polls.")] = False,
                 ) -> None:  # fmt: skip
    """Poll the IMAP folder (ORDEROPS_IMAP_*), store each new mail, process it, move it."""
    settings = _settings(ctx)
    try:
        cfg = ImapConfig.from_settings(settings)
        actx = open_context(settings)
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    try:
        poller = ImapPoller(cfg, build_ingestor(actx, direct=direct), actx.db, actx.clock)
        if once:
            _print(poller.poll_once())
            return
        poller.run(interval_s=interval or settings.inbox_poll_interval_s, stop=_stop_on_signals(), idle=idle,
                   on_report=lambda r: _print(r) if r.fetched else None)  # fmt: skip
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    finally:
        actx.close()


@inbox_app.command("watch")
def watch_command(ctx: typer.Context, path: Annotated[Path | None, typer.Argument(
                      help="Maildir or folder of .eml files (default: ORDEROPS_MAILDIR_PATH).")] = None,
                  once: Once = False, direct: Direct = False, interval: Interval = None) -> None:  # fmt: skip
    """Watch a local Maildir (new/ -> cur/) or a folder of .eml files (-> processed/)."""
    settings = _settings(ctx)
    folder = path or settings.maildir_path
    if folder is None:
        raise _fail(ConfigurationError("give a folder or set ORDEROPS_MAILDIR_PATH"))
    try:
        actx = open_context(settings)
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    try:
        watcher = MaildirWatcher(folder, build_ingestor(actx, direct=direct))
        if once:
            _print(watcher.poll_once())
            return
        watcher.run(interval_s=interval or min(settings.inbox_poll_interval_s, 5.0), stop=_stop_on_signals(),
                    on_report=lambda r: _print(r) if r.fetched else None)  # fmt: skip
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    finally:
        actx.close()
