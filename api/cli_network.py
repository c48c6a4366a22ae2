"""`orderops init`, `orderops network ...` and `orderops orders ...`: the network and its orders.

Mounted by :mod:`api.cli` (the ``init`` command and the ``network`` and ``orders`` groups; the
``orders history`` command is :func:`api.cli_ops.orders_history`), imported only when one of them runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from api.bootstrap import AppContext, is_demo_database, mark_demo_database, network_meta
from api.cli_common import JsonFlag, console, err_console, print_json, to_jsonable
from api.cli_common import app_context as _context
from api.cli_common import settings_of as _settings
from core.db import Database, make_database, migrate
from core.db.tables import RunRow
from core.domain import Order, OrderStatus
from core.errors import ConfigurationError
from core.netgen import NetworkSpec, generate_network, network_exists, reset_network
from core.settings import Settings
from tools.adapters.protocols import OrderFilter

network_app = typer.Typer(help="The fulfillment network (nodes, load, inventory).", no_args_is_help=True)
orders_app = typer.Typer(help="Orders in the OMS.", no_args_is_help=True)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress callback drawing one Rich bar per generation step (none under --json)."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        yield update


def _run_count(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RunRow)) or 0)


def seed_network(
    settings: Settings,
    spec: NetworkSpec,
    *,
    reset: bool,
    show_progress: bool,
    confirmed: bool = False,
    demo: bool = False,
) -> dict[str, Any]:
    """Seed ``spec`` into the configured database.

    Replacing a network that runs have acted on would undo their effects while their runs and audit
    rows stay, so the records would contradict the data: that needs ``confirmed`` (``--yes`` or an
    answer at a terminal) unless the database is the demo's own.
    """
    db = make_database(settings)
    try:
        migrate(db)
        if network_exists(db):
            if not reset:
                raise ConfigurationError(f"{db.url} already holds a network; pass --reset to replace it", url=db.url)
            runs = _run_count(db)
            if runs and not (confirmed or is_demo_database(db)):
                raise ConfigurationError(
                    f"{db.url} holds {runs} runs whose changes --reset would undo while their records stay; "
                    "pass --yes to replace it anyway",
                    url=db.url,
                    runs=runs,
                )
            reset_network(db)
        with progress_bars(show_progress) as progress:
            summary = generate_network(db, spec, progress=progress)
        if demo:
            mark_demo_database(db)
        return {"database": db.url, **to_jsonable(summary)}
    finally:
        db.dispose()


def init(
    ctx: typer.Context,
    reset: Annotated[bool, typer.Option(help="Replace an existing network.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --reset: replace a network that runs have already acted on.")
    ] = False,
    orders: Annotated[int | None, typer.Option(help="Open orders to generate (up to 1,000,000).")] = None,
    nodes: Annotated[int | None, typer.Option(help="Fulfillment nodes.")] = None,
    skus: Annotated[int | None, typer.Option(help="Products.")] = None,
    customers: Annotated[int | None, typer.Option(help="B2B customers.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same network.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the database, migrate it to the current schema and seed a network."""
    s = _settings(ctx)
    spec = NetworkSpec(
        seed=seed if seed is not None else s.seed,
        nodes=nodes or s.nodes,
        skus=skus or s.skus,
        customers=customers or s.customers,
        orders=orders if orders is not None else s.orders,
        # On the wall clock the network is seeded as of today, so its promise dates mean something now.
        **({"business_date": datetime.now(UTC).date()} if s.clock == "system" else {}),
    )
    if spec.orders > 1_000_000:
        raise typer.BadParameter("at most 1,000,000 orders", param_hint="--orders")
    confirmed = yes
    if reset and not yes and not as_json and sys.stdin.isatty():
        confirmed = typer.confirm("Replace the network even if runs have acted on it?", default=False)
    result = seed_network(s, spec, reset=reset, show_progress=not as_json, confirmed=confirmed)
    if as_json:
        print_json(result)
    else:
        console.print(f"[green]Network ready[/] in {result['database']}: {_summary_line(result)}")


def _summary_line(summary: dict[str, Any]) -> str:
    keys = ("nodes", "skus", "customers", "orders", "order_lines", "elapsed_s")
    return ", ".join(f"{k.replace('_', ' ')} {summary[k]}" for k in keys if k in summary)


# --- network ----------------------------------------------------------------------------------------


def network_state(actx: AppContext) -> dict[str, Any]:
    wms, oms, carriers = actx.adapters.wms, actx.adapters.oms, actx.adapters.carriers
    nodes = {n.id: n for n in wms.list_nodes()}
    loads = wms.node_load()
    positions = wms.inventory()
    inv: dict[str, dict[str, int]] = {}
    for p in positions:
        agg = inv.setdefault(p.node_id, {"skus": 0, "on_hand": 0, "reserved": 0, "atp": 0})
        agg["skus"] += 1
        agg["on_hand"] += p.on_hand
        agg["reserved"] += p.reserved
        agg["atp"] += p.atp
    return {
        "business_date": network_meta(actx.db).get("business_date"),
        "nodes": [
            {
                **nodes[ld.node_id].model_dump(mode="json"),
                "load": ld.model_dump(mode="json"),
                "inventory": inv.get(ld.node_id, {}),
            }
            for ld in loads
        ],
        "carriers": [c.model_dump(mode="json") for c in carriers.list_carriers()],
        "orders_by_status": {k.value: v for k, v in oms.count_by_status(OrderFilter()).items()},
    }


def render_network(state: dict[str, Any]) -> None:
    table = Table(title=f"Fulfillment network — business date {state['business_date']}")
    for col in (
        "node",
        "type",
        "city",
        "status",
        "capacity/day",
        "backlog",
        "backlog days",
        "open",
        "unreleased",
        "SKUs",
        "on hand",
        "reserved",
        "ATP",
    ):
        table.add_column(col, justify="left" if col in ("node", "type", "city", "status") else "right")
    for n in state["nodes"]:
        load, inv = n["load"], n["inventory"]
        status = n["status"]
        style = {"open": "green", "congested": "yellow", "closed": "red"}.get(status, "")
        table.add_row(
            n["id"],
            n["type"],
            f"{n['city']}, {n['state']}",
            f"[{style}]{status}[/]",
            f"{n['daily_capacity']:,}",
            f"{load['backlog']:,}",
            f"{load['backlog_days']:.1f}",
            f"{load['open_orders']:,}",
            f"{load['unreleased_orders']:,}",
            f"{inv.get('skus', 0):,}",
            f"{inv.get('on_hand', 0):,}",
            f"{inv.get('reserved', 0):,}",
            f"{inv.get('atp', 0):,}",
        )
    console.print(table)
    carriers = Table(title="Carriers")
    for col in ("carrier", "name", "status", "on-time", "outage states"):
        carriers.add_column(col)
    for c in state["carriers"]:
        carriers.add_row(c["id"], c["name"], c["status"], f"{c['on_time_rate']:.1%}", ", ".join(c["outage_states"]))
    console.print(carriers)
    console.print("Orders by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(state["orders_by_status"].items())))


@network_app.command("show")
def network_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Nodes with load and inventory, carriers, and orders by status."""
    with _context(_settings(ctx)) as actx:
        state = network_state(actx)
    if as_json:
        print_json(state)
    else:
        render_network(state)


# --- orders -----------------------------------------------------------------------------------------


@orders_app.command("list")
def orders_list(
    ctx: typer.Context,
    node: Annotated[list[str] | None, typer.Option(help="Node id (repeatable).")] = None,
    status: Annotated[list[OrderStatus] | None, typer.Option(help="Status (repeatable).")] = None,
    customer: Annotated[list[str] | None, typer.Option(help="Customer id (repeatable).")] = None,
    promised_by: Annotated[str | None, typer.Option(help="Promised on or before YYYY-MM-DD.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Orders matching the filters (oldest first)."""
    try:
        promised = date.fromisoformat(promised_by) if promised_by else None
    except ValueError as exc:
        raise typer.BadParameter(f"{promised_by!r} is not a date: use YYYY-MM-DD", param_hint="--promised-by") from exc
    flt = OrderFilter(
        node_ids=node or None,
        statuses=status or None,
        customer_ids=customer or None,
        promised_on_or_before=promised,
    )
    with _context(_settings(ctx)) as actx:
        found = actx.adapters.oms.list_orders(flt, limit=limit, offset=offset)
        total = actx.adapters.oms.count_orders(flt)
    if as_json:
        print_json({"total": total, "orders": found})
        return
    table = Table(title=f"Orders ({len(found)} of {total:,})")
    for col in ("order", "customer", "status", "node", "service", "promised", "units", "value"):
        table.add_column(col, justify="right" if col in ("units", "value") else "left")
    for o in found:
        table.add_row(
            o.id,
            o.customer_id,
            o.status.value,
            o.node_id or "-",
            o.service_level.value,
            o.promised_date.isoformat(),
            "",
            f"{o.total_value:,.2f}",
        )
    console.print(table)


@orders_app.command("show")
def orders_show(ctx: typer.Context, order_id: str, as_json: JsonFlag = False) -> None:
    """One order with its lines and shipments."""
    with _context(_settings(ctx)) as actx:
        order = actx.adapters.oms.get_order(order_id)
        shipments = actx.adapters.carriers.shipments([order_id])
    if as_json:
        print_json({"order": order, "shipments": shipments})
        return
    _render_order(order)
    for s in shipments:
        console.print(f"  shipment {s.id}: {s.tracking_number} {s.status.value}, ships {s.ship_date}, ETA {s.eta}")


def _render_order(order: Order) -> None:
    console.print(
        f"[bold]{order.id}[/] {order.status.value} — customer {order.customer_id}, ship-to {order.ship_to_id}, "
        f"node {order.node_id or '-'}, {order.service_level.value}, promised {order.promised_date}, "
        f"value {order.total_value:,.2f}" + (f", PO {order.external_ref}" if order.external_ref else "")
    )
    table = Table(show_header=True)
    for col in ("line", "sku", "qty", "unit price"):
        table.add_column(col, justify="right" if col != "sku" else "left")
    for line in order.lines:
        table.add_row(str(line.line_no), line.sku, str(line.quantity), f"{line.unit_price:,.2f}")
    console.print(table)
