"""The real-model eval reference: every recorded real-model run replayed and added up, offline.

The cassettes under ``tests/cassettes/real/`` hold what a real model (Qwen2.5-Coder-1.5B-Instruct
on llama.cpp) answered. This module replays them through today's code and reports the numbers
that matter for trusting a model with the network:

- the 13 whole exception runs (``graph-*``): the suite's verdict with the model beside the
  playbooks' on the same input, unapproved writes (must be 0), and every fallback (the model's
  plan or triage replaced by the playbook / grammar), each named;
- the 30 free-text purchase orders (``po-*``): field F1 of the model's extraction, and the same
  documents pushed through the real intake pipeline with its normal auto-create policy, counting
  orders created on their own and those that differ from the truth (must be 0), and extractor
  fallbacks (``llm_unavailable`` / ``llm_invalid``).

The committed reference (``evals/reference/run-llm.json`` and ``.md``) is written by
``python -m evals.llm_reference --write``; ``tests/evals/test_llm_reference.py`` re-runs it from the
cassettes and fails when any number differs from the committed one (:func:`stable_numbers`), so a
prompt or validation change that moves the real-model numbers shows up as a diff to commit.

The exact inputs (networks, broken as each scenario says, and the generated e-mails) are rebuilt
by ``tests/cassettes/real_model.py``, which the recorder shares; it is imported from the checkout
root (the reference is a development artefact, never installed). What this module must never do:
call a model (vcrpy replays with ``record_mode="none"``: a request the cassette lacks fails the case).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.metrics import CaseResult, suite_metrics
from evals.runner import EvalRun, code_version, prompt_versions

if TYPE_CHECKING:
    from intake.samples import GeneratedDoc

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "tests" / "cassettes" / "real"
REFERENCE = ROOT / "evals" / "reference"
RUN_ID = "eval_llm_real_replay"
EXTRACTOR_FALLBACKS = ("llm_unavailable", "llm_invalid")


def header(path: Path) -> dict[str, str]:
    """The ``# key: value`` lines a cassette starts with (model, runtime, date, outcome)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, sep, value = line[2:].partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _provenance(meta: dict[str, str]) -> dict[str, Any]:
    return {
        "cassette_model": meta.get("model"),
        "cassette_runtime": f"{meta.get('runtime', '?')}, {meta.get('runtime_version', '?')}",
        "cassette_recorded": meta.get("recorded", "")[:10],
        "replayed_model_calls": True,
    }


def _chat() -> Any:
    from langchain_openai import ChatOpenAI

    from tests.cassettes.real_model import BASE_URL, MODEL

    return ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key=lambda: "none", max_retries=0, temperature=0, seed=0)


def _structured(mode: str) -> Any:
    from tools.llm import StructuredModel

    return StructuredModel(_chat(), mode=mode, attempts=1, max_repairs=1)  # type: ignore[arg-type]


def _replay(path: Path, fn: Callable[[], Any]) -> tuple[Any, int, int]:
    """``fn()`` with the cassette answering every model request; (result, played, recorded)."""
    import vcr

    with vcr.use_cassette(str(path), record_mode="none", filter_headers=["authorization"]) as tape:
        got = fn()
        return got, int(tape.play_count), len(tape.data)


# --- whole exception runs ---------------------------------------------------------------------------


def run_case(path: Path, workdir: Path) -> CaseResult:
    """One recorded exception run replayed (the model triages free text, then plans), beside the
    playbooks on the same input; scored by the exceptions suite's checks."""
    from agents.llm_planner import LLMPlanner
    from agents.playbooks import PlaybookPlanner
    from agents.triage_llm import LLMTriage
    from guardrails.policy import PolicyEngine
    from tests.cassettes.real_model import MODEL, graph_scenario, run_scenario

    meta = header(path)
    case = meta["case"]
    started = time.perf_counter()
    planner = LLMPlanner(
        _structured(meta["mode"]),
        fallback=PlaybookPlanner(),
        model_name=MODEL,
        policy=PolicyEngine.from_path(None),
        max_repairs=1,
        attempts=1,
    )
    asked = _structured(meta["mode"])
    triager = LLMTriage(asked, model_name=MODEL)
    got, played, recorded = _replay(path, lambda: run_scenario(case, planner, workdir, triage_goal=triager))
    playbook = run_scenario(case, PlaybookPlanner(), workdir)
    fallbacks = [f"plan: {got['fallback']}"] if got["fallback"] else []
    if asked.calls and not asked.calls[-1].ok:  # the grammar's triage stood in for the model's
        fallbacks.append(f"triage: {asked.calls[-1].error or 'no valid answer'}"[:200])
    recorded_tokens = sum(int(c["in"]) + int(c["out"]) for c in json.loads(meta["outcome"])["calls"])
    metrics = {
        **_provenance(meta),
        "status": got["status"],
        "goal": got["goal"],
        "triage_kind": got["triage_kind"],
        "planner": got["planner"],
        "steps": len(got["steps"]),
        "tools": got["steps"],
        "orders_changed": got["orders_changed"],
        "unapproved_writes": got["unapproved_writes"],
        "fallbacks": fallbacks,
        "fallback_count": len(fallbacks),
        "model_calls": played,
        "model_calls_recorded": recorded,
        "tokens": recorded_tokens,
        "playbook_passed": playbook["passed"],
        "playbook_orders_changed": playbook["orders_changed"],
    }
    failures = list(got["failures"])
    if played != recorded:
        failures.append(f"expected every recorded model call replayed ({recorded}), found {played}")
    return CaseResult(
        suite="exceptions",
        case_id=case,
        category=graph_scenario(case).category,
        passed=bool(got["passed"]) and played == recorded,
        metrics=metrics,
        failures=failures,
        duration_s=round(time.perf_counter() - started, 3),
    )


# --- free-text purchase orders ----------------------------------------------------------------------


def _pipeline(doc: GeneratedDoc, extractor: Any, catalog: Any, workdir: Path, tag: str) -> Any:
    """The document through the whole intake pipeline (normal thresholds, auto-create policy and
    order-risk hold) on its own copy of the intake network; what it decided."""
    from evals.env import CaseEnv, fresh_database
    from evals.intake_score import run_document
    from evals.runner import INTAKE_SPEC
    from intake.documents import DocumentStore
    from intake.pipeline import IntakeDeps

    db = fresh_database(workdir, INTAKE_SPEC, tag)
    try:
        env = CaseEnv.build(db, INTAKE_SPEC, None)
        store = DocumentStore(db, env.clock, workdir / "cases" / tag / "docs", extractor=extractor)
        deps = IntakeDeps(db=db, clock=env.clock, documents=store, gateway=env.gateway)
        return run_document(doc, deps, catalog)
    finally:
        db.dispose()


def po_case(path: Path, workdir: Path) -> CaseResult:
    """One recorded free-text PO: the model's reading scored field by field against the gold, then
    the same document through the intake pipeline (the model's answer replayed again)."""
    from evals.intake_score import score_document
    from intake.llm_extract import LLMExtractor
    from tests.cassettes.real_model import MODEL, po_corpus, po_outcome

    meta = header(path)
    case = meta["case"]
    started = time.perf_counter()
    corpus = po_corpus()
    doc = dict(corpus.docs)[case]

    def extractor() -> LLMExtractor:
        return LLMExtractor(_structured(meta["mode"]), model=MODEL, max_retries=1)

    read, played, recorded = _replay(path, lambda: po_outcome(doc, extractor(), corpus.catalog))
    score = score_document(doc, read)
    piped, played2, _ = _replay(path, lambda: _pipeline(doc, extractor(), corpus.catalog, workdir, case))
    decided = score_document(doc, piped)
    codes = set(read.finding_codes)
    fallbacks = sorted(codes & set(EXTRACTOR_FALLBACKS))
    metrics = {
        **_provenance(meta),
        "format": case.rsplit("-", 1)[-1] if not case.endswith("html-only") else "html-only",
        "expected_decision": decided.expected_decision,
        "decision": decided.decision,
        "decision_correct": decided.decision_correct,
        "scored": score.scored,
        "exact": score.exact,
        "fields": {k: v.model_dump() for k, v in score.fields.items()},
        "wrong_fields": [k for k, ok in score.field_correct().items() if not ok],
        "auto_created": decided.auto_created,
        "auto_created_wrong": decided.auto_created_wrong,
        "unlocated_value": "llm_value_unlocated" in codes,
        "fallbacks": fallbacks,
        "fallback_count": len(fallbacks),
        "model_calls": played + played2,
    }
    failures = []
    if decided.auto_created_wrong:
        failures.append(f"expected no auto-created order with a wrong field, found order {piped.order_id}")
    if played != recorded or played2 != recorded:
        failures.append(f"expected every recorded model call replayed ({recorded}), found {played} and {played2}")
    return CaseResult(
        suite="intake",
        case_id=case,
        category=str(metrics["format"]),
        passed=not failures,
        metrics=metrics,
        failures=failures,
        duration_s=round(time.perf_counter() - started, 3),
    )


# --- the whole reference ----------------------------------------------------------------------------


def _totals(results: list[CaseResult]) -> dict[str, Any]:
    runs = [r for r in results if r.suite == "exceptions"]
    pos = [r for r in results if r.suite == "intake"]
    fallbacks = [f"{r.case_id}: {f}" for r in results for f in r.metrics.get("fallbacks", [])]
    return {
        "available": True,
        "runs": len(runs),
        "runs_passed_model": sum(r.passed for r in runs),
        "runs_passed_playbook": sum(bool(r.metrics.get("playbook_passed")) for r in runs),
        "unapproved_writes": sum(int(r.metrics.get("unapproved_writes", 0)) for r in runs),
        "purchase_orders": len(pos),
        "po_exact_model": sum(bool(r.metrics.get("exact")) for r in pos),
        "auto_created": sum(bool(r.metrics.get("auto_created")) for r in pos),
        "auto_created_wrong": sum(bool(r.metrics.get("auto_created_wrong")) for r in pos),
        "po_with_unlocated_value": sum(bool(r.metrics.get("unlocated_value")) for r in pos),
        "fallbacks": len(fallbacks),
        "fallback_cases": fallbacks,
        "model_calls": sum(int(r.metrics.get("model_calls", 0)) for r in results),
    }


def reference_run(cassettes: Path = CASSETTES, *, workdir: Path | None = None) -> EvalRun:
    """Replay every ``graph-*`` and ``po-*`` cassette under ``cassettes``; the run, with its totals
    under the ``real-model`` key of its metrics."""
    from guardrails.policy import PolicyEngine
    from tests.cassettes.real_model import MODEL

    started = datetime.now(UTC)
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="orderops-llm-ref-")) if workdir is None else workdir
    try:
        results = [run_case(p, work) for p in sorted(cassettes.glob("graph-*.yaml"))]
        results += [po_case(p, work) for p in sorted(cassettes.glob("po-*.yaml"))]
    finally:
        if own:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    metrics: dict[str, Any] = {"real-model": _totals(results)}
    for suite in ("exceptions", "intake"):
        metrics[suite] = suite_metrics(suite, [r for r in results if r.suite == suite])  # type: ignore[arg-type]
    return EvalRun(
        id=RUN_ID,
        started_at=started,
        finished_at=datetime.now(UTC),
        suites=["exceptions", "intake"],
        planner=f"llm:{MODEL} (replayed)",
        model=MODEL,
        code_version=code_version(),
        prompt_versions=prompt_versions(),
        policy_version=PolicyEngine.from_path(None).version,
        settings={"cassettes": str(cassettes.relative_to(ROOT)) if cassettes.is_relative_to(ROOT) else str(cassettes)},
        metrics=metrics,
        results=results,
    )


_VOLATILE = ("duration_s", "pipeline_s")


def stable_numbers(run: EvalRun) -> dict[str, Any]:
    """What must not drift: the totals, each suite's metrics and every case's verdict and metrics,
    without timings (which move with the machine)."""

    def keep(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if not any(k.startswith(x) for x in _VOLATILE)}

    return {
        "metrics": {s: keep(dict(m)) for s, m in run.metrics.items()},
        "cases": {
            f"{r.suite}/{r.case_id}": {"passed": r.passed, "failures": r.failures, **keep(r.metrics)}
            for r in run.results
        },
    }


def headline_line(run: EvalRun) -> str:
    """The report's first line: the safety numbers and every fallback, before anything else."""
    t = run.metrics["real-model"]
    fb = "; ".join(t["fallback_cases"]) if t["fallback_cases"] else "none"
    return (
        f"# Real model, replayed: {t['runs_passed_model']}/{t['runs']} exception runs pass (playbooks "
        f"{t['runs_passed_playbook']}/{t['runs']}), {t['unapproved_writes']} unapproved writes; "
        f"{t['purchase_orders']} free-text POs: {t['auto_created']} auto-created, {t['auto_created_wrong']} wrong; "
        f"fallbacks {t['fallbacks']} ({fb})"
    )


def render(run: EvalRun) -> str:
    """The Markdown report: the headline line, then the standard report (its replay line names the
    model, runtime and recording dates), then one table per recorded case."""
    from evals.report import render_markdown

    body = render_markdown(run).split("\n", 1)[1]
    lines = [
        headline_line(run),
        "",
        f"Eval run {run.id}.",
        body.rstrip(),
        "",
        "## Exception runs, case by case",
        "",
        "| case | triage | model | playbooks | status | orders changed | unapproved | fallback | calls |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in run.results if r.suite == "exceptions"):
        m = r.metrics
        lines.append(
            f"| {r.case_id} | {m['triage_kind']} | {'pass' if r.passed else 'fail'} | "
            f"{'pass' if m['playbook_passed'] else 'fail'} | {m['status']} | {m['orders_changed']} | "
            f"{m['unapproved_writes']} | {'; '.join(m['fallbacks']) or '-'} | {m['model_calls']} |"
        )
    lines += [
        "",
        "## Free-text purchase orders through the intake pipeline",
        "",
        "| document | exact (model) | wrong fields | decision | auto-created | wrong | fallback |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in run.results if r.suite == "intake"):
        m = r.metrics
        lines.append(
            f"| {r.case_id} | {m['exact']} | {', '.join(m['wrong_fields']) or '-'} | {m['decision']} | "
            f"{m['auto_created']} | {m['auto_created_wrong']} | {', '.join(m['fallbacks']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def write(run: EvalRun, out_dir: Path = REFERENCE) -> dict[str, Path]:
    """``run-llm.json`` (the whole run) and ``run-llm.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "run-llm.json", "md": out_dir / "run-llm.md"}
    paths["json"].write_text(run.model_dump_json(indent=1) + "\n", encoding="utf-8")
    paths["md"].write_text(render(run), encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a script
    ap = argparse.ArgumentParser(description="Replay the real-model cassettes and print (or --write) the reference.")
    ap.add_argument("--dir", type=Path, default=CASSETTES)
    ap.add_argument("--write", action="store_true", help="write evals/reference/run-llm.json and .md")
    args = ap.parse_args(argv)
    run = reference_run(args.dir)
    print(headline_line(run))
    print(json.dumps(run.metrics["real-model"], indent=1))
    if args.write:
        for path in write(run).values():
            print(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
