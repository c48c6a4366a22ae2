"""Benchmark: the hostile document set through ``orderops intake``, one process per document.

Writes the set (:mod:`evals.bench.hostile_docs`: a 20,000-encoded-word Subject, a 2M-glyph PDF, a
10-page PDF of 4,500-character paragraphs with no full stop, a PDF flate bomb, a 3.8 MB EDIFACT
file, a 100k-line X12 file, a zip-bomb XLSX) into a temporary home with a small seeded network,
then runs ``/usr/bin/time -v orderops intake --json FILE`` for each and prints the wall time, the
peak memory and the outcome (status and reason).

Two memory figures: ``time -v``'s maximum resident set size (the largest single process it saw
reaped: the CLI, or a parse child the CLI's fork server reaped) and the peak of the whole process
tree's resident memory summed, sampled from ``/proc`` every 20 ms (the CLI, its fork server and
the parse child together). The target of issue 16: every document ends with an outcome within
60 s and under 1 GB. Numbers are printed, never asserted.

A clean two-line CSV runs first as the baseline: the CLI's own start (interpreter, database,
graph, the parse fork server) is in every row. A second table parses each document with
:func:`intake.sandbox.parse_isolated` from this process (fork server warm): the parse alone,
with the child's own peak memory.

Run: ``.venv/bin/python -m evals.bench.bench_hostile [--scale 1.0] [--keep DIR]``
(needs ``/usr/bin/time``: Debian's ``time`` package).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from evals.bench.hostile_docs import write_all
from intake.classify import sniff
from intake.documents import DocumentLimits
from intake.sandbox import parse_isolated

ROOT = Path(__file__).resolve().parents[2]
ORDEROPS = Path(sys.executable).parent / "orderops"
SMALL = ["--orders", "200", "--nodes", "4", "--skus", "40", "--customers", "8"]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(root: int) -> int:
    kids = _children()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kb(pid)
        todo.extend(kids.get(pid, []))
    return total


def _sample_peak(pid: int, stop: threading.Event, out: list[int]) -> None:
    while not stop.is_set():
        out[0] = max(out[0], _tree_rss_kb(pid))
        stop.wait(0.02)


def run_one(path: Path, env: dict[str, str], timeout: float) -> dict[str, object]:
    cmd = ["/usr/bin/time", "-v", str(ORDEROPS), "intake", "--json", str(path)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_peak, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        out = ""
    finally:
        stop.set()
        sampler.join()
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    status, reason = "NO OUTCOME", err.strip().splitlines()[-1][:120] if err.strip() else ""
    try:
        report = json.loads(out)[0]
        status, reason = report["status"], report.get("reason") or ""
    except (ValueError, LookupError, TypeError):
        pass
    return {"file": path.name, "bytes": path.stat().st_size, "wall_s": wall,
            "time_v_max_rss_mb": int(m.group(1)) / 1024 if m else None, "tree_peak_rss_mb": peak[0] / 1024,
            "status": status, "reason": reason}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scale", type=float, default=1.0, help="1.0: the sizes of the issue's report")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before a run is killed and reported")
    ap.add_argument("--keep", type=Path, default=None, help="write the documents here and keep them")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", default=None, help="run only the documents whose file name contains this")
    args = ap.parse_args(argv)
    if not Path("/usr/bin/time").exists():
        print("needs /usr/bin/time (apt-get install -y time)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="orderops-hostile-"))
    try:
        docs = write_all(args.keep or tmp / "docs", args.scale)
        docs = [p for p in docs if args.only is None or args.only in p.name]
        baseline = (args.keep or tmp / "docs") / "baseline.csv"
        baseline.write_bytes(b"po_number,sku,quantity\nPO-1,SKU-00001,2\n")
        docs = [baseline, *docs]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ORDEROPS_DATABASE_URL")}
        env.update({"ORDEROPS_HOME": str(tmp / "home"), "PYTHONPATH": str(ROOT)})
        subprocess.run([str(ORDEROPS), "init", *SMALL, "--json"], env=env, cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        rows = [run_one(p, env, args.timeout) for p in docs]
        direct = [_parse_direct(p) for p in docs]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps({"cli": rows, "parse": direct}, indent=2))
        return 0
    print(f"{'document':<22}{'bytes':>11}{'wall s':>8}{'time-v MB':>11}{'tree MB':>9}  outcome")
    for r in rows:
        tv = r["time_v_max_rss_mb"]
        print(f"{r['file']:<22}{r['bytes']:>11,}{r['wall_s']:>8.1f}{tv if tv is None else f'{tv:.0f}':>11}"
              f"{r['tree_peak_rss_mb']:>9.0f}  {r['status']}: {r['reason']}")  # fmt: skip
    print(f"\n{'parse only':<22}{'parse s':>8}{'child MB':>10}  findings")
    for d in direct:
        print(f"{d['file']:<22}{d['parse_s']:>8.2f}{d['child_max_rss_mb']:>10.0f}  {d['codes']}")
    return 0


def _parse_direct(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    fmt = sniff(data, filename=path.name)
    out = parse_isolated(data, fmt=fmt, filename=path.name, document=path.name, limits=DocumentLimits())
    return {"file": path.name, "parse_s": out.parse_seconds, "child_max_rss_mb": out.child_max_rss_kb / 1024,
            "codes": ", ".join(dict.fromkeys(f.code for f in out.findings))}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
