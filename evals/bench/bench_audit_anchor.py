"""Benchmark of audit anchoring: what signed checkpoints cost an append, one checkpoint, and verify.

(a) Appends. ``--appends`` audit events are appended to a trail without an anchor and to one with
the file anchor (a checkpoint every ``--every`` appends: one Ed25519 signature, one ``O_APPEND``
write, one fsync), alternating in blocks so that both see the same database; median and p99 per
append, and the per-append overhead.

(b) One checkpoint on its own (sign, append, fsync), median over ``--reps``.

(c) ``verify`` of the whole trail, chain only versus chain plus anchors.

It only ever creates and drops its own databases and a temporary anchor file.

    python -m evals.bench.bench_audit_anchor --backend both
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.db import Database
from evals.bench.bench_network import DEFAULT_PG_ADMIN, fresh_database, percentile
from guardrails.anchor import AuditAnchor, CheckpointSigner, FileAnchorSink
from guardrails.audit import AuditEvent, AuditTrail, EventType

BLOCK = 50


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        event_type=EventType.PROPOSED,
        run_id=f"run-{i % 7}",
        tool="reroute_orders",
        arguments={"order_ids": [f"SO-{i}", f"SO-{i + 1}"], "to_node_id": "DC-ATL"},
        reasons=[f"bench {i}"],
    )


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(percentile(samples, 99) * 1000, 3),
    }


def bench(db: Database, appends: int, every: int, reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orderops_anchor_") as tmp:
        anchor = AuditAnchor(
            CheckpointSigner.generate("bench"),
            FileAnchorSink(Path(tmp) / "anchors.jsonl"),
            every=every,
            interval_s=None,
        )
        plain, anchored = AuditTrail(db, trail="plain"), AuditTrail(db, trail="anchored", anchor=anchor)
        times: dict[str, list[float]] = {"plain": [], "anchored": []}
        i = 0
        while i < appends:
            for name, trail in (("plain", plain), ("anchored", anchored)):
                for k in range(BLOCK):
                    started = time.perf_counter()
                    trail.append(_event(i + k))
                    times[name].append(time.perf_counter() - started)
            i += BLOCK
        checkpoint = []
        for _ in range(reps):
            started = time.perf_counter()
            anchored.checkpoint(verify=False)
            checkpoint.append(time.perf_counter() - started)
        verify: dict[str, float] = {}
        for name, trail in (("chain_only", AuditTrail(db, trail="anchored")), ("with_anchors", anchored)):
            started = time.perf_counter()
            report = trail.verify()
            verify[name + "_s"] = round(time.perf_counter() - started, 3)
            assert report.ok, report.problem
        anchors = len((Path(tmp) / "anchors.jsonl").read_text().splitlines())
    plain_ms, anchored_ms = _ms(times["plain"]), _ms(times["anchored"])
    return {
        "appends_per_trail": len(times["plain"]),
        "every": every,
        "append_plain": plain_ms,
        "append_anchored": anchored_ms,
        "append_overhead_mean_ms": round(
            (statistics.mean(times["anchored"]) - statistics.mean(times["plain"])) * 1000, 3
        ),
        "checkpoint": _ms(checkpoint),
        "verify": verify,
        "anchors_written": anchors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    out: dict[str, Any] = {}
    for backend in backends:
        with fresh_database(backend, args.pg_admin) as db:
            out[backend] = bench(db, args.appends, args.every, args.reps)
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
