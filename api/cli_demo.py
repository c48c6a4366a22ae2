"""`orderops demo`: the main job end to end, in the demo's own installation.

Mounted by :mod:`api.cli` (the ``demo`` command), imported only when it runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from api.bootstrap import is_demo_database
from api.cli_common import JsonFlag, console, print_json
from api.cli_common import app_context as _context
from api.cli_common import settings_of as _settings
from api.cli_network import network_state, render_network, seed_network
from api.demo import congestion_scenario
from api.demo_intake import intake_scenario
from core.db import make_database, migrate
from core.errors import ConfigurationError
from core.netgen import NetworkSpec, network_exists
from core.settings import Settings


def demo_settings(settings: Settings, home: Path | None) -> Settings:
    """The demo's own installation: a SQLite twin under ``<home>/demo`` on the seeded business date.

    Never the configured database: the demo congests a DC and executes reroutes, which on a real
    installation would move real orders and reseed over work people did."""
    return settings.model_copy(
        update={"home": home or Path(settings.home) / "demo", "database_url": None, "clock": "network"}
    )


def demo(
    ctx: typer.Context,
    orders: Annotated[int, typer.Option(help="Open orders in the demo network.")] = 5_000,
    home: Annotated[
        Path | None, typer.Option(help="The demo's own home (default: <ORDEROPS_HOME>/demo); never the real one.")
    ] = None,
    approve: Annotated[
        str | None,
        typer.Option(
            help="auto: a demo approver approves; prompt: you decide; deny: reject. "
            "Default: prompt at a terminal, auto otherwise (CI, pipes)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The main job end to end in the demo's own installation: seed a network, congest a DC, let the
    agent propose a reroute, approve it, execute it once and show the audit trail."""
    if approve is None:
        approve = "prompt" if sys.stdin.isatty() and not as_json else "auto"
    if approve not in ("auto", "prompt", "deny"):
        raise typer.BadParameter("auto, prompt or deny", param_hint="--approve")
    s = demo_settings(_settings(ctx), home)
    if s.home == _settings(ctx).home:
        raise ConfigurationError("the demo's home must not be the installation's own home", home=str(s.home))
    started = time.perf_counter()
    db = make_database(s)
    try:
        migrate(db)
        foreign = network_exists(db) and not is_demo_database(db)
    finally:
        db.dispose()
    if foreign:
        raise ConfigurationError(f"{s.home} holds a network the demo did not create; choose another --home")
    spec = NetworkSpec(seed=s.seed, nodes=s.nodes, skus=s.skus, customers=s.customers, orders=orders)
    if not as_json:
        console.rule("[bold]OrderOps demo")
        console.print(f"Running in the demo's own installation at {s.home} (your installation is not touched).")
        console.print(
            f"1. Seeding a deterministic network (seed {spec.seed}): {spec.nodes} nodes, {spec.skus} SKUs, "
            f"{spec.customers} customers, {spec.orders:,} orders"
        )
    summary = seed_network(s, spec, reset=True, show_progress=not as_json, demo=True)
    with _context(s) as actx:
        state = network_state(actx)
    if not as_json:
        console.print("2. The network as the OMS, WMS and carriers see it")
        render_network(state)
        console.print("3. A congestion alert, the exception agent's plan, an approval, execution, verification")
    scenario = congestion_scenario(s, None if as_json else console, mode=approve)  # type: ignore[arg-type]
    if not as_json:
        console.print("4. Purchase orders arrive: a clean X12 850, a PDF, an e-mail with an unknown part number")
    scenario["intake"] = intake_scenario(s, None if as_json else console)
    elapsed = round(time.perf_counter() - started, 2)
    if as_json:
        print_json({"home": str(s.home), "seed": summary, "network": state, "scenario": scenario, "elapsed_s": elapsed})
        return
    console.print(
        f"[green]Demo finished in {elapsed:.1f}s.[/] Look around the demo's installation with "
        f"`ORDEROPS_HOME={s.home} ORDEROPS_CLOCK=network orderops runs list` (or `audit verify`, `network show`)."
    )
