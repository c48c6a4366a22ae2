"""Eval reports in the console: the latest eval runs, their HTML reports, and A/B comparisons.

Reads what :mod:`evals.runner` stored; formats nothing itself beyond a table — the report page is
:func:`evals.report.render_html`'s own self-contained HTML (no scripts), served as is.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.console.pages import actx_of, render, user_of
from core.errors import NotFound
from evals.compare import compare_runs
from evals.report import headline, render_html
from evals.runner import list_runs, load_run

router = APIRouter(prefix="/console/evals", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def evals_page(request: Request) -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    runs = list_runs(actx.db, limit=50)
    heads = {}
    for r in runs[:10]:
        try:
            heads[r["id"]] = headline(load_run(actx.db, r["id"]).metrics)
        except NotFound:
            continue
    return render(request, "evals.html", {"user": user, "runs": runs, "heads": heads})


@router.get("/compare", response_class=HTMLResponse)
def evals_compare(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    try:
        comparison = compare_runs(load_run(actx.db, a), load_run(actx.db, b))
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    return render(request, "evals_compare.html", {"user": user, "c": comparison})


@router.get("/{run_id}/report.html")
def evals_report(request: Request, run_id: str) -> Response:
    """The run's HTML report, exactly as ``orderops eval`` writes it (inline CSS and SVG only)."""
    user_of(request)
    try:
        body = render_html(load_run(actx_of(request).db, run_id))
    except NotFound:
        return Response("no such eval run", status_code=404, media_type="text/plain")
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            "Cache-Control": "no-store",
        },
    )
