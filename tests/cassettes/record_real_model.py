"""Record the real-model cassettes under ``tests/cassettes/real/`` against the local model.

Needs the server of ``../shared/tools/local-llm/`` running (``serve.sh``; 127.0.0.1:8088). Slow: minutes
per planner call on 2 shared cores. Each cassette gets a
header saying what answered (model, runtime, version), when, in which structured-output mode, and
what came of it (:mod:`tests.cassettes.real_model`).

Run: ``.venv/bin/python -m tests.cassettes.record_real_model [probe] [planner|graph|po CASE...] [extractor FILE...]``
(no arguments: everything). Results also go to stdout as JSON lines (latency, tokens, parsed).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import vcr
import yaml
from langchain_openai import ChatOpenAI

from agents.llm_planner import LLMPlanner
from agents.plan import ExceptionKind
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_goal
from agents.triage_llm import LLMTriage
from evals.llm_reference import header
from guardrails.policy import PolicyEngine
from intake.llm_extract import LLMExtractor
from intake.mail import parse_email
from tests.cassettes.real_model import (
    BASE_URL,
    CORPUS_DOCS,
    EMAILS,
    FREE_TEXT_GOALS,
    GRAPH_CASES,
    MODEL,
    MODEL_FILE,
    PLANNER_CASES,
    REAL,
    RUNTIME,
    RUNTIME_VERSION,
    cassette_path,
    graph_scenario,
    planner_case,
    po_corpus,
    po_outcome,
    run_scenario,
    write_header,
)
from tools.base import ToolEnv
from tools.llm import ResolvedMode, StructuredModel, probe

FILTER = {"filter_headers": ["authorization", "api-key"]}


def chat(max_tokens: int = 700) -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL, base_url=BASE_URL, api_key=lambda: "none", timeout=1200, max_retries=0,
        temperature=0, seed=0, max_completion_tokens=max_tokens,
    )  # fmt: skip


def fields(mode: str, case: str, outcome: dict[str, Any]) -> dict[str, str]:
    return {
        "model": MODEL,
        "model_file": MODEL_FILE,
        "runtime": RUNTIME,
        "runtime_version": RUNTIME_VERSION,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "case": case,
        "outcome": json.dumps(outcome, sort_keys=True),
    }


@contextmanager
def planner_case_goal(sc: Any) -> Iterator[tuple[str, ToolEnv]]:
    """The goal of a free-text case filled on its network, and the network (to ask the grammar)."""
    from evals.datasets import exceptions as exds
    from evals.env import CaseEnv, fresh_database

    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_database(Path(tmp), exds.SPECS[sc.spec], "grammar")
        try:
            env = CaseEnv.build(db, exds.SPECS[sc.spec], None)
            _, goal = exds.trigger(sc, exds.apply_setup(sc, env.adapters))
            yield goal or "", env.gateway.env
        finally:
            db.dispose()


def record_probe() -> ResolvedMode:
    path = REAL / "probe.yaml"
    path.unlink(missing_ok=True)
    t0 = time.monotonic()
    with vcr.use_cassette(str(path), record_mode="all", **FILTER):
        caps = probe(chat(), base_url=BASE_URL, model=MODEL)
    outcome = {
        "native_tools": caps.native_tools,
        "json_schema": caps.json_schema,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    write_header(path, fields("probe", "capabilities", outcome))
    print(json.dumps({"probe": outcome, "best_mode": caps.best_mode()}), flush=True)
    return caps.best_mode()


def record_planner(case: str, mode: ResolvedMode) -> None:
    path = cassette_path("planner", case)
    path.unlink(missing_ok=True)
    model = StructuredModel(chat(), mode=mode, attempts=1, max_repairs=1)
    planner = LLMPlanner(model, fallback=PlaybookPlanner(), model_name=MODEL, policy=PolicyEngine.from_path(None),
                         max_repairs=1, attempts=1)  # fmt: skip
    with planner_case(case) as c, vcr.use_cassette(str(path), record_mode="all", **FILTER):
        plan = planner.plan(c.triage, c.env)
    outcome = {
        "requests": len(model.calls),
        "parsed": sum(r.ok for r in model.calls),
        "latency_s": [r.latency_s for r in model.calls],
        "tokens_in_out": [[r.input_tokens, r.output_tokens] for r in model.calls],
        "planner": plan.planner,
        "steps": [s.tool for s in plan.steps],
        "not_planned": len(plan.not_planned),
        "fallback": plan.fallback_reason,
    }
    write_header(path, fields(mode, case, outcome))
    print(json.dumps({"planner": case, **outcome}), flush=True)


def record_extractor(name: str, mode: ResolvedMode) -> None:
    path = cassette_path("extractor", name)
    path.unlink(missing_ok=True)
    model = StructuredModel(chat(900), mode=mode, attempts=1, max_repairs=1)
    extractor = LLMExtractor(model, model=MODEL, max_retries=1)
    data = (CORPUS_DOCS / name).read_bytes()
    with vcr.use_cassette(str(path), record_mode="all", **FILTER):
        parsed = parse_email(data, document=name, extractor=extractor)
    po = parsed.purchase_orders[0] if parsed.purchase_orders else None
    outcome = {
        "requests": len(model.calls),
        "parsed": sum(r.ok for r in model.calls),
        "latency_s": [r.latency_s for r in model.calls],
        "tokens_in_out": [[r.input_tokens, r.output_tokens] for r in model.calls],
        "po_number": po.po_number if po else None,
        "lines": len(po.lines) if po else 0,
        "first_codes": [f.code for f in parsed.findings][:3],
    }
    write_header(path, fields(mode, name, outcome))
    print(json.dumps({"extractor": name, **outcome}), flush=True)


def calls_of(*models: StructuredModel) -> list[dict[str, Any]]:
    return [
        {"mode": r.mode, "latency_s": r.latency_s, "in": r.input_tokens, "out": r.output_tokens,
         "est": r.prompt_tokens_est, "ok": r.ok}
        for m in models for r in m.calls
    ]  # fmt: skip


def record_graph(case: str, mode: ResolvedMode, workdir: Path) -> None:
    """One whole exception run with the real model (triage of free text, then planning), scored
    by the suite's checks, and the same case with the playbooks for comparison."""
    sc = graph_scenario(case)
    if case in FREE_TEXT_GOALS:
        with planner_case_goal(sc) as (goal, env):
            grammar = triage_goal(goal, env)
        assert grammar.kind is ExceptionKind.UNKNOWN, f"{case}: the grammar parses {goal!r}; pick another"
    path = cassette_path("graph", case)
    path.unlink(missing_ok=True)
    model = StructuredModel(chat(), mode=mode, attempts=1, max_repairs=1)
    triager = StructuredModel(chat(300), mode=mode, attempts=1, max_repairs=1)
    planner = LLMPlanner(model, fallback=PlaybookPlanner(), model_name=MODEL, policy=PolicyEngine.from_path(None),
                         max_repairs=1, attempts=1)  # fmt: skip
    t0 = time.monotonic()
    with vcr.use_cassette(str(path), record_mode="all", **FILTER):
        outcome = run_scenario(case, planner, workdir, triage_goal=LLMTriage(triager, model_name=MODEL))
    baseline = run_scenario(case, PlaybookPlanner(), workdir)
    outcome |= {
        "calls": calls_of(triager, model),
        "wall_s": round(time.monotonic() - t0, 1),
        "playbook_passed": baseline["passed"],
        "playbook_steps": baseline["steps"],
    }
    write_header(path, fields(mode, case, outcome))
    print(json.dumps({"graph": case, **outcome}), flush=True)


def _fields(score: Any) -> dict[str, list[int]]:
    return {k: [v.tp, v.fp, v.fn] for k, v in score.fields.items()}


def record_po(name: str, doc: Any, catalog: Any, mode: ResolvedMode) -> None:
    """One generated free-text purchase order (prose / HTML-only / forwarded mail) read by the real
    model, scored field by field against its gold, beside the deterministic extractor's reading."""
    from evals.intake_score import score_document

    path = cassette_path("po", name)
    path.unlink(missing_ok=True)
    model = StructuredModel(chat(900), mode=mode, attempts=1, max_repairs=1)
    extractor = LLMExtractor(model, model=MODEL, max_retries=1)
    with vcr.use_cassette(str(path), record_mode="all", **FILTER):
        got = po_outcome(doc, extractor, catalog)
    rules = po_outcome(doc, None, catalog)
    llm_score, rules_score = score_document(doc, got), score_document(doc, rules)
    outcome = {
        "calls": calls_of(model),
        "po_number": got.order.po_number if got.order else None,
        "lines": len(got.order.lines) if got.order else 0,
        "exact": llm_score.exact,
        "fields": _fields(llm_score),
        "rules_exact": rules_score.exact,
        "rules_fields": _fields(rules_score),
        "first_codes": got.finding_codes[:3],
    }
    write_header(path, fields(mode, name, outcome))
    print(json.dumps({"po": name, **outcome}), flush=True)


def rescore_graph(path: Path, workdir: Path) -> None:
    """Replay a recorded whole run with the current code and rewrite its outcome: the model's
    answers (and their latency and tokens) stay as recorded; what OrderOps made of them, and the
    playbooks' verdict on the same input, are recomputed. The header says when (``rescored``)."""
    meta = header(path)
    old = json.loads(meta["outcome"])
    mode: Any = meta["mode"]
    model = StructuredModel(chat(), mode=mode, attempts=1, max_repairs=1)
    triager = StructuredModel(chat(300), mode=mode, attempts=1, max_repairs=1)
    planner = LLMPlanner(model, fallback=PlaybookPlanner(), model_name=MODEL, policy=PolicyEngine.from_path(None),
                         max_repairs=1, attempts=1)  # fmt: skip
    with vcr.use_cassette(str(path), record_mode="none", **FILTER):
        outcome = run_scenario(meta["case"], planner, workdir, triage_goal=LLMTriage(triager, model_name=MODEL))
    baseline = run_scenario(meta["case"], PlaybookPlanner(), workdir)
    outcome |= {k: old[k] for k in ("calls", "wall_s")}
    outcome |= {"playbook_passed": baseline["passed"], "playbook_steps": baseline["steps"]}
    body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("# ")) + "\n"
    path.write_text(body)
    keep = {k: meta[k] for k in ("model", "model_file", "runtime", "runtime_version", "recorded", "mode", "case")}
    keep["rescored"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_header(path, keep | {"outcome": json.dumps(outcome, sort_keys=True)})
    print(json.dumps({"rescored": meta["case"], **outcome}), flush=True)


def rescore_po(path: Path) -> None:
    """Replay a recorded purchase order with the current code and rewrite its outcome. Answers
    the current code no longer asks for (a repair round it now does without) are dropped from the
    cassette, with their latency and tokens: what stays is what this code sends and gets."""
    from evals.intake_score import score_document

    meta = header(path)
    old = json.loads(meta["outcome"])
    corpus = po_corpus()
    doc = dict(corpus.docs)[meta["case"]]
    mode: Any = meta["mode"]
    model = StructuredModel(chat(900), mode=mode, attempts=1, max_repairs=1)
    extractor = LLMExtractor(model, model=MODEL, max_retries=1)
    with vcr.use_cassette(str(path), record_mode="none", **FILTER) as tape:
        got = po_outcome(doc, extractor, corpus.catalog)
        played = tape.play_count
    data = yaml.safe_load("\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("# ")))
    data["interactions"] = data["interactions"][:played]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rules = po_outcome(doc, None, corpus.catalog)
    llm_score, rules_score = score_document(doc, got), score_document(doc, rules)
    calls = [c | {"ok": r.ok} for c, r in zip(old["calls"][:played], model.calls, strict=True)]
    outcome = old | {
        "calls": calls,
        "po_number": got.order.po_number if got.order else None,
        "lines": len(got.order.lines) if got.order else 0,
        "exact": llm_score.exact,
        "fields": _fields(llm_score),
        "rules_exact": rules_score.exact,
        "rules_fields": _fields(rules_score),
        "first_codes": got.finding_codes[:3],
    }
    keep = {k: meta[k] for k in ("model", "model_file", "runtime", "runtime_version", "recorded", "mode", "case")}
    keep["rescored"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_header(path, keep | {"outcome": json.dumps(outcome, sort_keys=True)})
    print(json.dumps({"rescored": meta["case"], **outcome}), flush=True)


def rescore_all(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(REAL.glob("graph-*.yaml")):
            if not names or path.stem in names:
                rescore_graph(path, Path(tmp))
    for path in sorted(REAL.glob("po-*.yaml")):
        if not names or path.stem in names:
            rescore_po(path)


def record_pos(wanted: set[str], mode: ResolvedMode) -> None:
    corpus = po_corpus()
    for name, doc in corpus.docs:
        if not wanted or name in wanted:
            record_po(name, doc, corpus.catalog, mode)


def main(argv: list[str]) -> None:
    REAL.mkdir(exist_ok=True)
    what = argv[0] if argv else "all"
    mode: ResolvedMode = "json_schema"
    if what in ("all", "probe"):
        mode = record_probe()
    if what in ("all", "planner"):
        for case in argv[1:] or PLANNER_CASES:
            record_planner(case, mode)
    if what in ("all", "graph"):
        with tempfile.TemporaryDirectory() as tmp:
            for case in argv[1:] or GRAPH_CASES:
                record_graph(case, mode, Path(tmp))
    if what == "rescore":
        rescore_all(argv[1:])
    if what in ("all", "po"):
        record_pos(set(argv[1:]), mode)
    if what in ("all", "extractor"):
        for name in argv[1:] or EMAILS:
            record_extractor(name, mode)


if __name__ == "__main__":
    main(sys.argv[1:])
