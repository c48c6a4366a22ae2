"""Benchmark of redaction that knows the data: building the known-values matcher, and redacting
free text with it, as the number of customer names and streets grows.

For each size, ``N`` made-up customer names and ``N`` streets are built into a
:class:`~guardrails.known_values.KnownValues` (the time a refresh costs), then a 1.5 KB note (card
look-alikes, an IBAN, one known street) is redacted ``--reps`` times with and without the matcher;
the report gives the build time and the median time per note. Nothing is read from or written to a
database; the values are random words, so the numbers are about the matcher, not about SQL.

    python -m evals.bench.bench_redaction --sizes 10 1000 10000 50000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import time

from guardrails.known_values import KnownValues
from guardrails.redaction import Redactor

NOTE = (
    "Please deliver to the back door and call ahead; our reference 4111 1111 1111 1112 (not a card). "
    "Refunds to DE89 3704 0044 0532 0130 00. "
) * 12


def _values(n: int, rng: random.Random) -> list[tuple[str, str]]:
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))).title() for _ in range(3000)]
    out: list[tuple[str, str]] = []
    for _ in range(n):
        out.append(("name", f"{rng.choice(words)} {rng.choice(words)} {rng.choice(['Inc.', 'LLC', 'Group'])}"))
        out.append(("address", f"{rng.randint(1, 9999)} {rng.choice(words)} {rng.choice(['St', 'Ave', 'Rd'])}"))
    return out


def run(sizes: list[int], reps: int) -> list[dict[str, float]]:
    rng = random.Random(7)
    plain = Redactor(key=b"bench")
    rows = []
    for n in sizes:
        values = _values(n, rng)
        t0 = time.perf_counter()
        known = KnownValues.build(values)
        build_ms = (time.perf_counter() - t0) * 1000
        red = Redactor(key=b"bench", known=known)
        text = NOTE + " Ship to " + values[1][1] + "."
        times, base = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            out = red.redact_text(text)
            times.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            plain.redact_text(text)
            base.append((time.perf_counter() - t0) * 1000)
        assert values[1][1] not in out
        rows.append({"values": float(len(known)), "build_ms": round(build_ms, 1),
                     "redact_ms_median": round(statistics.median(times), 3),
                     "patterns_only_ms_median": round(statistics.median(base), 3),
                     "text_chars": float(len(text))})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000, 50000])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.sizes, args.reps)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'values':>8} {'build ms':>10} {'redact ms':>10} {'patterns only ms':>17} {'chars':>6}")
    for r in rows:
        print(f"{int(r['values']):>8} {r['build_ms']:>10} {r['redact_ms_median']:>10} "
              f"{r['patterns_only_ms_median']:>17} {int(r['text_chars']):>6}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
