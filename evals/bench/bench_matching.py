"""Benchmark: part, description and address matching at real catalogue sizes (500 and 20,000 SKUs).

For each size a fresh SQLite network is generated (:func:`core.netgen.generate_network`, no
orders), then a sample of its products is written the way buyers write them — typos, dropped and
reordered words, other case and punctuation, their own formatting of our part numbers — and each
is matched two ways:

* ``before``: what validation did until December 2026 (``difflib`` over a pool from the OMS's
  substring search, 50 products per word; part numbers by exact lookup only), kept here verbatim
  as the baseline;
* ``after``: :mod:`intake.matching` (``rapidfuzz`` over the whole catalogue held in memory; part
  numbers equal to a SKU but for formatting), and the full :func:`intake.validate.validate` per line.

Addresses: every generated ship-to is rewritten (Street/St, case, punctuation, ZIP+4, a suite
line) and scored against itself and against the other addresses, old scorer and new.

Printed: milliseconds per line (median, p95), top-1 and top-3 accuracy, and how often a proposal
(score >= 0.6) named the wrong SKU. Numbers are printed, never asserted. Run:
``.venv/bin/python -m evals.bench.bench_matching [--sizes 500 20000] [--lines 300]``.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from datetime import time as dtime
from decimal import Decimal
from difflib import SequenceMatcher
from pathlib import Path

from core.clock import FixedClock
from core.db import make_database, migrate
from core.domain import Address, Product
from core.errors import NotFound
from core.netgen import NetworkSpec, generate_network
from intake.matching import address_score, catalogue_index, normalize_address, normalize_known
from intake.model import Party, POLine, ProductId, PurchaseOrder
from intake.validate import IntakeContext, validate
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import OMS
from tools.base import ToolEnv

PROPOSE = 0.6
"""Validation's bar for a fuzzy proposal (below it: "matches no product")."""

# --- perturbations --------------------------------------------------------------------------------


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def perturb_description(rng: random.Random, name: str) -> str:
    """The product's name as a buyer might type it: 1-3 of typos, dropped or reordered words, other
    case and punctuation, a unit or a note added."""
    words = re.findall(r"[\w'-]+", name)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(("typo", "typo", "drop", "swap", "case", "noise"))
        if op == "typo" and words:
            k = rng.randrange(len(words))
            words[k] = _typo(rng, words[k])
        elif op == "drop" and len(words) > 3:
            words.pop(rng.randrange(len(words)))
        elif op == "swap" and len(words) > 2:
            k = rng.randrange(len(words) - 1)
            words[k], words[k + 1] = words[k + 1], words[k]
        elif op == "case":
            words = [w.upper() if rng.random() < 0.5 else w.lower() for w in words]
        elif op == "noise":
            words.append(rng.choice(("- qty per case", "(new)", "EA", "pls ship asap", "#")))
    sep = rng.choice((" ", " ", ", ", " / "))
    return sep.join(words)


def perturb_part(rng: random.Random, sku: str) -> str:
    """Our SKU in the buyer's formatting: case, separators, spaces, leading zeros."""
    out = sku
    for _ in range(rng.randint(1, 2)):
        op = rng.choice(("lower", "nodash", "space", "zeros", "dot"))
        if op == "lower":
            out = out.lower()
        elif op == "nodash":
            out = out.replace("-", "")
        elif op == "space":
            out = out.replace("-", " ")
        elif op == "zeros":
            out = re.sub(r"(?<=[A-Za-z.\s-])0+(?=\d)", "", out, count=1)  # leading zeros only
        elif op == "dot":
            out = out.replace("-", ".")
    return out if out != sku else out.lower()


_ADDR_WORDS = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Drive": "Dr", "Boulevard": "Blvd", "Lane": "Ln",
               "Parkway": "Pkwy", "Court": "Ct", "Place": "Pl", "Way": "Way"}  # fmt: skip


def perturb_address(rng: random.Random, a: Address) -> Party:
    """A known address as another document writes it."""
    street = a.street
    for long, short in _ADDR_WORDS.items():
        if rng.random() < 0.5:
            street = street.replace(long, short + rng.choice(("", ".")))
            street = street.replace(short + " ", long + " ") if rng.random() < 0.2 else street
    lines = [street.upper() if rng.random() < 0.4 else street]
    if rng.random() < 0.4:
        lines.append(rng.choice(("Suite 200", "Ste. 4B", "Dock 3", "Bldg 2")))
    postal = a.postal_code + (f"-{rng.randrange(10000):04d}" if rng.random() < 0.5 else "")
    if rng.random() < 0.3:
        lines.append(f"{a.city.upper()}, {a.state} {postal}")
        return Party(role="ST", name=a.name, address_lines=lines)
    return Party(role="ST", name=a.name, address_lines=lines, city=a.city.lower() if rng.random() < 0.3 else a.city,
                 state=a.state, postal_code=postal)  # fmt: skip


# --- the baseline (validation until December 2026), verbatim ------------------------------------------


def _old_words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _old_ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def old_text_candidates(oms: OMS, text: str) -> list[tuple[str, float]]:
    needle = _old_words(text)
    words = sorted({w for w in needle.split() if len(w) >= 3 and not w.isdigit()}, key=lambda w: (-len(w), w))[:8]
    if not words:
        return []
    pool: dict[str, Product] = {}
    for w in words:
        for p in oms.search_products(w, limit=50):
            pool[p.sku] = p
    scored = []
    for p in pool.values():
        s = max(_old_ratio(needle, _old_words(p.name)),
                0.9 * _old_ratio(needle, _old_words(p.description)[: len(needle) + 40]))  # fmt: skip
        scored.append((p.sku, round(s, 3)))
    scored.sort(key=lambda t: (-t[1], t[0]))
    return scored[:3]


def old_part(oms: OMS, value: str) -> str | None:
    for v in (value.strip(), value.strip().upper()):
        try:
            return oms.get_product(v).sku
        except NotFound:
            continue
    return None


_OLD_ABBR = {"street": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "boulevard": "blvd",
             "lane": "ln", "parkway": "pkwy", "court": "ct", "place": "pl", "highway": "hwy", "suite": "ste",
             "north": "n", "south": "s", "east": "e", "west": "w", "circle": "cir", "terrace": "ter",
             "way": "way"}  # fmt: skip
_OLD_CITY = re.compile(r"^\s*(?P<city>[A-Za-z .'-]+?)\s*,?\s+(?P<state>[A-Z]{2})\.?\s+(?P<zip>\d{5})(?:-\d{4})?\s*$")


def old_address_score(party: Party, a: Address) -> float:
    lines = list(party.address_lines)
    city, state, postal = party.city, party.state, party.postal_code
    if city is None and postal is None:
        for i in range(len(lines) - 1, -1, -1):
            m = _OLD_CITY.match(lines[i])
            if m:
                city, state, postal = m.group("city"), m.group("state"), m.group("zip")
                del lines[i]
                break
    street = " ".join(lines)

    def st(t: str) -> str:
        return " ".join(_OLD_ABBR.get(w, w) for w in _old_words(t).split())

    parts: list[tuple[float, float]] = []
    if street:
        parts.append((0.45, 1.0 if st(street) == st(a.street) else _old_ratio(st(street), st(a.street))))
    if city:
        c1, c2 = _old_words(city), _old_words(a.city)
        parts.append((0.2, 1.0 if c1 == c2 else _old_ratio(c1, c2)))
    if state:
        parts.append((0.1, 1.0 if state.strip().upper() == a.state.upper() else 0.0))
    if postal:
        parts.append((0.25, 1.0 if postal.strip()[:5] == a.postal_code[:5] else 0.0))
    weight = sum(w for w, _ in parts)
    return 0.0 if weight < 0.5 else sum(w * s for w, s in parts) / weight


def new_address_score(party: Party, a: Address) -> float:
    doc = normalize_address(party.address_lines, party.city, party.state, party.postal_code)
    return address_score(doc, normalize_known(a))


# --- measuring ---------------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _report(label: str, truth: list[str], names: dict[str, str],
            run: Callable[[int], list[tuple[str, float]]], n: int) -> None:  # fmt: skip
    times: list[float] = []
    top1 = top3 = same_name = wrong_proposals = proposals = 0
    for i in range(n):
        t0 = time.perf_counter()
        cands = run(i)
        times.append(1000 * (time.perf_counter() - t0))
        skus = [s for s, _ in cands]
        top1 += bool(skus) and skus[0] == truth[i]
        top3 += truth[i] in skus[:3]
        same_name += bool(skus) and names.get(skus[0]) == names[truth[i]]
        if cands and cands[0][1] >= PROPOSE:
            proposals += 1
            wrong_proposals += skus[0] != truth[i]
    print(f"  {label:<34}{statistics.median(times):>9.2f}{_p95(times):>9.2f}{100 * top1 / n:>8.1f}%"
          f"{100 * top3 / n:>8.1f}%{100 * same_name / n:>9.1f}%{proposals:>7}{wrong_proposals:>7}")  # fmt: skip


def bench_size(size: int, lines: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{Path(tmp) / 'net.db'}")
        migrate(db)
        spec = NetworkSpec(seed=seed, nodes=2, skus=size, customers=40, orders=0)
        t0 = time.perf_counter()
        generate_network(db, spec)
        clock = FixedClock(datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))
        adapters = embedded_adapters(db, clock)
        oms = adapters.oms
        print(f"\n{size:,} SKUs (network generated in {time.perf_counter() - t0:.1f}s)")
        t0 = time.perf_counter()
        index = catalogue_index(oms, max_age_s=0)
        print(f"  catalogue index built in {1000 * (time.perf_counter() - t0):.0f} ms ({len(index):,} products)")
        products = {p.sku: p for p in (oms.get_products(index.skus))}
        names = {s: p.name for s, p in products.items()}
        dup = len(names) - len(set(names.values()))
        print(f"  {dup:,} products share their name with another (no description can tell those apart)")
        rng = random.Random(seed)
        truth = rng.sample(index.skus, min(lines, len(index.skus)))
        texts = [perturb_description(rng, products[s].name) for s in truth]
        parts = [perturb_part(rng, s) for s in truth]
        n = len(truth)
        print(f"  {'method':<34}{'ms med':>9}{'ms p95':>9}{'top-1':>9}{'top-3':>9}{'same nm':>10}{'prop.':>7}"
              f"{'wrong':>7}")  # fmt: skip
        _report("descriptions: before (difflib)", truth, names, lambda i: old_text_candidates(oms, texts[i]), n)
        _report("descriptions: after (rapidfuzz)", truth, names, lambda i: index.by_text(texts[i]), n)

        def old_p(i: int) -> list[tuple[str, float]]:
            sku = old_part(oms, parts[i])
            return [(sku, 1.0)] if sku else []

        _report("part numbers: before (exact only)", truth, names, old_p, n)
        _report("part numbers: after (+formatting)", truth, names, lambda i: index.by_part(parts[i]), n)

        # The whole validation, per line: 10-line POs of a known customer, parts not ours.
        env = ToolEnv(adapters, clock)
        customer = oms.list_customers()[0]
        per_line: list[float] = []
        right = 0
        for start in range(0, n, 10):
            chunk = list(range(start, min(n, start + 10)))
            po = PurchaseOrder(document_type="bench", po_number=f"B-{start}", lines=[
                POLine(quantity=Decimal(1), unit="EA", description=texts[i],
                       product_ids=[ProductId(qualifier="BP", value=f"THEIRS-{i}")]) for i in chunk])  # fmt: skip
            t0 = time.perf_counter()
            v = validate(po, env, context=IntakeContext(sender=customer.email))
            per_line.append(1000 * (time.perf_counter() - t0) / len(chunk))
            right += sum(ln.sku == truth[i] for ln, i in zip(v.lines, chunk, strict=True))
        print(f"  validate() per line, 10-line POs: median {statistics.median(per_line):.1f} ms, "
              f"p95 {_p95(per_line):.1f} ms; proposed SKU right on {100 * right / n:.1f}% of lines")  # fmt: skip


def bench_addresses(seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{Path(tmp) / 'net.db'}")
        migrate(db)
        spec = NetworkSpec(seed=seed, nodes=2, skus=50, customers=150, orders=0)
        generate_network(db, spec)
        oms = embedded_adapters(db, FixedClock(datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))).oms
        addrs = [a for c in oms.list_customers() for a in oms.addresses(c.id)]
        rng = random.Random(seed)
        written = [perturb_address(rng, a) for a in addrs]
        print(f"\naddresses: {len(addrs)} known ship-tos, each rewritten once (St/Street, case, punctuation, "
              "ZIP+4, suite line)")  # fmt: skip
        print(f"  {'scorer':<12}{'same >=0.98':>13}{'same >=0.90':>13}{'other >=0.90':>14}{'us/pair':>9}")
        for label, score in (("before", old_address_score), ("after", new_address_score)):
            t0 = time.perf_counter()
            same = [score(p, a) for p, a in zip(written, addrs, strict=True)]
            others = [score(written[i], addrs[(i + k) % len(addrs)]) for i in range(len(addrs)) for k in (1, 7, 31)]
            us = 1e6 * (time.perf_counter() - t0) / (len(same) + len(others))
            print(f"  {label:<12}{100 * sum(s >= 0.98 for s in same) / len(same):>12.1f}%"
                  f"{100 * sum(s >= 0.9 for s in same) / len(same):>12.1f}%"
                  f"{sum(s >= 0.9 for s in others):>14}{us:>9.0f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 20_000])
    ap.add_argument("--lines", type=int, default=300, help="perturbed lines per size")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    print("top-1/top-3: the right SKU first / among the first three; same nm: the first has the right "
          f"product's name;\nprop.: lines with a proposal (score >= {PROPOSE}); wrong: proposals naming another "
          "SKU")  # fmt: skip
    for size in args.sizes:
        bench_size(size, args.lines, args.seed)
    bench_addresses(args.seed)


if __name__ == "__main__":
    main()
