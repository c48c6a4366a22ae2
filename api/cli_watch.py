"""``orderops watch``: look at the live twin against its history and raise what is not normal.

Mounted by :mod:`api.cli`. The checks are :mod:`services.watch`; each finding becomes an alert
handed to the same inbox as ``POST /v1/alerts`` (dedup by fingerprint, storm coalescing into the
open run about the same node or carrier, a queued run otherwise). Watching never acts: a run it
opens plans and waits for a worker and, where policy says so, a person. ``--dry-run`` prints the
findings and raises nothing.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from api import cli_common as cli
from api.bootstrap import AppContext, network_meta
from api.cli_common import JsonFlag
from api.routes.alerts import AlertInbox
from services.watch import finding_alerts, history_for, watch_twin

WATCHER = "watch"
"""Who the runs a watch opens act for."""


def _once(settings: Any, dry_run: bool) -> dict[str, Any]:
    with cli.app_context(settings) as actx:
        return watch_once(actx, dry_run=dry_run)


def watch_once(actx: AppContext, *, dry_run: bool = False) -> dict[str, Any]:
    """One watch on an open context (the CLI's --once and the workers' schedule): findings, the
    alerts they make, and what the inbox did with them (nothing raised when ``dry_run``)."""
    history = history_for(network_meta(actx.db).get("spec"))
    findings = watch_twin(actx.adapters, history)
    alerts = finding_alerts(findings, today=actx.twin_clock.today())
    accepted = None
    if alerts and not dry_run:
        accepted = AlertInbox(actx.db).ingest(alerts, requested_by=WATCHER)
    return {
        "findings": findings,
        "alerts": alerts,
        "results": accepted.results if accepted is not None else [],
        "dry_run": dry_run,
        "history": history is not None,
    }


def _render(out: dict[str, Any]) -> None:
    if not out["findings"]:
        cli.console.print("nothing out of the ordinary")
        return
    by_alert = {r.alert_id: r for r in out["results"]}
    table = Table(title="Watch: findings" + (" (dry run: nothing raised)" if out["dry_run"] else ""))
    for col in ("kind", "about", "signal", "value", "baseline", "threshold", "alert", "run"):
        table.add_column(col, overflow="fold")
    for f, a in zip(out["findings"], out["alerts"], strict=True):
        r = by_alert.get(a.id)
        table.add_row(
            f.kind.value,
            ", ".join(f"{k}={v}" for k, v in f.labels.items()),
            f.signal,
            str(f.value),
            "" if f.baseline is None else str(f.baseline),
            "" if f.threshold is None else str(f.threshold),
            r.outcome if r else "-",
            r.run_id if r else "-",
        )
    cli.console.print(table)


def watch(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Check once and exit (default: every --interval seconds).")
    ] = False,
    interval: Annotated[float, typer.Option(min=5.0, help="Seconds between checks when not --once.")] = 300.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the findings; raise no alert.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check the live twin against its history once (--once) or on an interval; findings become alerts.

    Node status, capacity and backlog against the history's baselines, and carrier status; each
    finding is raised as an alert: deduplicated, coalesced into an open run, or opening a run. It
    never acts by itself."""
    settings = cli.settings_of(ctx)
    while True:
        out = _once(settings, dry_run)
        if as_json:
            cli.print_json(out)
        else:
            _render(out)
        if once:
            return
        time.sleep(interval)
