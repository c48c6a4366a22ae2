"""Rebuild ``us_states.json`` from us-atlas' ``states-10m.json`` (US Census Bureau cartographic
boundaries, 2017; see README.md): ``python -m api.console.data.make_us_states states-10m.json``.

Decodes the TopoJSON arcs, keeps the 48 contiguous states and DC, simplifies each ring
(Douglas-Peucker, 0.04 degrees) and rounds to 0.01 degrees, so the console's map file stays small.
Run by hand when the outlines are refreshed; the console only reads the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TOLERANCE = 0.04
POSTAL = {
    "Alabama": "AL", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Florida": "FL", "Georgia": "GA",
    "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip

Point = tuple[float, float]


def _arcs(topo: dict[str, Any]) -> list[list[Point]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    out: list[list[Point]] = []
    for arc in topo["arcs"]:
        x = y = 0
        pts: list[Point] = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            pts.append((x * sx + tx, y * sy + ty))
        out.append(pts)
    return out


def _ring(arcs: list[list[Point]], refs: list[int]) -> list[Point]:
    ring: list[Point] = []
    for i in refs:
        pts = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(pts if not ring else pts[1:])
    return ring


def _simplify(pts: list[Point], tol: float) -> list[Point]:
    """Douglas-Peucker, iterative (rings have thousands of points)."""
    if len(pts) < 4:
        return pts
    keep = [False] * len(pts)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        (x1, y1), (x2, y2) = pts[a], pts[b]
        dx, dy = x2 - x1, y2 - y1
        norm = (dx * dx + dy * dy) ** 0.5 or 1e-12
        best, idx = 0.0, -1
        for i in range(a + 1, b):
            x0, y0 = pts[i]
            d = abs(dy * x0 - dx * y0 + x2 * y1 - y2 * x1) / norm
            if d > best:
                best, idx = d, i
        if best > tol and idx > 0:
            keep[idx] = True
            stack += [(a, idx), (idx, b)]
    return [p for p, k in zip(pts, keep, strict=True) if k]


def _simplify_ring(ring: list[Point], tol: float) -> list[Point]:
    """A closed ring split at its point farthest from the start, each half simplified."""
    x0, y0 = ring[0]
    far = max(range(len(ring)), key=lambda i: (ring[i][0] - x0) ** 2 + (ring[i][1] - y0) ** 2)
    return _simplify(ring[: far + 1], tol)[:-1] + _simplify(ring[far:], tol)


def build(topo: dict[str, Any]) -> dict[str, list[list[float]]]:
    """Postal code -> rings, each a flat ``[lon, lat, lon, lat, ...]`` list."""
    arcs = _arcs(topo)
    states: dict[str, list[list[float]]] = {}
    for geom in topo["objects"]["states"]["geometries"]:
        code = POSTAL.get(geom["properties"]["name"])
        if code is None:
            continue
        polys = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
        rings: list[list[float]] = []
        for poly in polys:
            ring = _simplify_ring(_ring(arcs, poly[0]), TOLERANCE)  # outer rings only: lakes are not drawn
            if len(ring) >= 4:
                rings.append([round(c, 2) for p in ring for c in p])
        states[code] = rings
    return states


def main(argv: list[str]) -> int:
    topo = json.loads(Path(argv[0]).read_text())
    out = Path(__file__).with_name("us_states.json")
    states = build(topo)
    out.write_text(json.dumps({"source": "US Census Bureau cartographic boundaries 2017 via us-atlas 3.0.1",
                               "states": states}, separators=(",", ":")))  # fmt: skip
    print(f"{out}: {len(states)} states, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
