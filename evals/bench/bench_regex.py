"""Benchmark: a ReDoS sweep of every regular expression the product packages hold.

Untrusted text (mail bodies and headers, PDF and OCR text, spreadsheet cells, EDI segments, Slack
messages, API goals and alerts, model output) reaches many patterns; one that backtracks
super-linearly on a long hostile run can hold a worker for minutes (``intake.hidden``'s sentence
pattern took 44 s on 4,000 characters). This script finds such patterns before a document does.

What it collects:

* every compiled ``re.Pattern`` a module of ``core``, ``intake``, ``guardrails``, ``tools``,
  ``agents``, ``graphs``, ``services`` or ``api`` holds at import: module globals, class
  attributes, and patterns inside module-level dicts, lists, tuples and sets;
* every literal pattern in the source of those packages (``re.compile``, ``re.search``,
  ``re.match``, ``re.fullmatch``, ``re.sub``, ``re.subn``, ``re.findall``, ``re.finditer``,
  ``re.split`` with a string constant, flags read when they are constant), so patterns compiled
  inside functions are swept too.

What it feeds them: strings built from the pattern's own parse tree (``re._parser``): a run of
each character the pattern mentions (its literals, the ends of its ranges, a representative of each
class), alternating pairs, and for every unbounded repeat "what matches up to the repeat, then a
long run of what the repeat takes, then a character that ends the match"; plus long runs of spaces,
newlines, word characters, digits and punctuation. Each string is timed with ``search``, ``match``
and ``findall`` at 5,000 characters; the ones not clearly fast are timed again at 20,000. Each
timing runs in a forked worker with a time limit (an exponential pattern would otherwise never
return): a timing past the limit is printed as ``>LIMIT``.

It prints the slowest patterns (module, name, the string kind and operation that hurt most, the
5k and 20k times and their ratio) and flags those over ``--flag`` seconds at 20k or growing
clearly faster than the length (ratio over 8 where the 20k time is over 5 ms). Numbers are
printed, never asserted.

Run: ``.venv/bin/python -m evals.bench.bench_regex [--top 10] [--limit 2.0] [--flag 0.2]``
(``--only SUBSTRING`` sweeps only the patterns whose name or source matches).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import itertools
import os
import pkgutil
import re
import re._constants as sre_c
import re._parser as sre_parse
import select
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "intake", "guardrails", "tools", "agents", "graphs", "services", "api")
OPS = ("search", "match", "findall")
CALLS = {"compile": 1, "search": 2, "match": 2, "fullmatch": 2, "findall": 2, "finditer": 2,
         "sub": 4, "subn": 4, "split": 3}  # fmt: skip  # positional index of ``flags``
GENERIC = " \n\taZ0_.,-:;/@#'\"()é"
SHORT, LONG = 5_000, 20_000
# What an inline call does to a string, as timed here: the scanning calls all walk every start.
CALL_OPS = {"search": ("search",), "match": ("match",), "fullmatch": ("fullmatch",), "findall": ("findall",),
            "finditer": ("findall",), "sub": ("findall",), "subn": ("findall",), "split": ("findall",)}  # fmt: skip


@dataclass
class Found:
    """One distinct pattern (source and flags) and every place it was found."""

    pattern: str
    flags: int
    where: list[str] = field(default_factory=list)
    ops: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        more = f" (+{len(self.where) - 1})" if len(self.where) > 1 else ""
        return self.where[0] + more


# --------------------------------------------------------------------------------------------
# Collecting


def import_all() -> tuple[list[ModuleType], list[str]]:
    """Every module of the product packages, imported; the names that failed to import."""
    mods: list[ModuleType] = []
    failed: list[str] = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        mods.append(pkg)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + ".", onerror=failed.append):
            try:
                mods.append(importlib.import_module(info.name))
            except Exception as exc:
                failed.append(f"{info.name} ({type(exc).__name__})")
    return mods, failed


def _patterns_in(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, re.Pattern[str]]]:
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            yield path, value
        return
    if depth >= 3:
        return
    if isinstance(value, dict):
        for k, v in list(value.items())[:500]:
            yield from _patterns_in(v, f"{path}[{k!r}]", depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(list(value)[:500]):
            yield from _patterns_in(v, f"{path}[{i}]", depth + 1)


def runtime_patterns(mods: list[ModuleType], found: dict[tuple[str, int], Found]) -> None:
    """Module globals, class attributes and module-level containers holding patterns."""
    for mod in mods:
        for name, value in vars(mod).items():
            if isinstance(value, type) and value.__module__ == mod.__name__:
                for attr, inner in vars(value).items():
                    for path, pat in _patterns_in(inner, f"{name}.{attr}"):
                        _add(found, pat.pattern, pat.flags, f"{mod.__name__}.{path}", OPS)
                continue
            for path, pat in _patterns_in(value, name):
                _add(found, pat.pattern, pat.flags, f"{mod.__name__}.{path}", OPS)


def _add(found: dict[tuple[str, int], Found], pattern: str, flags: int, where: str, ops: tuple[str, ...]) -> None:
    # re.compile adds UNICODE to a str pattern's flags; literal flags read from source lack it.
    key = (pattern, flags | re.UNICODE)
    entry = found.setdefault(key, Found(pattern, flags | re.UNICODE))
    if where not in entry.where:
        entry.where.append(where)
    entry.ops.update(ops)


def _flag_value(node: ast.expr) -> int | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
        value = getattr(re, node.attr, None)
        return int(value) if isinstance(value, int) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _flag_value(node.left), _flag_value(node.right)
        return None if left is None or right is None else left | right
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def literal_patterns(found: dict[tuple[str, int], Found]) -> int:
    """Literal patterns passed to ``re.*`` anywhere in the packages' source (inside functions too)."""
    count = 0
    for pkg_name in PACKAGES:
        for path in sorted((ROOT / pkg_name).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            rel = path.relative_to(ROOT)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                func = node.func
                if not (isinstance(func.value, ast.Name) and func.value.id == "re" and func.attr in CALLS):
                    continue
                if (
                    not node.args
                    or not isinstance(node.args[0], ast.Constant)
                    or not isinstance(node.args[0].value, str)
                ):
                    continue
                flag_node = next((k.value for k in node.keywords if k.arg == "flags"), None)
                if flag_node is None and len(node.args) > CALLS[func.attr]:
                    flag_node = node.args[CALLS[func.attr]]
                flags = 0 if flag_node is None else _flag_value(flag_node)
                if flags is None:
                    flags = 0  # a flags expression this cannot read: swept without flags
                try:
                    re.compile(node.args[0].value, flags)
                except re.error:
                    continue
                where = f"{rel}:{node.lineno} re.{func.attr}"
                _add(found, node.args[0].value, flags, where, CALL_OPS.get(func.attr, OPS))
                count += 1
    return count


# --------------------------------------------------------------------------------------------
# Hostile strings from the pattern's parse tree

_CATEGORY_CHARS = {
    sre_c.CATEGORY_DIGIT: "07",
    sre_c.CATEGORY_NOT_DIGIT: "a ",
    sre_c.CATEGORY_SPACE: " \n\t",
    sre_c.CATEGORY_NOT_SPACE: "a0.",
    sre_c.CATEGORY_WORD: "a0_é",
    sre_c.CATEGORY_NOT_WORD: " .-\n",
    sre_c.CATEGORY_LINEBREAK: "\n",
    sre_c.CATEGORY_NOT_LINEBREAK: "a ",
}
_UNBOUNDED = sre_c.MAXREPEAT
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)


def _set_chars(items: list[tuple[Any, Any]], fits: re.Pattern[str] | None) -> str:
    """Characters a ``[...]`` takes (for a negated set: pool characters it takes)."""
    if items and items[0][0] is sre_c.NEGATE:
        return "".join(c for c in GENERIC + "xX9" if fits is None or fits.fullmatch(c))[:4] or "a"
    out = ""
    for op, av in items:
        if op is sre_c.LITERAL:
            out += chr(av)
        elif op is sre_c.RANGE:
            out += chr(av[0]) + (chr(av[1]) if av[1] < 0x10000 else "")
        elif op is sre_c.CATEGORY:
            out += _CATEGORY_CHARS.get(av, "a")
    return out or "a"


def _unparse_set(items: list[tuple[Any, Any]], flags: int) -> re.Pattern[str] | None:
    """A one-character pattern equal to a parsed ``[...]`` (to pick members of a negated set)."""
    parts = []
    for op, av in items:
        if op is sre_c.NEGATE:
            parts.append("^")
        elif op is sre_c.LITERAL:
            parts.append(re.escape(chr(av)) if chr(av) not in "]^-\\" else "\\" + chr(av))
        elif op is sre_c.RANGE:
            parts.append(f"\\U{av[0]:08x}-\\U{av[1]:08x}")
        elif op is sre_c.CATEGORY:
            names = {sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_NOT_DIGIT: r"\D",
                     sre_c.CATEGORY_SPACE: r"\s", sre_c.CATEGORY_NOT_SPACE: r"\S",
                     sre_c.CATEGORY_WORD: r"\w", sre_c.CATEGORY_NOT_WORD: r"\W"}  # fmt: skip
            parts.append(names.get(av, ""))
    try:
        return re.compile("[" + "".join(parts) + "]", flags & (re.IGNORECASE | re.ASCII | re.UNICODE))
    except re.error:
        return None


def _atom_chars(op: Any, av: Any, flags: int) -> str:
    if op is sre_c.LITERAL:
        return chr(av)
    if op is sre_c.NOT_LITERAL:
        return "a" if chr(av) != "a" else "b"
    if op is sre_c.ANY:
        return "a "
    if op is sre_c.IN:
        return _set_chars(av, _unparse_set(av, flags))
    return ""


def _mentioned(parsed: Any, flags: int) -> str:  # noqa: C901 - one branch per parse node kind
    """Every character the pattern names or that stands for one of its classes, in order."""
    out: list[str] = []

    def walk(seq: Any) -> None:
        for op, av in seq:
            chars = _atom_chars(op, av, flags)
            out.extend(chars)
            if op in _REPEATS:
                walk(av[2])
            elif op is sre_c.SUBPATTERN:
                walk(av[3])
            elif op is sre_c.BRANCH:
                for b in av[1]:
                    walk(b)
            elif op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
                walk(av[1])
            elif op is sre_c.ATOMIC_GROUP:
                walk(av)
            elif op is sre_c.GROUPREF_EXISTS:
                walk(av[1])
                if av[2]:
                    walk(av[2])

    walk(parsed)
    return "".join(dict.fromkeys(out))


def _minimal(seq: Any, flags: int) -> str:
    """A short string that the sequence (roughly) matches: each atom's first character, each repeat
    at its minimum, the first branch of each alternation."""
    out = ""
    for op, av in seq:
        if op in (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN):
            out += _atom_chars(op, av, flags)[:1]
        elif op in _REPEATS:
            out += _minimal(av[2], flags) * min(av[0], 3)
        elif op is sre_c.SUBPATTERN:
            out += _minimal(av[3], flags)
        elif op is sre_c.BRANCH:
            out += _minimal(av[1][0], flags)
        elif op is sre_c.ATOMIC_GROUP:
            out += _minimal(av, flags)
        elif op is sre_c.GROUPREF_EXISTS:
            out += _minimal(av[1], flags)
    return out


def _repeat_runs(parsed: Any, flags: int) -> list[tuple[str, str]]:
    """For each unbounded repeat: (what matches up to it, a unit of what it takes)."""
    runs: list[tuple[str, str]] = []

    def walk(seq: Any, prefix: str) -> None:
        for i, (op, av) in enumerate(seq):
            before = prefix + _minimal(seq[:i], flags)
            if op in _REPEATS:
                body = av[2]
                unit = _minimal(body, flags) or "a"
                if av[1] == _UNBOUNDED or av[1] > 200:
                    runs.append((before, unit))
                    chars = _mentioned(body, flags)
                    for c in chars[:6]:
                        runs.append((before, c))
                walk(body, before)
            elif op is sre_c.SUBPATTERN:
                walk(av[3], before)
            elif op is sre_c.ATOMIC_GROUP:
                walk(av, before)
            elif op is sre_c.BRANCH:
                for b in av[1][:8]:
                    walk(b, before)

    walk(parsed, "")
    return runs


def hostile_strings(pattern: str, flags: int, n: int) -> list[tuple[str, str]]:
    """(kind, text) pairs of about ``n`` characters aimed at this pattern."""
    try:
        parsed = sre_parse.parse(pattern, flags)
    except re.error:
        return []
    mentioned = _mentioned(parsed, flags)[:24]
    out: dict[str, str] = {}

    def fill(unit: str, k: int = n) -> str:
        return (unit * (k // max(len(unit), 1) + 1))[:k]

    for c in mentioned:
        out[f"run {c!r}"] = fill(c)
    for a, b in itertools.islice(itertools.combinations(mentioned, 2), 24):
        out[f"pair {a + b!r}"] = fill(a + b)
    for prefix, unit in _repeat_runs(parsed, flags)[:20]:
        for end in ("\x00", "!", " ", "\n"):
            if end in unit:
                continue
            out[f"prefix {prefix[:12]!r} run {unit[:8]!r} end {end!r}"] = prefix + fill(unit, n - len(prefix) - 1) + end
            break
        out[f"prefix-repeated {prefix[:12]!r}+{unit[:8]!r}"] = fill(prefix + unit)
    generic = {
        "spaces": " ",
        "tabs+spaces": " \t",
        "newlines": "\n",
        "blank lines": "\n \n",
        "crlf": "\r\n",
        "word chars": "abcdefghij",
        "letters": "a",
        "digits": "0",
        "digits+dot": "1.",
        "digits+comma": "1,",
        "punctuation": ".,;:!?-",
        "dashes": "-",
        "dots": ".",
        "words": "ship it ",
        "words+newline": "ship\n",
        "email-ish": "a.",
        "at-signs": "a@",
        "slashes": "a/",
        "quotes": "'\"",
        "unicode letters": "é",
    }
    for kind, unit in generic.items():
        out[kind] = fill(unit)
        out[kind + " then !"] = fill(unit, n - 1) + "!"
    return list(out.items())


# --------------------------------------------------------------------------------------------
# Timing in a forked worker


def _worker(conn: Connection, jobs: list[tuple[str, int, str, str, str]]) -> None:
    cache: dict[tuple[str, int], re.Pattern[str]] = {}
    for pattern, flags, op, _kind, text in jobs:
        pat = cache.get((pattern, flags))
        if pat is None:
            pat = cache[(pattern, flags)] = re.compile(pattern, flags)
        fn = getattr(pat, op)
        t0 = time.perf_counter()
        fn(text)
        conn.send(time.perf_counter() - t0)
    conn.close()


def time_jobs(jobs: list[tuple[str, int, str, str, str]], limit: float, max_killed: int = 3) -> list[float]:
    """Each job's seconds, in order; ``inf`` for one killed at ``limit`` seconds; after ``max_killed``
    kills the rest are not run (``nan``): each kill costs the whole limit."""
    results: list[float] = []
    while len(results) < len(jobs):
        if sum(t == float("inf") for t in results) >= max_killed:
            results += [float("nan")] * (len(jobs) - len(results))
            break
        rest = jobs[len(results) :]
        parent, child = Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            parent.close()
            try:
                _worker(child, rest)
            finally:
                os._exit(0)
        child.close()
        try:
            for _ in rest:
                ready, _w, _x = select.select([parent], [], [], limit)
                if not ready:
                    results.append(float("inf"))
                    os.kill(pid, signal.SIGKILL)
                    break
                results.append(parent.recv())
        except EOFError:
            results.append(float("nan"))
        finally:
            parent.close()
            os.waitpid(pid, 0)
    return results


@dataclass
class Worst:
    found: Found
    short: float = 0.0
    long: float = 0.0
    op: str = ""
    kind: str = ""
    superlinear: bool = False


def sweep(found: Found, limit: float) -> Worst:
    """Time the pattern on its hostile strings at 5k, then the not-clearly-fast ones at 20k."""
    worst = Worst(found)
    short = hostile_strings(found.pattern, found.flags, SHORT)
    long_texts = dict(hostile_strings(found.pattern, found.flags, LONG))
    ops = sorted(found.ops)
    jobs = [(found.pattern, found.flags, op, kind, text) for kind, text in short for op in ops]
    times = time_jobs(jobs, limit)
    ranked = sorted(((t, j) for t, j in zip(times, jobs, strict=True) if t == t), key=lambda tj: -tj[0])
    again = [(t, j) for t, j in ranked if t > 0.0005 or t == float("inf")][:5] or ranked[:2]
    long_jobs = [(p, f, op, kind, long_texts.get(kind, text)) for _t, (p, f, op, kind, text) in again]
    long_times: list[float] = []
    for job in long_jobs:  # one at a time: stop after two timeouts (each costs the whole limit)
        long_times += time_jobs([job], limit)
        if sum(t == float("inf") for t in long_times) >= 2:
            break
    for (t5, (_p, _f, op, kind, _x)), t20 in zip(again, long_times, strict=False):
        if t20 >= worst.long or (worst.long == 0 and t5 > worst.short):
            worst.short, worst.long, worst.op, worst.kind = t5, t20, op, kind
        ratio = t20 / t5 if t5 > 0 else 0.0
        if (t20 > 0.005 and ratio > 8) or t20 == float("inf"):
            worst.superlinear = True
    return worst


# --------------------------------------------------------------------------------------------
# Entry points: the product functions the flagged patterns sit behind, on the string that hurt


def _entry_points() -> list[tuple[str, Any, Any]]:
    """(name, function of one string, hostile string of length n) for each pattern found here:
    the fixed ones through the code that now reads them, the ones left through their callers."""
    from agents.triage import _CLAUSE
    from core.injection import _non_latin_spans, find_injections
    from intake.classify import DocFormat
    from intake.doctype import classify_edi, classify_text
    from intake.extract import _CODE_RE, extract_order, split_address
    from intake.hidden import _tags_out, prose_findings
    from intake.mail import _address, _subject_po
    from intake.pdf_layout import _GLUED_RE, _SUBLINE_RE
    from tools.llm import json_values

    def fill(unit: str, n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    return [
        ("hidden.prose_findings: one long word", lambda t: prose_findings(t, where="body", document=None),
         lambda n: "é" * n),
        ("mail subject PO: 'PO' + spaces", _subject_po, lambda n: "PO" + " " * n + "!"),
        ("injection non-Latin: 'цена' repeated", _non_latin_spans, lambda n: fill("цена", n)),
        ("injection non-Latin: 'отмен все ' repeated", _non_latin_spans, lambda n: fill("отмен все ", n)),
        ("find_injections: '<' + spaces", find_injections, lambda n: "<" + " " * n + "x"),
        ("mail From fallback: letters, no '@'", _address, lambda n: "a" * n),
        ("doctype title: 're' + spaces", lambda t: classify_text("ship it", title=t), lambda n: "re" + " " * n + "x"),
        ("extract_order: Ship-to ',' + spaces", extract_order, lambda n: "Ship to:\nAcme\n," + " " * n + "x\n"),
        ("classify_edi X12: line breaks", lambda t: classify_edi(t.encode("latin-1"), DocFormat.X12),
         lambda n: "ISA*" + "\n" * n),
        ("extract code cell: digits + '!'", _CODE_RE.match, lambda n: "A" + "0" * n + "!"),
        ("mail subject PO: 'POX-' repeated", _subject_po, lambda n: "PO " + fill("POX-", n)),
        ("hidden comment tags: '<' run, no '>'", _tags_out, lambda n: "<" * n),
        ("split_address: 'A' + spaces", lambda t: split_address([(t, 0, len(t))]), lambda n: "A" + " " * n + "x"),
        ("pdf glued label: '#' + digits + '!'", _GLUED_RE.fullmatch, lambda n: "#" + "1" * n + "!"),
        ("pdf sub-line: 'vendor' + spaces", _SUBLINE_RE.match, lambda n: "vendor" + " " * n + "!"),
        ("LEFT triage clause split (goal <= 2,000)", _CLAUSE.split, lambda n: " " * n + "x"),
        ("LEFT llm json_values: '```' + tabs", json_values, lambda n: "```" + "\t" * n + "x"),
    ]  # fmt: skip


def _time_call(fn: Any, text: str, limit: float) -> float:
    """Seconds ``fn(text)`` took in a forked child; ``inf`` when killed at ``limit``."""
    parent, child = Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        parent.close()
        t0 = time.perf_counter()
        fn(text)
        child.send(time.perf_counter() - t0)
        os._exit(0)
    child.close()
    try:
        ready, _w, _x = select.select([parent], [], [], limit)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return float("inf")
        return float(parent.recv())
    except EOFError:
        return float("nan")
    finally:
        parent.close()
        os.waitpid(pid, 0)


def entry_table(limit: float) -> None:
    print("\nentry points (seconds in the product code; 'LEFT' = not changed, see the report)")
    print(f"{'':<48} {'5k':>8} {'20k':>8} {'200k':>8}")
    for name, fn, build in _entry_points():
        row = []
        for n in (SHORT, LONG, 200_000):
            t = _time_call(fn, build(n), limit)
            row.append(_secs(t, limit))
            if t == float("inf"):
                row += ["-"] * (2 - len(row) + 1)
                break
        print(f"{name:<48} " + " ".join(f"{c:>8}" for c in row[:3]))


def _secs(t: float, limit: float) -> str:
    return f">{limit:.1f}" if t == float("inf") else f"{t:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--limit", type=float, default=2.0, help="seconds before a timing is killed")
    parser.add_argument("--flag", type=float, default=0.2, help="flag patterns slower than this at 20k")
    parser.add_argument("--only", default="", help="sweep only patterns whose name or source holds this")
    parser.add_argument("--entry-only", action="store_true", help="only time the entry points")
    args = parser.parse_args(argv)
    if args.entry_only:
        import_all()
        entry_table(args.limit)
        return

    t0 = time.perf_counter()
    mods, failed = import_all()
    found: dict[tuple[str, int], Found] = {}
    runtime_patterns(mods, found)
    n_runtime = len(found)
    n_literal = literal_patterns(found)
    todo = [
        f for f in found.values() if not args.only or args.only in f.pattern or any(args.only in w for w in f.where)
    ]
    print(f"modules imported: {len(mods)}; failed: {len(failed)} {failed[:5]}")
    print(f"patterns: {n_runtime} held by modules at import, {n_literal} literal re.* calls in source, "
          f"{len(found)} distinct (pattern, flags); sweeping {len(todo)}")  # fmt: skip
    results = []
    for i, f in enumerate(todo):
        results.append(sweep(f, args.limit))
        if (i + 1) % 50 == 0:
            print(f"  ... {i + 1}/{len(todo)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    results.sort(key=lambda w: (-w.long, -w.short))
    print(f"\nslowest {args.top} (worst string and operation per pattern; seconds; 5k -> 20k characters)")
    print(f"{'#':>3}  {'5k':>8} {'20k':>8} {'x':>6}  {'op':<7} {'where':<58} {'string':<40} pattern")
    for rank, w in enumerate(results[: args.top], 1):
        ratio = "-" if w.short <= 0 or w.long == float("inf") else f"{w.long / w.short:.1f}"
        print(f"{rank:>3}  {_secs(w.short, args.limit):>8} {_secs(w.long, args.limit):>8} {ratio:>6}  {w.op:<7} "
              f"{w.found.label[:58]:<58} {w.kind[:40]:<40} {w.found.pattern[:70]!r}")  # fmt: skip
    flagged = [w for w in results if w.long > args.flag or w.superlinear]
    print(f"\nflagged ({len(flagged)}): over {args.flag} s at 20k, or super-linear (20k/5k > 8 and 20k > 5 ms)")
    for w in flagged:
        print(f"  {_secs(w.long, args.limit):>8} s  {w.op:<7} {w.kind[:40]!s:<40} {w.found.pattern[:90]!r}")
        for where in w.found.where:
            print(f"             at {where}")
    entry_table(args.limit)
    print(f"\nswept in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
