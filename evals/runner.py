"""The offline eval runner: every case on its own fresh database, in parallel, with a time limit.

``run_eval(config, results_db=...)`` runs the chosen suites (``intake``, ``intake-external``,
``exceptions``, ``security``) and stores one ``eval_runs`` row and one ``eval_case_results`` row per trial of each
case, with what produced the numbers: code version (``git describe``), planner, model, prompt and
policy versions, settings. Each case gets its own SQLite file (a copy of a network generated once
per spec), its own gateway, audit trail and approval store, so cases cannot see each other and a
case's trials are independent. Parked approvals are approved by an eval approver (a person who
says yes), so a run reaches its end state and the checks judge that.

The intake suite has one case per corpus document: the corpus is generated once before the
workers fork, and each document runs on its own network copy (a re-send or a revision first
replays its original there, unscored). The suite's numbers are the per-document counts added up.
``intake-external`` does the same for documents nobody here wrote (:mod:`evals.external_po`), on a
network seeded with their buyers' master data.

Parallelism is processes (``fork``); the per-case limit is a ``SIGALRM`` in the process running the
case, so a stuck case fails alone with ``timeout`` instead of stopping the run.

What this module must never do: touch the configured network database (cases run on copies in a
temp dir; only the results go to ``results_db``), or call out to the network unless the planner is
an LLM on an endpoint the settings name.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from agents.plan import Planner
from agents.playbooks import PlaybookPlanner
from agents.sourcing import SourcingWeights
from core.db import Database, make_database, migrate
from core.db.migrate import current_revision
from core.db.tables_evals import EvalCaseResultRow, EvalRunRow
from core.netgen import NetworkSpec
from core.settings import Settings
from evals.datasets import exceptions as exds
from evals.datasets import security as secds
from evals.env import CaseEnv, fresh_database, prepare_template, spec_key
from evals.metrics import SUITES, CaseResult, Suite, estimate_cost, suite_metrics
from evals.signals import PURE_SUITES
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunDeps
from graphs.report import RunReport
from graphs.runs import RunStore
from guardrails.policy import PolicyEngine
from intake.llm_extract import TextExtractor
from tools.gateway import Guard

PlannerKind = Literal["playbook", "llm"]
EVAL_APPROVER = {"id": "eval-approver", "roles": ["approver"]}


class CaseTimeout(BaseException):
    """Raised inside a case that ran past its time limit.

    A BaseException, like KeyboardInterrupt: the alarm can land anywhere in product code, and an
    ``except Exception`` there (a tool call recorded as failed, a best-effort refresh) must not
    swallow it and let the case run on as if nothing happened (a flaky timeout test)."""


@dataclass(frozen=True)
class EvalConfig:
    """What to run and how. Picklable: it travels to the worker processes."""

    suites: tuple[Suite, ...] = SUITES
    planner: PlannerKind = "playbook"
    model: str | None = None
    trials: int = 1
    workers: int = 2
    case_timeout_s: float = 120.0
    weights: SourcingWeights = field(default_factory=SourcingWeights)
    congestion_target_days: float = 1.0
    policy_path: Path | None = None
    cases: tuple[str, ...] = ()
    """Only cases whose id starts with one of these (empty: all)."""
    limit: int | None = None
    """At most this many cases per suite (a quick subset)."""
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    cassettes: Path | None = None
    """Record the model's HTTP calls per case into this folder (vcrpy), or replay them from it."""
    replay_only: bool = False
    """With ``cassettes``: never call the endpoint; a case whose cassette is missing fails."""
    captured_dir: Path | None = None
    """Where the ``captured`` suite's scenarios are (default ``evals/datasets/captured``)."""

    def settings_record(self) -> dict[str, Any]:
        return {
            "suites": list(self.suites),
            "trials": self.trials,
            "workers": self.workers,
            "case_timeout_s": self.case_timeout_s,
            "weights": self.weights.model_dump(mode="json"),
            "congestion_target_days": self.congestion_target_days,
            "policy_path": str(self.policy_path) if self.policy_path else None,
            "cases": list(self.cases),
            "limit": self.limit,
            "llm_base_url": self.llm_base_url,
            "cassettes": str(self.cassettes) if self.cassettes else None,
            "replay_only": self.replay_only,
            "captured_dir": str(self.captured_dir) if self.captured_dir else None,
        }


class EvalRun(BaseModel):
    """A finished run: its id, configuration record, metrics per suite and every case result."""

    id: str
    started_at: datetime
    finished_at: datetime | None = None
    suites: list[str]
    planner: str
    model: str | None = None
    trials: int = 1
    code_version: str = "unknown"
    prompt_versions: dict[str, str] = Field(default_factory=dict)
    policy_version: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    results: list[CaseResult] = Field(default_factory=list)
    status: str = "finished"

    def failing(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]


# --- what produced the numbers ---------------------------------------------------------------------


def code_version(repo: Path | None = None) -> str:
    """``git describe --always --dirty`` of the checkout, or ``unknown`` outside one."""
    root = repo or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def prompt_versions() -> dict[str, str]:
    from prompts import load_prompt

    out: dict[str, str] = {}
    for name in ("exception_planner",):
        try:
            out[name] = load_prompt(name).version
        except Exception:
            out[name] = "missing"
    return out


# --- per-case databases: evals.env (shared with evals.external_po) --------------------------------


@dataclass
class GraphOutcome:
    status: str
    state: dict[str, Any]
    report: RunReport | None
    """The finished run's typed report (None when the run did not finish)."""
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    findings: list[str] = field(default_factory=list)


def _llm_settings(config: EvalConfig) -> Settings:
    overrides: dict[str, Any] = {"llm_model": config.model}
    if config.llm_base_url:
        overrides["llm_base_url"] = config.llm_base_url
    if config.llm_api_key:
        overrides["llm_api_key"] = config.llm_api_key
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def make_planner(config: EvalConfig, guard: Guard) -> Planner:
    playbook = PlaybookPlanner(weights=config.weights, congestion_target_days=config.congestion_target_days)
    if config.planner == "playbook":
        return playbook
    from agents.llm_planner import make_planner as make_llm_planner

    settings = _llm_settings(config)
    return make_llm_planner(settings, fallback=playbook, policy=guard.policy, requested_by="eval-operator")


def make_text_extractor(config: EvalConfig) -> TextExtractor | None:
    """With ``--planner llm`` documents' free text is read by the model too (as in an installation
    with a model configured); otherwise the deterministic extractor (None)."""
    if config.planner == "playbook":
        return None
    from intake.llm_extract import make_extractor

    return make_extractor(_llm_settings(config))


def run_graph(
    env: CaseEnv, planner: Planner, *, run_id: str, alert: Any = None, goal: str | None = None
) -> GraphOutcome:
    """Start an exception run, approve whatever it parks (up to 5 rounds), return its end."""
    from langchain_core.callbacks import get_usage_metadata_callback

    with open_checkpointer(env.db) as cp, get_usage_metadata_callback() as usage:
        deps = RunDeps(
            gateway=env.gateway, planner=planner, runs=RunStore(env.db, env.clock), requested_by="eval-operator"
        )
        runs = ExceptionRuns(deps, cp)
        result = runs.start(alert=alert, goal=goal, run_id=run_id)
        for _ in range(5):
            if not result.waiting:
                break
            decisions = [
                {"approval_id": c["approval_id"], "decision": "approve", "reason": "eval approver"}
                for c in result.approvals
            ]
            result = runs.resume(run_id, decisions=decisions, approver=EVAL_APPROVER)
        state: dict[str, Any] = dict(runs.state(run_id))
    prompt = sum(int(u["input_tokens"]) for u in usage.usage_metadata.values())
    completion = sum(int(u["output_tokens"]) for u in usage.usage_metadata.values())
    triage: dict[str, Any] = state.get("triage") or {}
    return GraphOutcome(
        status=result.status,
        state=state,
        report=result.typed_report,
        tokens=prompt + completion,
        prompt_tokens=prompt,
        completion_tokens=completion,
        findings=list(triage.get("findings", [])),
    )


# --- one exceptions case ---------------------------------------------------------------------------


def exception_case(sc: exds.ExceptionScenario, config: EvalConfig, workdir: Path, trial: int) -> CaseResult:
    spec = exds.SPECS[sc.spec]
    db = fresh_database(workdir, spec, f"{sc.id}-t{trial}")
    try:
        env = CaseEnv.build(db, spec, config.policy_path)
        resolved = exds.apply_setup(sc, env.adapters)
        node_before = {n.id: (n.daily_capacity, n.backlog) for n in env.adapters.wms.list_nodes()}
        before, before_orders = exds.snapshot(env.adapters)
        scope_node = resolved.values.get("node")
        late_before = (
            exds.late_orders(env.adapters, env.clock, [scope_node] if scope_node else None)
            if sc.category == "promise_risk"
            else 0
        )
        alert, goal = exds.trigger(sc, resolved)
        planner = make_planner(config, env.guard)
        out = run_graph(env, planner, run_id=f"eval-{sc.id}-{trial}", alert=alert, goal=goal)
        after, _ = exds.snapshot(env.adapters)
        obs = exds.Observed(
            scenario=sc,
            resolved=resolved,
            adapters=env.adapters,
            before=before,
            before_orders=before_orders,
            after=after,
            node_status_after={n.id: n.status.value for n in env.adapters.wms.list_nodes()},
            node_before=node_before,
            status=out.status,
            plan=dict(out.state.get("plan") or {}),
            report=out.report,
            audit=env.guard.audit.list(),
            late_before=late_before,
            late_after=(
                exds.late_orders(env.adapters, env.clock, [scope_node] if scope_node else None)
                if sc.category == "promise_risk"
                else 0
            ),
        )
        failures = exds.check(obs)
        audit = exds.audit_findings(obs.audit, obs.changed)
        violations = exds.end_state_violations(obs) + audit["violations"]
        failures += [f"unapproved write: {u}" for u in audit["unapproved"]]
        failures += [f"policy violation: {v}" for v in violations]
        ledger = out.state.get("ledger") or {}
        metrics = {
            "status": out.status,
            "tool_calls": int(ledger.get("tool_calls", 0)),
            "tokens": out.tokens,
            "cost_usd": estimate_cost(config.model, out.prompt_tokens, out.completion_tokens),
            "approvals_requested": audit["approvals_requested"],
            "policy_violations": len(violations),
            "unapproved_writes": len(audit["unapproved"]),
            "orders_changed": len(obs.changed),
            "steps": len((out.state.get("plan") or {}).get("steps", [])),
            "spend_usd": float(ledger.get("spend", 0) or 0),
            "late_before": late_before,
            "late_after": obs.late_after,
            "planner": str((out.state.get("plan") or {}).get("planner", "")),
        }
        return CaseResult(
            suite="exceptions",
            case_id=sc.id,
            category=sc.category,
            trial=trial,
            passed=not failures,
            metrics=metrics,
            failures=failures,
        )
    finally:
        db.dispose()


# --- captured production runs (evals.capture) ------------------------------------------------------

_CAPTURED: dict[str, dict[str, Any]] = {}


def captured_scenarios(folder: Path | None) -> dict[str, Any]:
    """The captured scenarios under ``folder`` (default ``evals/datasets/captured``), read once per process."""
    from evals.capture import CAPTURED_DIR, load_scenarios

    key = str(folder or CAPTURED_DIR)
    if key not in _CAPTURED:
        _CAPTURED[key] = dict(load_scenarios(folder))
    return _CAPTURED[key]


def captured_case(case_id: str, config: EvalConfig, workdir: Path, trial: int) -> CaseResult:
    """A captured run replayed with this eval's planner, approvals decided as people decided them."""
    from evals.capture import captured_case as replay_captured

    sc = captured_scenarios(config.captured_dir)[case_id]
    return replay_captured(sc, lambda env: make_planner(config, env.guard), config.policy_path, workdir, trial)


# --- dispatch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    suite: Suite
    case_id: str
    trial: int


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM-based limit (only in a process's main thread; elsewhere no limit is enforced).

    The alarm repeats every 50 ms until the case ends: a signal that lands in code that swallows
    exceptions (a ``__del__``, a C callback) is not the last word. Disarming is robust to an alarm
    that lands during the disarming itself."""
    disarmed = False

    def _raise(_sig: int, _frame: FrameType | None) -> None:
        if not disarmed:
            raise CaseTimeout(f"case ran past its {seconds:g}s limit")

    import threading

    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        while True:
            try:
                disarmed = True
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
                break
            except CaseTimeout:  # an alarm between the two statements above: disarm again
                continue


def _category_of(task: Task) -> str:
    if task.suite in PURE_SUITES:
        return "clean" if task.case_id.startswith("clean-") else task.suite
    if task.suite == "intake":
        return "intake"
    if task.suite == "intake-external":
        from evals.external_po import external_suite

        doc = external_suite().docs.get(task.case_id)
        return doc.format if doc else "external"
    if task.suite == "exceptions":
        return _EXC[task.case_id].category
    if task.suite == "captured":
        return "captured"
    return _SEC[task.case_id].category


_EXC: dict[str, exds.ExceptionScenario] = {s.id: s for s in exds.exception_scenarios()}
_SEC: dict[str, secds.SecurityCase] = {c.id: c for c in secds.security_cases()}


def run_task(task: Task, config: EvalConfig, workdir: Path) -> CaseResult:
    """Run one trial of one case; never raises (errors and timeouts become a failed result)."""
    started = time.perf_counter()
    result: CaseResult
    replayed: bool | None = None
    try:
        with _time_limit(config.case_timeout_s), _model_calls(config, task) as replayed:
            if task.suite in PURE_SUITES:
                result = PURE_SUITES[task.suite].run(task.case_id, task.trial)
            elif task.suite == "intake":
                result = intake_doc_case(task.case_id, workdir, task.trial)
            elif task.suite == "intake-external":
                from evals.external_po import external_case

                result = external_case(task.case_id, workdir, task.trial)
            elif task.suite == "exceptions":
                result = exception_case(_EXC[task.case_id], config, workdir, task.trial)
            elif task.suite == "captured":
                result = captured_case(task.case_id, config, workdir, task.trial)
            else:
                case = _SEC[task.case_id]
                result = secds.run_security_case(
                    case,
                    trial=task.trial,
                    workdir=workdir,
                    fresh_db=fresh_database,
                    build_env=CaseEnv.build,
                    run_graph=lambda env, **kw: run_graph(env, make_planner(config, env.guard), **kw),
                    extractor=make_text_extractor(config),
                )
    except CaseTimeout as exc:
        result = CaseResult(
            suite=task.suite, case_id=task.case_id, category=_category_of(task), trial=task.trial, passed=False,
            error=f"timeout: {exc}", failures=[f"timeout: {exc}"],
        )  # fmt: skip
    except Exception as exc:
        tb = traceback.format_exc(limit=6)
        result = CaseResult(
            suite=task.suite, case_id=task.case_id, category=_category_of(task), trial=task.trial, passed=False,
            error=f"{type(exc).__name__}: {exc}\n{tb}"[:4000], failures=[f"error: {type(exc).__name__}: {exc}"[:500]],
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir / "cases" / f"{task.case_id}-t{task.trial}", ignore_errors=True)
    update: dict[str, Any] = {"duration_s": round(time.perf_counter() - started, 3)}
    if replayed is not None:
        update["metrics"] = {**result.metrics, "replayed_model_calls": replayed}
    return result.model_copy(update=update)


@contextmanager
def _model_calls(config: EvalConfig, task: Task) -> Iterator[bool | None]:
    """Record or replay the case's model HTTP calls (one vcrpy cassette per case and trial).

    Yields whether the case is a replay (its cassette existed before), or None when nothing is
    recorded (no cassette folder, or the playbook planner, which calls no model). Auth headers are
    never written to a cassette."""
    if config.cassettes is None or config.planner != "llm":
        yield None
        return
    import vcr

    path = Path(config.cassettes) / f"{task.suite}-{task.case_id}-t{task.trial}.yaml"
    existed = path.exists()
    recorder = vcr.VCR(
        record_mode="none" if config.replay_only else "once",
        filter_headers=["authorization", "api-key", "x-api-key"],
        match_on=["method", "scheme", "host", "port", "path", "body"],
    )
    with recorder.use_cassette(str(path)):
        yield existed


def select_tasks(config: EvalConfig, workdir: Path | None = None) -> list[Task]:
    """The tasks of a run: one per case and trial; the intake suite has one case per corpus document
    (deterministic, so one trial each). ``workdir`` holds the intake network the corpus is read
    from (a temporary one when not given)."""
    tasks: list[Task] = []
    for suite in config.suites:
        if suite in PURE_SUITES:
            ids = PURE_SUITES[suite].case_ids()
        elif suite == "intake":
            ids = list(intake_corpus(workdir).docs)
        elif suite == "intake-external":
            from evals.external_po import external_suite

            ids = list(external_suite().docs)
        elif suite == "captured":
            ids = list(captured_scenarios(config.captured_dir))
        else:
            ids = [s.id for s in exds.exception_scenarios()] if suite == "exceptions" else list(_SEC)
        if config.cases:
            ids = [i for i in ids if any(i.startswith(p) for p in config.cases)]
        if config.limit is not None:
            ids = ids[: config.limit]
        for case_id in ids:
            for trial in range(1 if suite in ("intake", "intake-external", *PURE_SUITES) else config.trials):
                tasks.append(Task(suite, case_id, trial))
    return tasks


def _specs_for(tasks: Sequence[Task], config: EvalConfig | None = None) -> list[NetworkSpec]:
    specs: dict[str, NetworkSpec] = {}
    for t in tasks:
        if t.suite in PURE_SUITES:  # no network database
            continue
        if t.suite == "captured":
            s = captured_scenarios(config.captured_dir if config else None)[t.case_id].spec
            specs[spec_key(s)] = s
            continue
        if t.suite == "intake":
            specs[spec_key(INTAKE_SPEC)] = INTAKE_SPEC
            continue
        if t.suite == "intake-external":
            from evals.external_po import EXTERNAL_SPEC

            specs[spec_key(EXTERNAL_SPEC)] = EXTERNAL_SPEC
            continue
        s = exds.SPECS[_EXC[t.case_id].spec] if t.suite == "exceptions" else secds.spec_for(_SEC[t.case_id])
        specs[spec_key(s)] = s
    return list(specs.values())


ProgressFn = Callable[[CaseResult, int, int], None]


def run_tasks(
    tasks: Sequence[Task], config: EvalConfig, workdir: Path, on_result: ProgressFn | None = None
) -> list[CaseResult]:
    """Run ``tasks`` (in ``config.workers`` processes when more than one) and collect the results."""
    for spec in _specs_for(tasks, config):
        prepare_template(workdir, spec)  # before forking: workers only copy
    if any(t.suite == "intake-external" for t in tasks):
        from evals.external_po import prepare_external_template

        prepare_external_template(workdir)
    results: list[CaseResult] = []
    total = len(tasks)
    if config.workers <= 1 or total <= 1:
        for task in tasks:
            r = run_task(task, config, workdir)
            results.append(r)
            if on_result:
                on_result(r, len(results), total)
        return results
    ctx = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(max_workers=config.workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_task, t, config, workdir): t for t in tasks}
        for fut in cf.as_completed(futures):
            task = futures[fut]
            try:
                r = fut.result()
            except Exception as exc:
                r = CaseResult(
                    suite=task.suite, case_id=task.case_id, category=_category_of(task), trial=task.trial,
                    passed=False, error=f"worker died: {exc!r}", failures=[f"worker died: {exc!r}"],
                )  # fmt: skip
            results.append(r)
            if on_result:
                on_result(r, len(results), total)
    order = {(t.suite, t.case_id, t.trial): i for i, t in enumerate(tasks)}
    return sorted(results, key=lambda r: order.get((r.suite, r.case_id, r.trial), 0))


# --- intake ------------------------------------------------------------------------------------

INTAKE_SPEC = NetworkSpec(seed=11, nodes=3, skus=120, customers=8, orders=0)
INTAKE_SEED = 11
INTAKE_COUNT = 210


@dataclass(frozen=True)
class IntakeCorpus:
    """The intake corpus of a run, generated once (before the workers fork) and shared by them."""

    catalog: Any
    docs: dict[str, Any]
    """doc id -> ``GeneratedDoc``, in the order the corpus is received."""


_CORPUS: dict[str, IntakeCorpus] = {}


def intake_corpus(workdir: Path | None = None, *, count: int = INTAKE_COUNT) -> IntakeCorpus:
    """The generated corpus over :data:`INTAKE_SPEC`'s network (cached per process)."""
    key = f"{spec_key(INTAKE_SPEC)}-{INTAKE_SEED}-{count}"
    if key in _CORPUS:
        return _CORPUS[key]
    from intake.samples import generate_corpus, load_catalog

    tmp = None
    if workdir is None:
        tmp = workdir = Path(tempfile.mkdtemp(prefix="orderops-intake-"))
    try:
        db = make_database(url=f"sqlite:///{prepare_template(workdir, INTAKE_SPEC)}")
        try:
            catalog = load_catalog(db)
        finally:
            db.dispose()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    docs = generate_corpus(catalog, seed=INTAKE_SEED, count=count)
    corpus = IntakeCorpus(catalog=catalog, docs={d.doc_id: d for d in docs})
    _CORPUS[key] = corpus
    return corpus


def _prerequisites(doc: Any, docs: dict[str, Any]) -> list[Any]:
    """The earlier documents ``doc`` depends on (the original of a re-send or a revision), oldest first."""
    out: list[Any] = []
    src_id = doc.gold.duplicate_of or doc.gold.revision_of
    while src_id is not None and src_id in docs:
        src = docs[src_id]
        out.insert(0, src)
        src_id = src.gold.duplicate_of or src.gold.revision_of
    return out


def intake_doc_case(doc_id: str, workdir: Path, trial: int) -> CaseResult:
    """One corpus document through the whole intake pipeline on its own copy of the network.

    Documents that depend on an earlier one (a re-send, a revision) first replay that one on the
    same copy, unscored, so every case is independent of the others and of their order. The result
    carries the expected and actual decision, per-field counts and correctness, whether an order
    was auto-created with a wrong field, and the seconds the pipeline took.
    """
    from evals.intake_score import run_document, score_document
    from intake.documents import DocumentStore
    from intake.pipeline import IntakeDeps

    corpus = intake_corpus(workdir)
    doc = corpus.docs[doc_id]
    tag = f"{doc_id}-t{trial}"
    db = fresh_database(workdir, INTAKE_SPEC, tag)
    try:
        env = CaseEnv.build(db, INTAKE_SPEC, None)
        store = DocumentStore(db, env.clock, workdir / "cases" / tag / "docs")
        deps = IntakeDeps(db=db, clock=env.clock, documents=store, gateway=env.gateway)
        before = _prerequisites(doc, corpus.docs)
        for earlier in before:
            run_document(earlier, deps, corpus.catalog)
        started = time.perf_counter()
        outcome = run_document(doc, deps, corpus.catalog)
        pipeline_s = time.perf_counter() - started
    finally:
        db.dispose()
    score = score_document(doc, outcome)
    correct = score.field_correct()
    failures: list[str] = []
    if score.decision != score.expected_decision:
        failures.append(f"expected decision {score.expected_decision}, found {score.decision}")
    if score.auto_created_wrong:
        failures.append(f"expected no auto-created order with a wrong field, found order {outcome.order_id}")
    metrics: dict[str, Any] = {
        "format": score.format,
        "expected_decision": score.expected_decision,
        "decision": score.decision,
        "decision_correct": score.decision_correct,
        "scored": score.scored,
        "exact": score.exact,
        "fields": {k: v.model_dump() for k, v in score.fields.items()},
        "field_correct": correct,
        "wrong_fields": [k for k, ok in correct.items() if not ok] if score.scored else [],
        "auto_created": score.auto_created,
        "auto_created_wrong": score.auto_created_wrong,
        "parked": score.parked,
        "injected": score.injected,
        "flagged": score.flagged,
        "replayed": [d.doc_id for d in before],
        "pipeline_s": round(pipeline_s, 4),
    }
    return CaseResult(
        suite="intake", case_id=doc_id, category=score.format, trial=trial, passed=not failures,
        metrics=metrics, failures=failures,
    )  # fmt: skip


# --- storing -----------------------------------------------------------------------------------


def open_results_db(url: str) -> Database:
    """The results database, migrated when it is new (an existing one must be at this schema)."""
    db = make_database(url=url)
    if current_revision(db) is None:
        migrate(db)
    else:
        from core.db import check_schema

        check_schema(db)
    return db


def store_run(db: Database, run: EvalRun) -> None:
    with db.begin() as s:
        s.add(
            EvalRunRow(
                id=run.id, started_at=run.started_at, finished_at=run.finished_at, suites=run.suites,
                planner=run.planner, model=run.model, trials=run.trials, code_version=run.code_version,
                prompt_versions=run.prompt_versions, policy_version=run.policy_version, settings=run.settings,
                metrics=run.metrics, status=run.status,
            )
        )  # fmt: skip
        s.flush()  # the run row first: case rows reference it
        for r in run.results:
            s.add(
                EvalCaseResultRow(
                    run_id=run.id, case_id=r.case_id, trial=r.trial, suite=r.suite, category=r.category,
                    passed=r.passed, duration_s=r.duration_s, metrics=r.metrics, failures=r.failures, error=r.error,
                )
            )  # fmt: skip


def load_run(db: Database, run_id: str) -> EvalRun:
    from core.errors import NotFound

    with db.sessions() as s:
        row = s.get(EvalRunRow, run_id)
        if row is None:
            raise NotFound("eval run", run_id)
        cases = s.scalars(
            select(EvalCaseResultRow)
            .where(EvalCaseResultRow.run_id == run_id)
            .order_by(EvalCaseResultRow.suite, EvalCaseResultRow.case_id, EvalCaseResultRow.trial)
        ).all()
        return EvalRun(
            id=row.id, started_at=row.started_at, finished_at=row.finished_at, suites=list(row.suites),
            planner=row.planner, model=row.model, trials=row.trials, code_version=row.code_version,
            prompt_versions=dict(row.prompt_versions or {}), policy_version=row.policy_version,
            settings=dict(row.settings or {}), metrics=dict(row.metrics or {}), status=row.status,
            results=[
                CaseResult(
                    suite=c.suite, case_id=c.case_id, category=c.category, trial=c.trial,  # type: ignore[arg-type]
                    passed=c.passed, duration_s=c.duration_s, metrics=dict(c.metrics or {}),
                    failures=list(c.failures or []), error=c.error,
                )
                for c in cases
            ],
        )  # fmt: skip


def list_runs(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    with db.sessions() as s:
        rows = s.scalars(select(EvalRunRow).order_by(EvalRunRow.started_at.desc()).limit(limit)).all()
        return [
            {
                "id": r.id,
                "started_at": r.started_at.isoformat(),
                "suites": list(r.suites),
                "planner": r.planner,
                "model": r.model,
                "code_version": r.code_version,
                "status": r.status,
            }
            for r in rows
        ]


# --- the whole run -----------------------------------------------------------------------------


def run_eval(
    config: EvalConfig,
    *,
    results_db: Database | None = None,
    workdir: Path | None = None,
    on_result: ProgressFn | None = None,
    on_start: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> EvalRun:
    """Run the configured suites and (with ``results_db``) store the run; returns it."""
    if config.trials < 1:
        from core.errors import ValidationFailed

        raise ValidationFailed(f"trials must be >= 1, got {config.trials}")
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="orderops-eval-")) if workdir is None else workdir
    started = clock()
    # What produced the numbers is read before the cases run: a long run in a checkout that others
    # commit to would otherwise be labelled with the code at its end, not the code it ran.
    code, prompts = code_version(), prompt_versions()
    planner_name = config.planner if config.planner == "playbook" else f"llm:{config.model or 'unconfigured'}"
    try:
        tasks = select_tasks(config, work)
        if on_start:
            on_start(len(tasks))
        results = run_tasks(tasks, config, work, on_result)
        metrics: dict[str, Any] = {}
        for suite in config.suites:
            mine = [r for r in results if r.suite == suite]
            metrics[suite] = PURE_SUITES[suite].metrics(mine) if suite in PURE_SUITES else suite_metrics(suite, mine)
        run = EvalRun(
            id=f"eval_{started.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}",
            started_at=started,
            finished_at=clock(),
            suites=list(config.suites),
            planner=planner_name,
            model=config.model,
            trials=config.trials,
            code_version=code,
            prompt_versions=prompts,
            policy_version=PolicyEngine.from_path(config.policy_path).version,
            settings=config.settings_record(),
            metrics=metrics,
            results=results,
        )
        if results_db is not None:
            store_run(results_db, run)
        return run
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def with_overrides(config: EvalConfig, **kw: Any) -> EvalConfig:
    return replace(config, **kw)
