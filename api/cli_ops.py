"""`orderops runs undo` and `orderops orders history`: the operator's way back and the order's story.

Thin: the use cases live in :mod:`services.undo` and :mod:`services.history`; this module parses
options, picks who acts, and prints.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.bootstrap import open_context
from api.cli_keys import KeyOpt
from api.cli_runs import (
    REQUESTED_BY,
    ApproveOpt,
    JsonFlag,
    _mode,
    _print_json,
    _settings,
    approver_for,
    drive,
    finish,
    session,
)
from core.settings import Settings
from services.history import OrderHistory, order_history
from services.undo import start_undo

console = Console()
err_console = Console(stderr=True)


def runs_undo(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run whose executed changes to put back.")],
    approve: ApproveOpt = "park",
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Undo a run: a new run whose plan is the compensating calls of what RUN executed (reroutes
    back to the node each order came from, holds released, a closed node reopened). Like any run,
    its calls are simulated, judged by policy and parked for approval; nothing moves until then."""
    mode = _mode(approve)
    out = err_console if as_json else console
    settings = _settings(ctx)
    with session(settings, "playbook") as s:
        approver = approver_for(s.actx, mode, key)  # as `orderops run`: the key decides, it never requests
        runs = s.acting_for(REQUESTED_BY)
        result = start_undo(runs, s.store, run_id)
        out.print(f"Undo run [bold]{result.run_id}[/] started for {run_id}.")
        result = drive(runs, result, mode, out, approver)
        finish(runs, result, as_json)


def history_of(settings: Settings, order_id: str) -> OrderHistory:
    actx = open_context(settings)
    try:
        actx.adapters.oms.get_order(order_id)  # NotFound (exit 2) for an unknown order
        return order_history(actx.guard.audit, order_id)
    finally:
        actx.close()


def orders_history(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order, e.g. ORD-000123.")],
    as_json: JsonFlag = False,
) -> None:
    """Why is this order here? Every change a run made to it, with the run, the approver and the reason."""
    history = history_of(_settings(ctx), order_id)
    if as_json:
        _print_json(history.model_dump(mode="json"))
        return
    if not history.changes and not history.skipped:
        console.print(f"No run has changed {order_id}.")
        return
    table = Table(title=f"History of {order_id}")
    for col in ("when (UTC)", "run", "change", "reason", "approved by", "acted as"):
        table.add_column(col, overflow="fold")
    for c in sorted([*history.changes, *history.skipped], key=lambda c: c.seq):
        table.add_row(
            c.at.strftime("%Y-%m-%d %H:%M:%S"),
            c.run_id or "",
            c.change,
            c.reason or "",
            c.approver or "",
            c.actor or "",
        )
    console.print(table)
