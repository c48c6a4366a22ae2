"""The intake graph: parse -> validate -> decide -> act (create or queue) -> acknowledge, as a
LangGraph ``StateGraph`` with durable checkpoints, one node per stage of :mod:`intake.pipeline`.

The document is stored (:meth:`intake.documents.DocumentStore.receive`) before the graph starts;
the graph only ever carries its id and small JSON (parsed facts, validated orders, decisions,
outcomes). A process that dies anywhere is carried on by another graph over the same checkpointer:
stages already checkpointed are not run again, and the one that was running is run again safely —
orders are created only through the tool gateway under the pipeline's idempotency key (a replay
returns the order made before the crash), review items are unique per document and PO.

What this module must never do: create an order outside the gateway, keep tables or document bytes
in the graph state, or read settings or globals (its dependencies arrive as the runtime context).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypedDict, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from sqlalchemy.exc import IntegrityError

from core import tracing
from core.db.tables_intake import IntakeResultRow
from graphs.checkpoints import open_checkpointer
from intake.acks import AckDraft
from intake.decide import IntakeDecision
from intake.documents import DocumentStatus
from intake.pipeline import (
    IntakeDeps,
    IntakeResult,
    ParsedDocument,
    POOutcome,
    acknowledge_stage,
    act_stage,
    decide_stage,
    load_result,
    parse_stage,
    validate_stage,
)
from intake.validate import ValidatedOrder

__all__ = [
    "IntakeGraph",
    "IntakeState",
    "NodeWrapper",
    "build_intake_graph",
    "intake_thread_id",
    "open_intake_graph",
]


class IntakeState(TypedDict, total=False):
    """What the checkpoints hold: ids and JSON-dumped pydantic models, nothing else."""

    document_id: str
    parsed: dict[str, Any]
    """:class:`~intake.pipeline.ParsedDocument` (the document's record, POs with source pointers, facts)."""
    validated: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    acks: list[dict[str, Any]]
    result: dict[str, Any]
    """The :class:`~intake.pipeline.IntakeResult`, once stored."""


class NodeFn(Protocol):
    def __call__(self, state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]: ...


NodeWrapper = Callable[[str, NodeFn], NodeFn]
"""Wraps each node (by name) when the graph is built: instrumentation, or a test's simulated crash."""


def intake_thread_id(document_id: str) -> str:
    return f"intake:{document_id}"


def _parsed(state: IntakeState) -> ParsedDocument:
    return ParsedDocument.model_validate(state["parsed"])


def _validated(state: IntakeState) -> list[ValidatedOrder]:
    return [ValidatedOrder.model_validate(v) for v in state.get("validated", [])]


def _store(result: IntakeResult, deps: IntakeDeps) -> IntakeResult:
    """Store the result once per document; a result stored first (another process) stands."""
    try:
        with deps.db.begin() as s:
            s.add(IntakeResultRow(document_id=result.document_id, status=result.status,
                                  result=result.model_dump(mode="json"), created_at=deps.clock.now()))  # fmt: skip
    except IntegrityError:
        stored = load_result(result.document_id, deps)
        if stored is not None:
            return stored
        raise
    return result


# --- nodes ------------------------------------------------------------------------------------------


def parse_node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
    parsed = parse_stage(state["document_id"], runtime.context)
    return {"parsed": parsed.model_dump(mode="json")}


def validate_node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
    parsed = _parsed(state)
    out = [validate_stage(parsed, i, runtime.context) for i in range(len(parsed.purchase_orders))]
    return {"validated": [v.model_dump(mode="json") for v in out]}


def decide_node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
    return {"decisions": [decide_stage(v, runtime.context).model_dump(mode="json") for v in _validated(state)]}


def act_node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
    # Safe to re-run after a crash part-way: creates replay under their idempotency keys and
    # review items are unique per (document, PO index).
    parsed = _parsed(state)
    decisions = [IntakeDecision.model_validate(d) for d in state.get("decisions", [])]
    outcomes = [
        act_stage(v, d, parsed.facts[v.po_index], runtime.context)
        for v, d in zip(_validated(state), decisions, strict=True)
    ]
    return {"outcomes": [o.model_dump(mode="json") for o in outcomes]}


def acknowledge_node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
    outcomes = [POOutcome.model_validate(o) for o in state.get("outcomes", [])]
    acks = acknowledge_stage(_parsed(state), _validated(state), outcomes, runtime.context)
    return {"acks": [a.model_dump(mode="json") for a in acks]}


def finish_node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
    parsed = _parsed(state)
    doc = parsed.document
    head: dict[str, Any] = {"document_id": doc.id, "format": str(doc.format), "channel": doc.channel,
                            "findings": parsed.findings}  # fmt: skip
    if doc.status == DocumentStatus.QUARANTINED:
        result = IntakeResult(status="quarantined", reason=doc.reason, **head)
    elif doc.status == DocumentStatus.FAILED:
        result = IntakeResult(status="failed", reason=doc.reason, **head)
    elif doc.status == DocumentStatus.FILED:  # not an order (intake.doctype): filed with the reason
        result = IntakeResult(status="not_an_order", reason=doc.reason, **head)
    elif not parsed.purchase_orders:
        result = IntakeResult(status="no_orders", reason="no purchase order found", **head)
    else:
        outcomes = [POOutcome.model_validate(o) for o in state.get("outcomes", [])]
        acks = [AckDraft.model_validate(a) for a in state.get("acks", [])]
        result = IntakeResult(status="processed", outcomes=outcomes, acks=acks, **head)
    return {"result": _store(result, runtime.context).model_dump(mode="json")}


def _after_parse(state: IntakeState) -> str:
    parsed = _parsed(state)
    if parsed.document.status in (DocumentStatus.QUARANTINED, DocumentStatus.FAILED) or not parsed.purchase_orders:
        return "finish"
    return "validate"


IntakeStateGraph = StateGraph[IntakeState, IntakeDeps, IntakeState, IntakeState]


def build_intake_graph(wrap: NodeWrapper | None = None) -> IntakeStateGraph:
    def node(name: str, fn: NodeFn) -> NodeFn:
        return wrap(name, fn) if wrap is not None else fn

    g: IntakeStateGraph = StateGraph(IntakeState, context_schema=IntakeDeps)
    g.add_node("parse", node("parse", parse_node))
    g.add_node("validate", node("validate", validate_node))
    g.add_node("decide", node("decide", decide_node))
    g.add_node("act", node("act", act_node))
    g.add_node("acknowledge", node("acknowledge", acknowledge_node))
    g.add_node("finish", node("finish", finish_node))
    g.add_edge(START, "parse")
    g.add_conditional_edges("parse", _after_parse, ["validate", "finish"])
    g.add_edge("validate", "decide")
    g.add_edge("decide", "act")
    g.add_edge("act", "acknowledge")
    g.add_edge("acknowledge", "finish")
    g.add_edge("finish", END)
    return g


class IntakeGraph:
    """Run stored documents through the intake graph on one checkpointer.

    Any number of these may exist over the same checkpointer and database, in any process:
    :meth:`run` starts a document's graph, carries on one that stopped part-way, or returns the
    stored result of one that finished (also one finished by :func:`intake.pipeline.process_document`).
    """

    def __init__(
        self, deps: IntakeDeps, checkpointer: BaseCheckpointSaver[str], *, wrap: NodeWrapper | None = None
    ) -> None:
        self.deps = deps
        self.graph: CompiledStateGraph[IntakeState, IntakeDeps, IntakeState, IntakeState] = build_intake_graph(
            wrap
        ).compile(checkpointer=checkpointer)

    def _config(self, document_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": intake_thread_id(document_id)}}

    def state(self, document_id: str) -> IntakeState:
        return cast(IntakeState, self.graph.get_state(self._config(document_id)).values)

    def run(self, document_id: str) -> IntakeResult:
        """Process the stored document ``document_id`` (raises NotFound for an unknown id)."""
        done = load_result(document_id, self.deps)
        if done is not None:
            return done
        self.deps.documents.get(document_id)  # NotFound before any checkpoint is written
        config = self._config(document_id)
        snapshot = self.graph.get_state(config)
        graph_input: IntakeState | None = None if snapshot.next else {"document_id": document_id}
        if not snapshot.next and snapshot.values.get("result"):
            return IntakeResult.model_validate(snapshot.values["result"])
        with tracing.span("orderops.intake", **{"orderops.document.id": document_id}) as span:
            final = self.graph.invoke(graph_input, config, context=self.deps, durability="sync")
            result = IntakeResult.model_validate(final["result"])
            tracing.annotate(
                span,
                **{
                    "orderops.document.format": result.format,
                    "orderops.document.channel": result.channel,
                    "orderops.intake.status": result.status,
                    "orderops.intake.orders": len(result.outcomes),
                    "orderops.intake.findings": len(result.findings),
                },
            )
            return result


@contextmanager
def open_intake_graph(deps: IntakeDeps, *, wrap: NodeWrapper | None = None) -> Iterator[IntakeGraph]:
    """An :class:`IntakeGraph` on ``deps.db``'s checkpointer, closed on exit."""
    with open_checkpointer(deps.db) as saver:
        yield IntakeGraph(deps, saver, wrap=wrap)
