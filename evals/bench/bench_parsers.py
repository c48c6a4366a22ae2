"""Benchmark: documents per second of our X12 and EDIFACT parsers on the public sample corpora.

Compares with pydifact (tokenize + segment objects, no mapping to a purchase order) on the same
EDIFACT files, and with pyx12 on the X12 files when it is installed. Numbers are printed, never
asserted. Run: ``.venv/bin/python evals/bench/bench_parsers.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from intake.edifact import parse_edifact
from intake.x12 import parse_x12

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"


def _files(pattern_dirs: list[tuple[str, str]]) -> list[tuple[str, bytes]]:
    out = []
    for sub, glob in pattern_dirs:
        for p in sorted((CORPORA / sub).glob(glob)):
            if p.is_file():
                out.append((p.name, p.read_bytes()))
    return out


def _bench(
    name: str, files: list[tuple[str, bytes]], fn: Callable[[bytes], object], repeat: int
) -> list[tuple[str, bytes]]:
    """Time ``fn`` over the files it can parse; returns those files (for a like-for-like rerun)."""
    ok = []
    for fname, data in files:
        try:
            fn(data)
            ok.append((fname, data))
        except Exception as exc:
            print(f"  {name}: cannot parse {fname}: {type(exc).__name__}")
    if not ok:
        print(f"{name:<28} no parseable files")
        return ok
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _, data in ok:
            fn(data)
        rounds.append(time.perf_counter() - t0)
    best, med = min(rounds), statistics.median(rounds)
    size = sum(len(d) for _, d in ok)
    print(
        f"{name:<28} files={len(ok):>3}  docs/s={len(ok) / med:>9.0f} (best {len(ok) / best:>9.0f})  "
        f"MB/s={size / med / 1e6:6.2f}"
    )
    return ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    x12 = _files([("x12-850/bots-x12-demo/in", "*"), ("x12-850/node-x12", "*.edi"), ("x12-850/edi-net", "*.edi")])
    edi = _files([("edifact-orders/bots-edifactorder2xml/in", "*"), ("edifact-orders/pydifact", "*.edi")])
    print(f"corpus: {len(x12)} X12 files, {len(edi)} EDIFACT files; median of {args.repeat} rounds")
    _bench("intake.x12.parse_x12", x12, parse_x12, args.repeat)
    try:
        import pyx12.x12file  # type: ignore[import-not-found]

        def _pyx12(data: bytes) -> object:
            import io

            src = pyx12.x12file.X12Reader(io.StringIO(data.decode("utf-8", "replace")))
            return list(src)

        same = _bench("pyx12 X12Reader (tokenize)", x12, _pyx12, args.repeat)
        # like for like: ours (tokenize + envelope + 850 mapping) on exactly the files pyx12 reads
        _bench("intake.x12 on pyx12's files", same, parse_x12, args.repeat)
    except ImportError:
        print("pyx12 not installed: skipped")
    _bench("intake.edifact.parse_edifact", edi, parse_edifact, args.repeat)
    warnings.filterwarnings("ignore")  # pydifact warns per segment about missing XML schemas
    try:
        from pydifact.segmentcollection import Interchange, RawSegmentCollection

        def _pydifact(data: bytes) -> object:
            return list(RawSegmentCollection.from_str(data.decode("utf-8")).segments)

        def _pydifact_ic(data: bytes) -> object:
            return list(Interchange.from_str(data.decode("utf-8")).get_messages())

        _bench("pydifact RawSegmentCollection", edi, _pydifact, args.repeat)
        _bench("pydifact Interchange+messages", edi, _pydifact_ic, args.repeat)
    except ImportError:
        print("pydifact not installed: skipped")


if __name__ == "__main__":
    main()
