"""The console's pictures in a real browser (Debian Chromium via Playwright): from the network map
to a node's charts, with labelled controls and readable contrast, and no script errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.console.conftest import Served
from tests.console.test_console_browser import check_page, page, shots, sign_in

__all__ = ["page", "shots"]  # fixtures used by the test below


def test_from_the_map_to_a_nodes_charts(page: Any, served: Served, shots: Path) -> None:
    sign_in(page, served.console.api.key["viewer"])
    page.get_by_role("link", name="Network").click()
    page.locator("svg.map path.state").first.wait_for()
    assert page.locator("svg.map path.state").count() == 49
    node = served.console.api.net.busiest_dc()
    page.locator(f'svg.map a[href="/console/nodes/{node}"]').click()
    page.wait_for_url(f"**/console/nodes/{node}")
    assert page.locator("svg.chart").count() == 3
    box = page.locator("svg.chart").first.bounding_box()
    assert box is not None
    assert box["width"] > 300
    check_page(page, shots, "node")
    page.get_by_label("SKU", exact=True).select_option(index=1)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**sku=*")
    assert page.locator("svg.chart polygon.band").count() == 1


def test_an_operator_plays_a_what_if_in_the_browser(page: Any, served: Served, shots: Path) -> None:
    sign_in(page, served.console.api.key["operator"])
    page.get_by_role("link", name="What-if").click()
    page.wait_for_url("**/console/whatif")
    node = served.console.api.net.other_dc(served.console.api.net.busiest_dc())
    text = f"name: {node} closes\nevents:\n  - node_status: {{node: {node}, status: closed}}\n"
    page.get_by_label("Or load a file").set_input_files(
        files=[{"name": "closure.yaml", "mimeType": "text/yaml", "buffer": text.encode()}]
    )
    page.wait_for_function("() => document.getElementById('scenario').value.includes('closes')")
    assert page.get_by_label("Scenario (YAML)").input_value() == text
    page.get_by_role("button", name="Play on a copy").click()
    kpis = page.locator("[data-testid=kpis]")
    kpis.wait_for()
    assert "On-time rate" in kpis.inner_text()
    check_page(page, shots, "whatif")
