"""Console pictures (issue 18, item 6): a node's backlog and pick-rate charts carry the detector's
baseline and threshold; the forecast chart its interval; the network map is drawn on the bundled
state outlines with the states of a carrier outage shaded."""

from __future__ import annotations

import re

import numpy as np

from api.console import charts
from core.anomaly import NODE_BACKLOG, robust_alarms
from core.domain import CarrierStatus
from services.pictures import node_signals
from tests.console.conftest import Console


def test_node_page_draws_backlog_pick_rate_and_forecast(console: Console) -> None:
    c = console.client("viewer")
    node = console.api.net.busiest_dc()
    r = c.get(f"/console/nodes/{node}")
    assert r.status_code == 200, r.text
    assert r.text.count('<svg class="chart"') == 3
    assert "baseline (weekday median)" in r.text
    assert "alarm threshold" in r.text
    assert "90% interval" in r.text
    assert '<polygon class="band"' in r.text
    s = node_signals(console.api.actx.db, node)
    assert s.forecast is not None
    other = s.skus[-1]
    r2 = c.get(f"/console/nodes/{node}", params={"sku": other})
    assert f"Demand for {other} at {node}" in r2.text
    assert c.get("/console/nodes/NO-SUCH-NODE").status_code == 404
    assert c.get(f"/console/nodes/{node}", params={"sku": "NO-SUCH-SKU"}).status_code == 404


def test_the_charted_threshold_is_the_detectors(console: Console) -> None:
    from services.pictures import twin_history

    h = twin_history(console.api.actx.db)
    assert h is not None
    node = h.nodes[0]
    s = node_signals(console.api.actx.db, node)
    x = h.node_backlog[:, [0]].astype(np.float64)
    alarm, _z, center, _scale = robust_alarms(x, NODE_BACKLOG)
    assert s.backlog.alarms == [int(i) for i in np.flatnonzero(alarm[:, 0])]
    day = 100
    assert s.backlog.baseline[day] == round(float(center[day, 0]), 3)
    threshold = s.backlog.threshold[day]
    assert threshold is not None
    assert threshold > float(center[day, 0])
    # an alarm is exactly a day past both the threshold and the detector's ratio floor
    for i, v in enumerate(s.backlog.values):
        t = s.backlog.threshold[i]
        if i in s.backlog.alarms:
            assert v is not None
            assert t is not None
            assert v > t


def test_network_map_has_state_outlines_and_shades_outage_states(console: Console) -> None:
    carriers = console.api.actx.adapters.carriers.list_carriers()
    console.api.actx.adapters.carriers.set_carrier_status(
        carriers[0].id, CarrierStatus.OUTAGE, outage_states=["TX", "OK"]
    )
    r = console.client("viewer").get("/console/network")
    assert r.status_code == 200
    states = re.findall(r'<path class="state[^"]*" data-state="([A-Z]{2})"', r.text)
    assert len(states) == 49
    shaded = set(re.findall(r'<path class="state outage" data-state="([A-Z]{2})"', r.text))
    assert shaded == {"TX", "OK"}
    assert f"TX: outage ({carriers[0].id})" in r.text
    for n in console.api.actx.adapters.wms.list_nodes():
        assert f'href="/console/nodes/{n.id}"' in r.text


def test_map_projection_places_known_cities_inside_their_states() -> None:
    """A node's dot lands inside its state's outline (ray casting on the projected ring)."""
    p = charts.Projection()
    outlines = charts.state_outlines()
    for code, lat, lon in (("TX", 32.7767, -96.797), ("IL", 41.8781, -87.6298), ("CA", 34.05, -118.24)):
        x, y = p.xy(lon, lat)
        inside = False
        for ring in outlines[code]:
            pts = [p.xy(ring[i], ring[i + 1]) for i in range(0, len(ring), 2)]
            for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
                if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
        assert inside, code
