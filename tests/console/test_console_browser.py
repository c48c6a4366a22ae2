"""The console end to end in headless Chromium (Debian's, driven by Playwright) against uvicorn.

Each test fails on any JavaScript console error or page error, checks that every form control has
a label and that text meets WCAG AA contrast (4.5:1), and saves a screenshot of each page it visits
(to ``$ORDEROPS_SCREENSHOTS`` when set — ``docs/screenshots`` holds the committed ones — else to a
temporary folder).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.worker_dbos import DbosWorker
from graphs.runs import FINAL_STATUSES
from tests.console.conftest import RUN_ID, Served, store_eval_runs

CONTRAST_JS = """
() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  const bg = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  const bad = [];
  const sel = 'h1, h2, h3, p, a, button, label, th, td, dt, dd, summary, legend, span, code, li, small, pre';
  for (const el of document.querySelectorAll(sel)) {
    if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const fg = parse(getComputedStyle(el).color), b = bg(el);
    const [l1, l2] = [lum(fg), lum(b)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const what = `${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}"`;
    if (ratio < 4.5) bad.push(`${what}: ${ratio.toFixed(2)}`);
  }
  return bad;
}
"""

LABELS_JS = """
() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden')
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map((el) => el.name || el.id)
"""


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ORDEROPS_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(base_url=served.url, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    yield pg
    context.close()
    assert errors == [], errors


def sign_in(page: Any, key: str) -> None:
    page.goto("/console/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/approvals"))


def check_page(page: Any, shots: Path, name: str) -> None:
    assert page.evaluate(LABELS_JS) == [], f"{name}: form controls without a label"
    assert page.evaluate(CONTRAST_JS) == [], f"{name}: text below 4.5:1 contrast"
    page.screenshot(path=str(shots / f"{name}.png"))


def test_approve_a_subset_by_filter_then_the_run_resumes(page: Any, served: Served, shots: Path) -> None:
    console = served.console
    sign_in(page, console.api.key["approver"])
    check_page(page, shots, "approvals")
    first = console.approval_ids()[0]
    card = page.locator(f"#approval-{first}")
    req = console.api.actx.guard.approvals.get(first)
    page.evaluate("() => { window.__notReloaded = true; }")

    card.get_by_label("SLA after change").select_option("on_time")
    card.get_by_role("button", name="Preview match").click()
    match = card.locator(f"#match-{first}")
    match.get_by_text(re.compile(r"\d+ of \d+ orders match")).wait_for()
    n = int(re.findall(r"(\d+) of", match.inner_text())[0])
    assert 0 < n < len(req.items)
    card.get_by_role("button", name="Approve matching orders").click()
    result = page.locator(f"#approval-{first} [data-testid=result]")
    result.wait_for()
    assert result.inner_text().startswith(f"approved {n} of {len(req.items)} orders; the run continues")
    assert page.locator(f"#approval-{first} [data-testid=approved-count]").inner_text() == f"{n} of {len(req.items)}"
    assert page.evaluate("() => window.__notReloaded") is True, "the decision must swap in place, not reload"
    check_page(page, shots, "approval-decided")

    # Keyboard only: from the note field, Tab reaches "Approve all", Enter approves.
    for aid in console.approval_ids()[1:]:
        page.locator(f"#approve-reason-{aid}").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.dataset.testid") == "approve-all"
        page.keyboard.press("Enter")
        page.locator(f"#approval-{aid} [data-testid=result]").wait_for()
        assert page.locator(f"#approval-{aid} [data-testid=result]").inner_text().startswith("approved;")

    with DbosWorker(console.api.actx, planner="playbook") as worker:
        while worker.run_once() is not None:
            pass
    status = console.store.get(run_id=RUN_ID).status
    assert status in FINAL_STATUSES, status
    page.goto(f"/console/runs/{RUN_ID}")
    assert page.locator("h1 .badge").inner_text() == status
    assert page.get_by_text("executed").count() > 0


def test_runs_list_timeline_network_and_audit(page: Any, served: Served, shots: Path) -> None:
    sign_in(page, served.console.api.key["admin"])
    page.get_by_role("link", name="Runs", exact=True).click()
    page.get_by_label("Status").select_option("awaiting_approval")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=awaiting_approval"))
    check_page(page, shots, "runs")
    page.get_by_role("link", name=RUN_ID).click()
    timeline = page.locator("[data-testid=timeline]")
    timeline.wait_for()
    assert timeline.locator("li.ev").count() >= 3
    parked = timeline.locator("li.ev-awaiting_approval").first
    parked.locator("summary", has_text="Arguments").click()
    assert "order_ids" in parked.locator("details[open] pre").first.inner_text()
    check_page(page, shots, "run-timeline")

    page.get_by_role("link", name="Network").click()
    page.locator("svg.map circle").first.wait_for()
    assert page.locator("svg.map circle").count() == len(served.console.api.actx.adapters.wms.list_nodes())
    check_page(page, shots, "network")

    page.get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Verify hash chain").click()
    page.get_by_text("Chain intact").wait_for()
    check_page(page, shots, "audit")

    store_eval_runs(served.console.api)
    page.get_by_role("link", name="Evals").click()
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("regressed").first.wait_for()
    check_page(page, shots, "evals-compare")
    page.go_back()
    check_page(page, shots, "evals")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/login"))
    check_page(page, shots, "login")


def test_viewer_has_no_decision_controls(page: Any, served: Served) -> None:
    sign_in(page, served.console.api.key["viewer"])
    assert page.get_by_text("Your role can see requests but not decide them.").is_visible()
    assert page.locator("[data-testid=approve-all]").count() == 0
    assert page.get_by_role("link", name="Audit").count() == 0


def test_correct_a_review_field_and_the_order_is_created(page: Any, served: Served, shots: Path) -> None:
    from tests.console.conftest import queue_review_item

    console = served.console
    review = queue_review_item(console.api, Path(console.api.actx.settings.home) / "docs")
    sign_in(page, console.api.key["approver"])
    page.get_by_role("link", name="Intake review").click()
    page.get_by_role("link", name=review.item_id[:8]).click()
    page.get_by_role("button", name="Show the source of Line 2 SKU (part ACME-778)").click()
    highlighted = page.locator("[data-testid=document] .hl")
    assert highlighted.count() >= 1
    assert "ACME-778" in highlighted.first.inner_text()
    check_page(page, shots, "intake-review")

    sku = page.get_by_role("textbox", name="Line 2 SKU (part ACME-778)")
    assert sku.input_value() == ""
    sku.fill(review.sku)
    page.get_by_role("button", name="Save and approve (create the order)").click()
    result = page.locator("[data-testid=result]")
    result.wait_for()
    assert result.inner_text().startswith("approved: order ")
    order_id = page.locator("[data-testid=order-id]").inner_text()
    order = console.api.actx.adapters.oms.get_order(order_id)
    assert order.customer_id == review.customer_id
    assert review.sku in [ln.sku for ln in order.lines]
    check_page(page, shots, "intake-approved")
