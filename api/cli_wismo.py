"""`orderops orders where REF`: where is my order, by order id or PO number.

Mounted by :mod:`api.cli` into the ``orders`` group; the use case is :mod:`services.wismo`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api import cli_common as cli
from api.cli_common import JsonFlag
from services.wismo import where_is


def orders_where(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="An order id (ORD-000123) or the customer's PO number.")],
    as_json: JsonFlag = False,
) -> None:
    """Where is my order: status, node, carrier, tracking, ETA against the promise, and the runs that touched it."""
    with cli.app_context(cli.settings_of(ctx)) as actx:
        found = where_is(ref, db=actx.db, adapters=actx.adapters, clock=actx.twin_clock, audit=actx.guard.audit)
    if as_json:
        cli.print_json({"ref": ref, "orders": found})
        return
    for w in found:
        table = Table(title=f"{w.order_id}" + (f" (PO {w.po_number})" if w.po_number else ""), show_header=False)
        table.add_column("field")
        table.add_column("value", overflow="fold")
        promise = "on time" if w.on_time else ("late" if w.on_time is False else (w.why_no_eta or "no ETA"))
        rows = [
            ("status", w.status),
            ("node", w.node_id or "-"),
            ("carrier service", w.carrier_service_id or "-"),
            ("promised", str(w.promised_date)),
            ("ETA", f"{w.eta or '-'} ({w.eta_source}): {promise}"),
            ("risk", "not scored" if w.risk is None else f"{w.risk:.2f}" + (" (hold)" if w.risk_hold else "")),
        ]
        rows += [("risk reason", why) for why in w.risk_reasons]
        for t in w.tracking:
            rows.append(("tracking", f"{t.tracking_number} {t.status} {t.last_event or ''}".strip()))
        for c in w.runs:
            rows.append(("run", f"{c.at:%Y-%m-%d %H:%M} {c.run_id or ''}: {c.change}"))
        for k, v in rows:
            table.add_row(k, v)
        cli.console.print(table)
