"""The use cases' dependencies, built once from a process's live context: the run driver's
(:class:`~graphs.exception.RunDeps` with the chosen planner) and the intake pipeline's
(:class:`~intake.pipeline.IntakeDeps` with the document store).

Every way in that drives runs or documents (``orderops run``, the workers, the console, the inbox)
builds them here, so a planner or a store is chosen by one rule. Before, the worker borrowed the
CLI's modules for this, and each way in assembled its own copy.

The context is whatever the composition root built (:class:`api.bootstrap.AppContext`), seen
through :class:`Context` so this layer does not import the one above it. The heavy parts (the
LLM client, the graphs, the parsers) are imported when first built, not when this module is: the
composition root imports it on every command, most of which build neither.

What this module must never do: read settings from the environment, or open anything the caller
did not hand it (the database, the guard and the adapters are the context's).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.clock import Clock
from core.db import Database
from core.errors import ConfigurationError, ValidationFailed
from core.settings import Settings
from tools.gateway import Guard, ToolGateway

if TYPE_CHECKING:
    from agents.plan import Planner
    from graphs.exception import RunDeps, TriageGoalFn
    from graphs.runs import RunStore
    from intake.documents import DocumentStore
    from intake.pipeline import IntakeDeps

PLANNER_CHOICES: tuple[str, ...] = ("auto", "playbook", "llm")
OPERATOR = "cli-operator"
"""Who a run acts for when no person is named (a terminal without a key), and the planner's
requester for its own reads."""


class Context(Protocol):
    """What the wiring reads of the process's live context (:class:`api.bootstrap.AppContext`)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def guard(self) -> Guard: ...

    @property
    def gateway(self) -> ToolGateway: ...


def choose_planner(ctx: Context, which: str = "auto") -> Planner:
    """``auto``: the LLM when one is configured (the playbooks back it up), else the playbooks;
    ``playbook``; ``llm``, which must be configured."""
    from agents.llm_planner import make_planner
    from agents.playbooks import PlaybookPlanner

    playbooks = PlaybookPlanner()
    if which == "playbook":
        return playbooks
    if which == "llm" and not ctx.settings.llm_configured:
        raise ConfigurationError("--planner llm needs ORDEROPS_LLM_BASE_URL and ORDEROPS_LLM_MODEL")
    if which not in PLANNER_CHOICES:
        raise ValidationFailed(f"unknown planner {which!r}: auto, playbook or llm")
    return make_planner(ctx.settings, fallback=playbooks, policy=ctx.guard.policy, requested_by=OPERATOR)


def run_deps(ctx: Context, planner: Planner, *, runs: RunStore, requested_by: str = OPERATOR) -> RunDeps:
    """What an exception run uses: the context's gateway, ``planner``, the runs index, the person
    the run acts for (who may then not approve its calls), and goal triage (the model reads goals
    the grammar does not parse when one is configured)."""
    from graphs.exception import RunDeps

    if not ctx.settings.llm_configured:
        return RunDeps(gateway=ctx.gateway, planner=planner, runs=runs, requested_by=requested_by)
    return RunDeps(
        gateway=ctx.gateway,
        planner=planner,
        runs=runs,
        requested_by=requested_by,
        triage_goal=goal_triage(ctx),
    )


def goal_triage(ctx: Context) -> TriageGoalFn:
    """Goal triage with the configured model for what the grammar does not parse (free text in);
    the grammar alone without a model."""
    from agents.triage import triage_goal
    from agents.triage_llm import LLMTriage
    from tools.llm import make_structured_model

    model = make_structured_model(ctx.settings)
    if model is None:
        return triage_goal
    return LLMTriage(model, model_name=ctx.settings.llm_model)


def document_store(ctx: Context) -> DocumentStore:
    """The intake document store every way in shares (CLI, watched folder, inbox, console, workers):
    documents under ``<home>/documents``; free text read by the LLM extractor when a model is
    configured, else by the deterministic one (``extractor=None``: the store's default, without
    importing the LLM client, ~1 s of CPU at every CLI intake's start)."""
    from intake.documents import DocumentLimits, DocumentStore
    from intake.sandbox import SandboxLimits

    extractor = None
    if ctx.settings.llm_configured and ctx.settings.llm_model is not None:
        from intake.llm_extract import make_extractor

        extractor = make_extractor(ctx.settings)
    return DocumentStore(
        ctx.db,
        ctx.clock,
        Path(ctx.settings.home) / "documents",
        extractor=extractor,
        limits=DocumentLimits(parse_seconds=ctx.settings.intake_parse_seconds),
        sandbox=SandboxLimits.from_settings(ctx.settings),
    )


def intake_deps(ctx: Context) -> IntakeDeps:
    """The intake pipeline's dependencies: the shared document store and the context's gateway."""
    from intake.pipeline import IntakeDeps

    return IntakeDeps(db=ctx.db, clock=ctx.clock, documents=document_store(ctx), gateway=ctx.gateway,
                      risk_hold=ctx.settings.order_risk_hold)  # fmt: skip
