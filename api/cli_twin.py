"""`orderops twin apply FILE` and `orderops twin whatif FILE`: scenario files on the digital twin.

Mounted by :mod:`api.cli` (the ``twin`` group), imported only when one of them runs. The use case
is :mod:`services.scenarios`; this module reads the file, names the caller and prints.

A bad file (YAML, a field out of place, a node the twin lacks) prints its findings, each with its
line and field, changes nothing and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api import cli_common as cli
from api.auth import Role
from api.cli_common import JsonFlag
from api.cli_keys import KeyOpt, principal_for
from guardrails.calls import Actor
from services.scenarios import (
    Kpis,
    ParsedScenario,
    ScenarioFinding,
    WhatIfReport,
    apply_scenario,
    load_scenario,
    whatif,
)
from services.wiring import OPERATOR, PLANNER_CHOICES, choose_planner

twin_app = typer.Typer(
    help="Scenarios on the digital twin: stage them, or play them as what-ifs.", no_args_is_help=True
)

FileArg = Annotated[Path, typer.Argument(help="Scenario file (YAML: name, events).", dir_okay=False)]


def _bad_file(findings: list[ScenarioFinding], as_json: bool, path: Path) -> None:
    """Print the findings and stop with status 2: nothing was staged or played."""
    if as_json:
        cli.print_json({"ok": False, "file": str(path), "findings": findings})
    else:
        for f in findings:
            where = f"{path}:{f.line}" if f.line else str(path)
            cli.err_console.print(
                f"[red]{f.severity}[/] {where} {f.field or ''} ({f.code}): {f.message}", highlight=False, markup=True
            )
        cli.err_console.print("nothing was changed")
    raise typer.Exit(2)


def _parsed(path: Path, as_json: bool) -> ParsedScenario:
    parsed = load_scenario(path)
    if not parsed.ok:
        _bad_file(parsed.findings, as_json, path)
    return parsed


@twin_app.command("apply")
def twin_apply(
    ctx: typer.Context,
    file: FileArg,
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Stage a scenario on the live twin, through the tool gateway: every event is simulated,
    judged by policy, audited, and executed or parked for an approver."""
    settings = cli.settings_of(ctx)
    parsed = _parsed(file, as_json)
    if key:
        actor = principal_for(settings, key, role=Role.OPERATOR, doing="stage a scenario").actor()
    else:
        actor = Actor(kind="user", id=OPERATOR)
    with cli.app_context(settings) as actx:
        report = apply_scenario(parsed, actx.gateway, actor=actor)
    if not report.ok:
        _bad_file(report.findings, as_json, file)
    if as_json:
        cli.print_json(report)
        return
    table = Table(title=f"Scenario {report.scenario!r} staged (run {report.run_id})")
    for col in ("event", "tool", "status", "what", "approval"):
        table.add_column(col, overflow="fold")
    for o in report.outcomes:
        table.add_row(str(o.event), o.tool, o.status, o.summary or "; ".join(o.reasons), o.approval_id or "")
    cli.console.print(table)
    for f in report.findings:
        cli.console.print(f"[yellow]{f.severity}[/] line {f.line} {f.field}: {f.message}")
    if any(o.approval_id for o in report.outcomes):
        cli.console.print("Parked calls wait for an approver: `orderops approvals list`.")


@twin_app.command("whatif")
def twin_whatif(
    ctx: typer.Context,
    file: FileArg,
    goal: Annotated[
        str | None, typer.Option(help="What to plan for, in words (default: the alert the scenario raises).")
    ] = None,
    planner: Annotated[str, typer.Option(help=f"Planner: {', '.join(PLANNER_CHOICES)}.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Play a scenario on a copy of the twin: the agent plans, nothing executes on the live twin,
    and the KPIs before, after and after the plan are compared."""
    settings = cli.settings_of(ctx)
    parsed = _parsed(file, as_json)
    with cli.app_context(settings) as actx:
        report = whatif(parsed, actx.db, actx.twin_clock, choose_planner(actx, planner), goal=goal)
    if not report.ok:
        _bad_file(report.findings, as_json, file)
    if as_json:
        cli.print_json(report)
        return
    _render(report)


def _render(report: WhatIfReport) -> None:
    out = cli.console
    if report.alert is not None:
        out.print(f"[bold yellow]Alert[/] {report.alert.summary}")
    if report.plan_summary:
        out.print(f"Plan ({report.planner}): {report.plan_summary}")
        for s in report.steps:
            out.print(f"  - {s.tool} ({s.orders} orders): {s.reason} [{s.played}]")
    cols: list[tuple[str, Kpis | None]] = [
        ("before", report.before),
        ("after", report.after),
        ("after plan", report.after_plan),
    ]
    table = Table(title=f"What if: {report.scenario} (played on a copy; the live twin is unchanged)")
    table.add_column("KPI")
    for name, _ in cols:
        table.add_column(name, justify="right")

    def row(label: str, get: Any) -> None:
        table.add_row(label, *("" if k is None else str(get(k)) for _, k in cols))

    row("on-time rate", lambda k: f"{k.on_time_rate:.1%}")
    row("unavailable orders", lambda k: k.unavailable)
    row("cost to serve", lambda k: f"{k.cost_to_serve:,}")
    row("cost per order", lambda k: k.cost_per_order)
    for node in report.before.nodes if report.before else []:
        row(
            f"backlog days {node.node_id}",
            lambda k, n=node.node_id: next(
                (
                    f"{x.backlog_days:.2f}{'' if x.status == 'open' else ' ' + x.status}"
                    for x in k.nodes
                    if x.node_id == n
                ),
                "",
            ),
        )
    row("CO2e kg", lambda k: "n/a" if k.co2e_kg is None else k.co2e_kg)
    out.print(table)
