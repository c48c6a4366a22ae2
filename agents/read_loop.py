"""The planner's read loop: before it proposes, the model may call READ tools, step by step, within
a budget, and every call it makes goes through the tool gateway (validated, judged by policy,
audited as the run's agent reads).

Why a loop: the fact sheet the planner starts from is bounded aggregates (counts, five exemplars).
A model that wants to know which node has stock of a SKU, what a carrier quotes or how loaded a
node is asks for it, instead of guessing or proposing something the checks then refuse.

Why it is safe: the loop can only *read*. Each call the model writes goes to
:meth:`tools.gateway.ToolGateway.read`, which knows read tools only, so a write written as a
"read" is refused there (and audited as refused); writes are only ever *proposed*, after the loop,
and then reviewed, simulated, judged, approved and executed by the exception graph as before.
Unknown tools and bad arguments are findings the model is told about, counted against the same
step budget, never a crash. When the steps (``llm_max_read_steps``) or the loop's tokens
(``llm_max_read_tokens``) are spent, the model is asked once more, with write tools only, to
propose from what it has read or to say it cannot.

The loop is a small LangGraph graph (ask -> read -> ask ... -> final) run without a checkpointer:
it lives inside one planning step, which the run's graph checkpoints as a whole. The model's read
requests are parsed by :mod:`tools.llm` like its proposals, so a server that returns no native
tool calls (the model writes JSON in the content) reads the same way.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, runtime_checkable

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.graph import END, START, StateGraph

from agents.plan import Plan, Triage
from guardrails.calls import Actor
from tools.base import ToolEnv
from tools.gateway import Outcome, Proposer, RunLedger, ToolGateway
from tools.llm import CHARS_PER_TOKEN, Proposal, StructuredModel, ToolSpec, estimate_tokens

__all__ = [
    "GatewayReads",
    "ReadLoop",
    "ReadRecord",
    "ReadingPlanner",
    "compact",
]

LIST_ITEMS = 5
"""Items of any list in a read result the model is shown; the length of the rest is said instead."""
RESULT_CHARS = 1500
"""Characters of one read result the model is shown (about 500 tokens): the prompt stays bounded."""
READS_PER_STEP = 3
"""Read calls run per step; more in one reply are told "not run" (each result grows the prompt)."""
STEP_ROOM = int(READS_PER_STEP * RESULT_CHARS / CHARS_PER_TOKEN) + 500
"""Prompt tokens one more read step may add (its results, the reply asking for them). Reading stops
when the next call could pass the per-call prompt budget (``llm_max_prompt_tokens``): the proposal
call after the reads must still fit under it, or the run would fall back to the playbooks instead
of proposing from what the model read."""


@dataclass
class GatewayReads:
    """The gateway a planner reads through, as whom, and on which run's ledger (the graph builds it
    per run so the reads land in that run's audit trail and budgets)."""

    gateway: ToolGateway
    actor: Actor
    run: RunLedger

    def read(self, name: str, args: dict[str, Any], proposer: Proposer) -> Outcome:
        return self.gateway.read(name, args, actor=self.actor, run=self.run, proposer=proposer)

    def specs(self, allow: frozenset[str] | None = None) -> list[ToolSpec]:
        """What the model is told about the gateway's read tools: docstring and argument schema."""
        return [
            ToolSpec(name=t.name, description=t.description, parameters=t.args_model.model_json_schema())
            for name, t in sorted(self.gateway.reads.items())
            if allow is None or name in allow
        ]


@runtime_checkable
class ReadingPlanner(Protocol):
    """A planner that may read through the gateway before it proposes (the LLM planner)."""

    name: str

    def plan_reading(self, triage: Triage, env: ToolEnv, *, max_tokens: int | None, reads: GatewayReads) -> Plan: ...


class ReadRecord(TypedDict):
    """One read the model asked for, for the run report: what, with which arguments, what became
    of it, and the tokens of the model reply that asked for it."""

    step: int
    tool: str
    args: dict[str, Any]
    status: str
    """``read`` (answered), ``denied`` (unknown tool, bad arguments, policy) or ``failed``."""
    tokens: int
    call_id: str | None
    note: str
    """The refusal's reason, or the size of the answer the model was shown."""


def compact(value: Any, items: int = LIST_ITEMS) -> Any:
    """``value`` with every list cut to ``items`` entries plus a note of how many more there were."""
    if isinstance(value, dict):
        return {k: compact(v, items) for k, v in value.items()}
    if isinstance(value, list):
        head = [compact(v, items) for v in value[:items]]
        return head + ([f"... {len(value) - items} more"] if len(value) > items else [])
    return value


def result_text(out: Outcome, limit: int = RESULT_CHARS) -> str:
    """What the model is told about one read: the compacted result, or why it was refused."""
    if out.status != "read":
        return f"{out.status}: {'; '.join(out.reasons) or 'no reason given'}"
    text = json.dumps(compact(out.result), sort_keys=True, default=str, separators=(",", ":"))
    if len(text) > limit:
        text = f"{text[:limit]}... (cut at {limit} of {len(text)} characters; ask for less)"
    return text


class LoopState(TypedDict):
    step: int


@dataclass
class ReadLoop:
    """One planning conversation: the model reads (bounded) and then proposes.

    ``charge`` counts every reply's tokens against the run's budget (it may raise to stop the
    run: the planner falls back); ``tokens`` says how many were spent so far."""

    model: StructuredModel
    reads: GatewayReads
    read_specs: list[ToolSpec]
    write_specs: list[ToolSpec]
    charge: Callable[[AIMessage], None]
    tokens: Callable[[], int]
    proposer: Proposer
    max_steps: int
    max_tokens: int | None = None
    example: str | None = None
    messages: list[BaseMessage] = field(default_factory=list)
    records: list[ReadRecord] = field(default_factory=list)
    proposal: Proposal | None = None
    stopped: str | None = None
    """Why reading stopped before the model was done (a budget), else None."""
    _reply_tokens: int = 0

    def run(self, messages: Sequence[BaseMessage]) -> Proposal:
        """The model's proposal after its reads; ``self.messages`` is the conversation so far."""
        self.messages = list(messages)
        graph: StateGraph[LoopState, None, LoopState, LoopState] = StateGraph(LoopState)
        graph.add_node("ask", self._ask)
        graph.add_node("read", self._read)
        graph.add_node("final", self._final)
        graph.add_edge(START, "ask")
        graph.add_conditional_edges("ask", self._after_ask, ["read", END])
        graph.add_conditional_edges("read", self._after_read, ["ask", "final"])
        graph.add_edge("final", END)
        compiled = graph.compile(checkpointer=False)
        limit = 3 * (self.max_steps + 2)

        def invoke() -> None:
            # Its own graph, not a subgraph of the run's: without the parent's config in context it
            # does not inherit the run graph's checkpointer settings (it keeps no checkpoints).
            var_child_runnable_config.set(None)
            compiled.invoke({"step": 0}, {"recursion_limit": limit})

        contextvars.copy_context().run(invoke)
        assert self.proposal is not None
        return self.proposal

    # --- nodes --------------------------------------------------------------------------------

    def _ask(self, state: LoopState) -> dict[str, Any]:
        self.proposal = self.model.propose(
            self.messages, [*self.read_specs, *self.write_specs], on_reply=self._charge, example=self.example
        )
        return {}

    def _read(self, state: LoopState) -> dict[str, Any]:
        assert self.proposal is not None
        step = state["step"] + 1
        results: dict[str, str] = {}
        writes = {s.name for s in self.write_specs}
        for n, call in enumerate(self.proposal.calls):
            if n >= READS_PER_STEP:
                results[call.id] = f"not run: at most {READS_PER_STEP} reads per step; ask again if you still need it"
                continue
            out = self.reads.read(call.name, call.args, self.proposer)
            text = result_text(out)
            if call.name in writes:
                text += "; a write is not run here: propose it in your final answer, without reads"
            results[call.id] = text
            self.records.append(
                ReadRecord(
                    step=step,
                    tool=call.name,
                    args=call.args,
                    status=out.status,
                    tokens=self._reply_tokens,
                    call_id=out.call_id,
                    note=text if out.status != "read" else f"{len(text)} characters shown",
                )
            )
        self.stopped = self._budget_spent(step, pending=[self.proposal.reply, *map(HumanMessage, results.values())])
        self.messages.extend(self.model.follow_up(self.proposal, results, self._instruction(step)))
        return {"step": step}

    def _final(self, state: LoopState) -> dict[str, Any]:
        self.proposal = self.model.propose(self.messages, self.write_specs, on_reply=self._charge, example=self.example)
        return {}

    # --- edges --------------------------------------------------------------------------------

    def _after_ask(self, state: LoopState) -> str:
        """Read when the reply asks for at least one read tool; otherwise it is the proposal."""
        assert self.proposal is not None
        names = {s.name for s in self.read_specs}
        return "read" if any(c.name in names for c in self.proposal.calls) else END

    def _after_read(self, state: LoopState) -> str:
        return "final" if self.stopped else "ask"

    # --- helpers ------------------------------------------------------------------------------

    def _charge(self, reply: AIMessage) -> None:
        before = self.tokens()
        self.charge(reply)
        self._reply_tokens = self.tokens() - before

    def _budget_spent(self, step: int, pending: Sequence[BaseMessage] = ()) -> str | None:
        """Why reading must stop after ``step`` (``pending``: the messages about to be added), or None."""
        if step >= self.max_steps:
            return f"read budget spent: {step} read steps of {self.max_steps}"
        if self.max_tokens is not None and self.tokens() >= self.max_tokens:
            return f"read budget spent: {self.tokens()} tokens of {self.max_tokens}"
        budget = self.model.max_prompt_tokens
        if budget is not None and self._next_calls_tokens(pending) > budget:
            return f"read budget spent: the conversation nears the per-call prompt budget ({budget} tokens)"
        return None

    def _next_calls_tokens(self, pending: Sequence[BaseMessage]) -> int:
        """The largest prompt reading on could send: the next ask (every tool's schema), or the
        proposal after one more step of reads (its results, the write tools' schemas)."""
        messages = [*self.messages, *pending]
        ask = estimate_tokens(messages, json.dumps([s.openai_schema() for s in self.read_specs + self.write_specs]))
        final = estimate_tokens(messages, json.dumps([s.openai_schema() for s in self.write_specs])) + STEP_ROOM
        return max(ask, final)

    def _instruction(self, step: int) -> str:
        if self.stopped:
            return (
                f"The results above answer your reads. {self.stopped}: you may read no more. Now propose the "
                "write calls that remedy this exception from what you have read, or propose none and say in one "
                "sentence why you cannot."
            )
        left = self.max_steps - step
        return (
            f"The results above answer your reads. You may read again ({left} read steps left) or, when you know "
            "enough, propose the write calls (no read calls in that answer), or none and say why."
        )
