"""Console pages people would rather look at than read (issue 18, item 6): a node's backlog and
pick rate over the generated history with the detector's baseline and threshold, and a SKU's
demand forecast with its interval. The numbers come from :mod:`services.pictures`; the SVG from
:mod:`api.console.charts`. Viewers may look; nothing here changes anything.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from api.console import charts
from api.console.pages import actx_of, render, user_of
from core.errors import NotFound
from services.pictures import NodeSignals, Series, node_signals

router = APIRouter(prefix="/console", include_in_schema=False)


def _signal_chart(title: str, unit: str, s: NodeSignals, series: Series, *, below: bool) -> Markup:
    threshold = "alarm threshold (below)" if below else "alarm threshold"
    return charts.line_chart(
        charts.Chart(
            title=title,
            days=s.days,
            y_label=unit,
            lines=[
                charts.Line("actual", series.values),
                charts.Line("baseline (weekday median)", series.baseline, colour=charts.PALETTE["baseline"]),
                charts.Line(threshold, series.threshold, colour=charts.PALETTE["threshold"], dashed=True),
            ],
            marks=series.alarms,
        )
    )


def _forecast_chart(s: NodeSignals) -> Markup | None:
    f = s.forecast
    if f is None:
        return None
    return charts.line_chart(
        charts.Chart(
            title=f"Demand for {f.sku} at {s.node_id}: last {f.start} days and a {len(f.low)}-day forecast",
            days=f.days,
            y_label="units a day",
            lines=[
                charts.Line("actual", f.actual),
                charts.Line(f"forecast ({f.method})", f.mean, colour=charts.PALETTE["forecast"], dashed=True),
            ],
            bands=[charts.Band("90% interval", f.low, f.high, f.start)],
        )
    )


@router.get("/nodes/{node_id}", response_class=HTMLResponse)
def node_page(request: Request, node_id: str, sku: str | None = None) -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    try:
        node = actx.adapters.wms.get_node(node_id)
        s = node_signals(actx.db, node_id, sku=sku or None)
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    return render(
        request,
        "node.html",
        {
            "user": user,
            "node": node,
            "s": s,
            "backlog_svg": _signal_chart(
                f"Backlog at {node_id}, orders waiting at day end", "orders", s, s.backlog, below=False
            ),
            "picked_svg": _signal_chart(f"Orders picked a day at {node_id}", "orders a day", s, s.picked, below=True),
            "forecast_svg": _forecast_chart(s),
        },
    )
