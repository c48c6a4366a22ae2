"""Benchmark of the console's pictures: a node page's numbers (first and cached) and the network
map's SVG, on a generated network in a throw-away SQLite database.

    python -m evals.bench.bench_pictures [--orders 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from api.console import charts
from core.db import make_database, migrate
from core.db.tables import NodeRow
from core.netgen import NetworkSpec, generate_network
from services.pictures import node_signals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.bench_pictures")
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(db)
        generate_network(db, NetworkSpec(orders=args.orders))
        with db.sessions() as s:
            nodes = list(s.scalars(select(NodeRow)))
        node = nodes[0].id
        t = time.perf_counter()
        node_signals(db, node)
        first = time.perf_counter() - t
        t = time.perf_counter()
        sig = node_signals(db, node)
        cached = time.perf_counter() - t
        pins = [charts.MapNode(n.id, n.lat, n.lon, n.status, 0.5) for n in nodes]
        t = time.perf_counter()
        svg = charts.network_map(pins, {"TX": ["X"]})
        drawn = time.perf_counter() - t
        db.dispose()
    print(
        f"node page numbers ({node}, {len(sig.days)} days): first {first * 1000:.0f} ms, again {cached * 1000:.0f} ms"
    )
    print(f"network map: {len(pins)} nodes on 49 outlines in {drawn * 1000:.1f} ms, {len(svg) / 1024:.0f} KB of SVG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
