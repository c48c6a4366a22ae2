"""What the real local model did, from the headers of the cassettes recorded against it.

Every cassette under ``tests/cassettes/real/`` starts with ``# key: value`` lines written when it
was recorded (``tests/cassettes/record_real_model.py``): the model, the runtime and its version,
the date, and the outcome with each model call's latency and tokens. This reads them back and
prints, without calling any model:

- latency per call (median / max) and tokens per call, by kind of call (goal triage, planning,
  purchase-order extraction);
- for whole exception runs (``graph-*``): suite pass rate with the real model vs the playbook
  planner on the same inputs (the playbooks get the goal through the command grammar only),
  tokens and model calls per run, fallbacks, unapproved writes, orders changed;
- for free-text purchase orders (``po-*``): field F1 with the real model vs the deterministic
  extractor, against the generated gold.

    python -m evals.bench.bench_llm_real [--dir tests/cassettes/real]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from evals.llm_reference import header

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "tests" / "cassettes" / "real"


def _f1(tp: int, fp: int, fn: int) -> float:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def _lat(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.0f} s, max {max(values):.0f} s (n={len(values)})"


Calls = dict[str, list[Any]]


def _runs(graphs: list[tuple[Path, dict[str, str]]], lat: Calls, tok: Calls) -> None:
    print(f"\nwhole exception runs: {len(graphs)}")
    cols = f"{'model':>6} {'playbk':>6} {'calls':>5} {'tokens':>7} {'changed':>7}"
    print(f"{'case':<16} {'triage':<16} {cols} fallback")
    passed = pb_passed = unapproved = fallbacks = free = 0
    run_tokens: list[int] = []
    for _, h in graphs:
        o: dict[str, Any] = json.loads(h["outcome"])
        calls = o["calls"]
        is_free = h["case"].startswith("ft-")
        free += is_free
        for n, c in enumerate(calls):
            kind = "triage" if is_free and n == 0 else "plan"
            lat[kind].append(c["latency_s"])
            tok[kind].append((c["in"], c["out"]))
        total = sum(c["in"] + c["out"] for c in calls)
        run_tokens.append(total)
        passed += o["passed"]
        pb_passed += o["playbook_passed"]
        unapproved += o["unapproved_writes"]
        fallbacks += o["fallback"] is not None
        verdicts = f"{'pass' if o['passed'] else 'fail':>6} {'pass' if o['playbook_passed'] else 'fail':>6}"
        print(
            f"{h['case']:<16} {o['triage_kind']!s:<16} {verdicts} {len(calls):>5} {total:>7} "
            f"{o['orders_changed']:>7} {(o['fallback'] or '-')[:40]}"
        )
    n = len(graphs)
    print(f"pass rate: real model {passed}/{n}, playbooks {pb_passed}/{n} (free-text goals: {free})")
    print(f"tokens per run: median {statistics.median(run_tokens):.0f}, max {max(run_tokens)}; "
          f"fallbacks {fallbacks}; unapproved writes {unapproved}")  # fmt: skip


def _pos(pos: list[tuple[Path, dict[str, str]]], lat: Calls, tok: Calls) -> None:
    llm: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    rules: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    exact = rules_exact = 0
    shapes: dict[str, int] = defaultdict(int)
    for _, h in pos:
        o = json.loads(h["outcome"])
        shapes[h["case"].split("-", 3)[-1]] += 1
        for c in o["calls"]:
            lat["extract"].append(c["latency_s"])
            tok["extract"].append((c["in"], c["out"]))
        for f, v in o["fields"].items():
            llm[f] = [a + b for a, b in zip(llm[f], v, strict=True)]
        for f, v in o["rules_fields"].items():
            rules[f] = [a + b for a, b in zip(rules[f], v, strict=True)]
        exact += o["exact"]
        rules_exact += o["rules_exact"]
    print(f"\nfree-text purchase orders: {len(pos)} {dict(shapes)}")
    print(f"{'field':<12} {'model F1':>9} {'rules F1':>9}")
    for f in llm:
        print(f"{f:<12} {_f1(*llm[f]):>9.3f} {_f1(*rules[f]):>9.3f}")
    all_llm = [sum(v[i] for v in llm.values()) for i in range(3)]
    all_rules = [sum(v[i] for v in rules.values()) for i in range(3)]
    print(f"{'all fields':<12} {_f1(*all_llm):>9.3f} {_f1(*all_rules):>9.3f}")
    print(f"exact orders: real model {exact}/{len(pos)}, deterministic {rules_exact}/{len(pos)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args(argv)
    graphs = [(p, header(p)) for p in sorted(args.dir.glob("graph-*.yaml"))]
    pos = [(p, header(p)) for p in sorted(args.dir.glob("po-*.yaml"))]
    if not graphs and not pos:
        raise SystemExit(f"no graph-*/po-* cassettes under {args.dir}")
    every = graphs + pos
    first = every[0][1]
    print(f"model {first.get('model')} ({first.get('model_file')})")
    print(f"runtime {first.get('runtime')}, {first.get('runtime_version')}; mode {first.get('mode')}")
    print(f"recorded {min(h['recorded'] for _, h in every)} .. {max(h['recorded'] for _, h in every)}")
    lat: Calls = defaultdict(list)
    tok: Calls = defaultdict(list)
    if graphs:
        _runs(graphs, lat, tok)
    if pos:
        _pos(pos, lat, tok)
    print("\nper call")
    for kind in ("triage", "plan", "extract"):
        if lat[kind]:
            ins = [i for i, _ in tok[kind]]
            outs = [o for _, o in tok[kind]]
            print(f"{kind:<8} latency {_lat(lat[kind])}; tokens in median {statistics.median(ins):.0f} "
                  f"(max {max(ins)}), out median {statistics.median(outs):.0f} (max {max(outs)})")  # fmt: skip


if __name__ == "__main__":
    main()
