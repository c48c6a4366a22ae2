"""Pictures for the console, drawn on the server as SVG: time-series charts (a node's backlog and
pick rate with the detector's baseline and threshold, a forecast with its interval) and the network
map on US state outlines.

No chart library and no script: each function returns SVG markup (escaped, ready for a template),
sized by its ``viewBox`` so the page's CSS scales it. The state outlines are the US Census Bureau's
cartographic boundaries (public domain), simplified into ``data/us_states.json`` (see its README).

What this module must never do: read the database or the adapters; it draws what it is given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

DATA = Path(__file__).resolve().parent / "data"

PALETTE = {
    "value": "#0b5394",
    "baseline": "#6b7280",
    "threshold": "#a4161a",
    "forecast": "#b45309",
    "band": "#fcd9a8",
}


@dataclass(frozen=True)
class Line:
    """One series on a chart: a value per day (None: no value that day)."""

    name: str
    values: Sequence[float | None]
    colour: str = PALETTE["value"]
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded interval (a forecast's), low and high per day."""

    name: str
    low: Sequence[float]
    high: Sequence[float]
    start: int
    """Index of the band's first day on the chart's x axis."""
    colour: str = PALETTE["band"]


@dataclass(frozen=True)
class Chart:
    title: str
    days: Sequence[date]
    lines: Sequence[Line]
    bands: Sequence[Band] = field(default_factory=tuple)
    y_label: str = ""
    marks: Sequence[int] = field(default_factory=tuple)
    """Days to mark with a vertical rule (alarms)."""


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}".rstrip("0").rstrip(".")


def line_chart(c: Chart, *, width: int = 640, height: int = 220) -> Markup:
    """A line chart over ``c.days`` with a legend; y from 0 (or the lowest value) to the highest."""
    left, right, top, bottom = 52, 10, 24, 34
    pw, ph = width - left - right, height - top - bottom
    values = [v for ln in c.lines for v in ln.values if v is not None and math.isfinite(v)]
    values += [v for b in c.bands for v in (*b.low, *b.high) if math.isfinite(v)]
    lo = min([0.0, *values])
    hi = max([1e-9, *values]) * 1.05
    n = max(len(c.days), 2)

    def x(i: int) -> float:
        return round(left + i / (n - 1) * pw, 1)

    def y(v: float) -> float:
        return round(top + (hi - v) / (hi - lo) * ph, 1)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(c.title)}">',
        f"<title>{escape(c.title)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#ffffff" stroke="#d1d5db"/>',
    ]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v)}" y2="{y(v)}" stroke="#eef0f3"/>')
        out.append(f'<text x="{left - 4}" y="{y(v) + 4}" text-anchor="end" font-size="10">{_fmt(v)}</text>')
    step = max(1, (n - 1) // 6)
    for i in range(0, len(c.days), step):
        out.append(f'<text x="{x(i)}" y="{top + ph + 14}" text-anchor="middle" font-size="10">{c.days[i]:%b %d}</text>')
    if c.y_label:
        out.append(f'<text x="4" y="{top - 8}" font-size="10">{escape(c.y_label)}</text>')
    out += _bands(c.bands, x, y)
    out += [
        f'<line class="mark" x1="{x(i)}" x2="{x(i)}" y1="{top}" y2="{top + ph}" stroke="#fca5a5"/>' for i in c.marks
    ]
    out += _lines(c.lines, x, y)
    legend_at = max(left, 20 + 6 * len(c.y_label))
    out += _legend([(ln.name, ln.colour) for ln in c.lines] + [(b.name, b.colour) for b in c.bands], legend_at)
    out.append("</svg>")
    return Markup("".join(out))  # every text above went through escape()


Scale = Callable[[float], float]


def _bands(bands: Sequence[Band], x: Callable[[int], float], y: Scale) -> list[str]:
    out = []
    for b in bands:
        upper = [f"{x(b.start + i)},{y(v)}" for i, v in enumerate(b.high)]
        lower = [f"{x(b.start + i)},{y(v)}" for i, v in reversed(list(enumerate(b.low)))]
        out.append(
            f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{b.colour}" fill-opacity="0.6">'
            f"<title>{escape(b.name)}</title></polygon>"
        )
    return out


def _lines(lines: Sequence[Line], x: Callable[[int], float], y: Scale) -> list[str]:
    out = []
    for ln in lines:
        dash = ' stroke-dasharray="5 3"' if ln.dashed else ""
        for seg in _segments(ln.values):
            pts = " ".join(f"{x(i)},{y(v)}" for i, v in seg)
            out.append(
                f'<polyline class="line" points="{pts}" fill="none" stroke="{ln.colour}" stroke-width="1.5"{dash}>'
                f"<title>{escape(ln.name)}</title></polyline>"
            )
    return out


def _legend(items: Sequence[tuple[str, str]], left: int) -> list[str]:
    out, lx = [], left
    for name, colour in items:
        out.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="15" font-size="11">{escape(name)}</text>')
        lx += 24 + 6 * len(name)
    return out


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive finite values (a gap breaks the line)."""
    segs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if segs[-1]:
                segs.append([])
            continue
        segs[-1].append((i, float(v)))
    return [s for s in segs if len(s) >= 1]


# --- the network map ----------------------------------------------------------------------------

LON0, LON1, LAT0, LAT1 = -125.0, -66.5, 24.3, 49.5
"""The contiguous United States."""
KX = math.cos(math.radians(37.5))


@cache
def state_outlines() -> Mapping[str, list[list[float]]]:
    """Postal code -> rings (flat lon, lat lists), from the bundled file."""
    raw = json.loads((DATA / "us_states.json").read_text())
    states: dict[str, list[list[float]]] = raw["states"]
    return states


@dataclass(frozen=True)
class MapNode:
    id: str
    lat: float
    lon: float
    status: str
    utilisation: float


@dataclass(frozen=True)
class Projection:
    width: int = 640
    pad: int = 10

    @property
    def scale(self) -> float:
        return (self.width - 2 * self.pad) / ((LON1 - LON0) * KX)

    @property
    def height(self) -> int:
        return math.ceil((LAT1 - LAT0) * self.scale + 2 * self.pad)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            round(self.pad + (lon - LON0) * KX * self.scale, 1),
            round(self.pad + (LAT1 - lat) * self.scale, 1),
        )


NODE_FILL = {"congested": "#b45309", "closed": "#a4161a"}


def network_map(nodes: Sequence[MapNode], outages: Mapping[str, Sequence[str]], *, width: int = 640) -> Markup:
    """Nodes at their coordinates on the state outlines; states where a carrier is out (lanes in
    outage: ``outages`` maps a state to the carriers down there) are shaded and say which."""
    p = Projection(width=width)
    out = [
        f'<svg class="map" viewBox="0 0 {width} {p.height}" role="img" aria-labelledby="map-title">',
        '<title id="map-title">Map of fulfilment nodes on US state outlines; colour shows node status, size '
        "shows utilisation; shaded states have a carrier outage</title>",
        f'<rect x="0" y="0" width="{width}" height="{p.height}" fill="#f8fafc"/>',
    ]
    for code, rings in sorted(state_outlines().items()):
        down = outages.get(code, ())
        fill = "#fecaca" if down else "#ffffff"
        d = " ".join(
            "M" + " L".join("{},{}".format(*p.xy(r[i], r[i + 1])) for i in range(0, len(r), 2)) + " Z" for r in rings
        )
        tip = f"{code}: outage ({', '.join(down)})" if down else code
        cls = "state outage" if down else "state"
        out.append(
            f'<path class="{cls}" data-state="{code}" d="{d}" fill="{fill}" stroke="#9ca3af" stroke-width="0.6">'
            f"<title>{escape(tip)}</title></path>"
        )
    for n in nodes:
        cx, cy = p.xy(n.lon, n.lat)
        r = round(4 + min(n.utilisation, 2.0) * 5, 1)
        fill = NODE_FILL.get(n.status, "#0b5394")
        left = cx > width - 120
        tx, anchor = (cx - r - 3, "end") if left else (cx + r + 3, "start")
        out.append(
            f'<a href="/console/nodes/{escape(n.id)}"><g class="pt st-{escape(n.status)}">'
            f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{fill}" fill-opacity="0.85" stroke="#ffffff">'
            f"<title>{escape(n.id)}: {escape(n.status)}, {round(n.utilisation * 100)}% utilised</title></circle>"
            f'<text x="{tx}" y="{cy + 4}" text-anchor="{anchor}" font-size="11">{escape(n.id)}</text></g></a>'
        )
    out.append("</svg>")
    return Markup("".join(out))  # every text above went through escape()
