"""Console pages people would rather look at than read (issue 18, item 6): a node's backlog and
pick rate over the generated history with the detector's baseline and threshold, and a SKU's
demand forecast with its interval. The numbers come from :mod:`services.pictures`; the SVG from
:mod:`api.console.charts`. Viewers may look.

Also the what-if page (issue 18, item 2, in the console): a pasted scenario played on a copy of the
twin with KPIs before and after (operator; nothing changes), or staged on the live twin through the
gateway (approver; each event still parks for an approver other than the one who staged it).

What this module must never do: change the twin except through :func:`services.scenarios.apply_scenario`,
or accept a POST without a valid CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from api.auth import Principal, Role
from api.console import charts
from api.console.pages import actx_of, one, post_form, render, user_of
from core.errors import ConfigurationError, NotFound, OrderOpsError, PolicyDenied
from services.pictures import NodeSignals, Series, node_signals
from services.scenarios import ApplyReport, ScenarioFinding, WhatIfReport, apply_scenario, parse_scenario, whatif
from services.wiring import choose_planner

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


# --- what-if -------------------------------------------------------------------------------------------

EXAMPLE = """name: Dallas closes
events:
  - node_status: {node: DC-DALLAS, status: closed}
  - carrier_outage: {carrier: RDG, states: [TX, OK]}
"""


def _scenario_page(
    request: Request,
    user: Principal,
    text: str,
    *,
    report: WhatIfReport | None = None,
    applied: ApplyReport | None = None,
    findings: list[ScenarioFinding] | None = None,
    message: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "whatif.html",
        {
            "user": user,
            "text": text,
            "report": report,
            "applied": applied,
            "findings": findings or [],
            "message": message,
            "can_whatif": user.has(Role.OPERATOR),
            "can_apply": user.has(Role.APPROVER),
        },
        status=status,
    )


@router.get("/whatif", response_class=HTMLResponse)
def whatif_page(request: Request) -> HTMLResponse:
    return _scenario_page(request, user_of(request), EXAMPLE)


@router.post("/whatif", response_class=HTMLResponse)
async def whatif_post(request: Request) -> HTMLResponse:
    """Play the pasted scenario on a copy of the twin (operator), or stage it on the live twin
    through the gateway (approver): the same services the CLI and ``/v1/twin`` call."""
    user = user_of(request)
    actx = actx_of(request)
    text = ""
    try:
        form = await post_form(request)
        text = (form.get("scenario") or [""])[0]
        action = one(form, "action")
        if action == "apply":
            if not user.has(Role.APPROVER):
                raise PolicyDenied(f"{user.id} has no approver role and may not stage a scenario on the live twin")
        elif not user.has(Role.OPERATOR):
            raise PolicyDenied(f"{user.id} has no operator role and may not play what-ifs")
        parsed = parse_scenario(text)
        if parsed.scenario is None or any(f.severity == "error" for f in parsed.findings):
            return _scenario_page(request, user, text, findings=parsed.findings, status=422)
        if action == "apply":
            applied = apply_scenario(parsed, actx.gateway, actor=user.actor())
            return _scenario_page(
                request, user, text, applied=applied, findings=applied.findings, status=200 if applied.ok else 422
            )
        report = whatif(parsed, actx.db, actx.twin_clock, choose_planner(actx, "auto"))
        return _scenario_page(
            request, user, text, report=report, findings=report.findings, status=200 if report.ok else 422
        )
    except PolicyDenied as exc:
        return _scenario_page(request, user, text, message=exc.message, status=403)
    except (ConfigurationError, OrderOpsError) as exc:
        return _scenario_page(request, user, text, message=exc.message, status=409)
