"""Free text in: goals and Slack messages the command grammar does not parse go to the model for
triage (kind + scope), and every id the model names is checked against the network.

The grammar (:mod:`agents.triage`) reads first; the model is asked only when it finds no known
exception, and never when the text carries instruction-like phrases (those goals stay refused: a
model must not be talked into a scope the grammar declined). The model sees a bounded view of the
network (nodes with status and backlog, carriers with status, the kinds) and the goal quoted as
data. What it answers is a :class:`TriageAnswer`; ids it names that the network does not know are
dropped with a finding (never guessed into a near match), and a scope with more than one node is
cut to the first, like the grammar's one-incident rule.

Without a model, a vague goal ("reroute orders away from the congested DC") is answered with the
candidates it could mean (:func:`candidates`): concrete goals the grammar understands, each with
the figure that makes it a candidate. The caller refuses the goal and shows them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from string import Template

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.plan import ExceptionKind, Scope, Triage
from agents.triage import (
    GRAMMAR_HELP,
    _describe,
    _known_orders,
    _known_skus,
    _missing,
    _Network,
    _states,
    injection_findings,
    triage_goal,
)
from core.domain import CarrierStatus, NodeStatus
from prompts import Prompt, load_prompt
from tools.base import ToolEnv
from tools.llm import EndpointUnavailable, PromptTooLarge, StructuredModel, StructuredOutputError

__all__ = ["Candidate", "LLMTriage", "TriageAnswer", "candidates", "vague_refusal"]

TRIAGE_KINDS = (
    ExceptionKind.NODE_CONGESTION,
    ExceptionKind.NODE_CLOSURE,
    ExceptionKind.CARRIER_OUTAGE,
    ExceptionKind.STOCKOUT,
    ExceptionKind.PROMISE_RISK,
    ExceptionKind.COMPLIANCE,
    ExceptionKind.UNKNOWN,
)
MAX_IDS = 20


class TriageAnswer(BaseModel):
    """The exception a free-text goal describes: its kind and the ids it is about (checked after)."""

    kind: ExceptionKind = Field(description="One of the kinds listed; unknown when none fits.")
    node_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    carrier_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    states: list[str] = Field(default_factory=list, max_length=60, description="Two-letter US states.")
    skus: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    order_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    why: str = Field(default="", max_length=400, description="One sentence.")


def network_view(env: ToolEnv) -> dict[str, object]:
    """What the model may name: nodes (status, backlog in days, city), carriers (status), kinds.
    Bounded by the size of the network, never by the number of orders."""
    nodes = {n.id: n for n in env.adapters.wms.list_nodes()}
    return {
        "nodes": [
            {
                "id": ld.node_id,
                "city": nodes[ld.node_id].city if ld.node_id in nodes else None,
                "status": ld.status.value,
                "backlog_days": round(ld.backlog_days, 2),
            }
            for ld in env.adapters.wms.node_load()
        ],
        "carriers": [
            {"id": c.id, "name": c.name, "status": c.status.value} for c in env.adapters.carriers.list_carriers()
        ],
        "kinds": [k.value for k in TRIAGE_KINDS],
    }


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def checked_scope(answer: TriageAnswer, env: ToolEnv, findings: list[str]) -> Scope:
    """The ids of ``answer`` the network knows; each unknown one is a finding, never a guess."""
    net = _Network.read(env)
    nodes: list[str] = []
    for raw in answer.node_ids:
        node = net.nodes.get(raw.strip().upper())
        if node is None:
            findings.append(f"the model named node {raw[:40]!r}, which the network does not have; ignored")
        elif node not in nodes:
            nodes.append(node)
    if len(nodes) > 1:
        findings.append(
            f"the model named more than one node ({', '.join(nodes)}); this run handles only {nodes[0]}: "
            f"start a separate run for {', '.join(nodes[1:])}"
        )
        nodes = nodes[:1]
    carriers: list[str] = []
    for raw in answer.carrier_ids:
        cid = net.carriers.get(raw.strip().upper())
        if cid is None:
            findings.append(f"the model named carrier {raw[:40]!r}, which the network does not have; ignored")
        elif cid not in carriers:
            carriers.append(cid)
    return Scope(
        node_ids=nodes,
        carrier_ids=carriers,
        states=_states([s.strip().upper() for s in answer.states], findings),
        skus=_known_skus(env, answer.skus, findings),
        order_ids=_known_orders(env, answer.order_ids, findings),
    )


class LLMTriage:
    """Goal triage: the grammar first, the model for what the grammar does not parse.

    ``model`` ``None`` means no model is configured: the grammar's triage is returned as is (the
    caller refuses an unknown goal and shows :func:`candidates`). A model that cannot be reached or
    whose answer does not validate leaves the goal unknown with a finding saying so (loud, never a
    silent guess)."""

    def __init__(self, model: StructuredModel | None, *, model_name: str | None = None, prompt: Prompt | None = None):
        self.model = model
        self.model_name = model_name or "model"
        self.prompt = prompt or load_prompt("goal_triage")
        self.last_tokens: int = 0
        self._memo: dict[str, Triage] = {}
        """Goal text -> the model's triage: the CLI triages before starting and the run's graph
        triages again, and one slow model call per goal is enough (ids were checked on the first)."""

    def __call__(self, text: str, env: ToolEnv) -> Triage:
        return self.triage_goal(text, env)

    def triage_goal(self, text: str, env: ToolEnv) -> Triage:
        grammar = triage_goal(text, env)
        if grammar.kind is not ExceptionKind.UNKNOWN or self.model is None or injection_findings(text):
            return grammar
        if text in self._memo:
            return self._memo[text]
        findings: list[str] = []
        try:
            answer = self.model.ask(self._messages(text, env), TriageAnswer, on_reply=self._count)
        except (EndpointUnavailable, StructuredOutputError, PromptTooLarge) as exc:
            note = f"FALLBACK: the model could not triage the goal ({str(exc)[:200]}); the grammar's answer stands"
            return grammar.model_copy(update={"findings": [note, *grammar.findings]})
        scope = checked_scope(answer, env, findings)
        kind = answer.kind if answer.kind in TRIAGE_KINDS else ExceptionKind.UNKNOWN
        findings.insert(0, f"triaged by the model {self.model_name} (the grammar did not parse the goal)")
        if kind is ExceptionKind.UNKNOWN:
            why = answer.why.strip()[:200] or "no reason given"
            findings.append(f"the model found no known exception in the goal: {why}")
        else:
            missing = _missing(kind, scope)
            if missing:
                findings.append(f"a {kind.value} goal needs {missing}; the model named none the network has")
        triage = Triage(
            kind=kind,
            scope=scope,
            summary=_describe(kind, scope),
            source="goal",
            quoted_text=text,
            findings=findings,
        )
        if len(self._memo) < 256:
            self._memo[text] = triage
        return triage

    def _count(self, reply: object) -> None:
        usage = getattr(reply, "usage_metadata", None) or {}
        self.last_tokens += int(usage.get("total_tokens") or 0)

    def _messages(self, text: str, env: ToolEnv) -> list[SystemMessage | HumanMessage]:
        user = Template(self.prompt.input_template).safe_substitute(
            network=json.dumps(network_view(env), separators=(",", ":")),
            fence=_fence(text),
            quoted=text,
        )
        return [SystemMessage(self.prompt.system), HumanMessage(user)]


# --- candidates for a vague goal --------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A concrete goal a vague one could mean, and why it is a candidate."""

    goal: str
    why: str


_VAGUE_NODE = re.compile(r"\b(the|that|this|our)\s+(\w+\s+)?(dc|node|warehouse|site|store|facility|building)\b", re.I)
_VAGUE_CARRIER = re.compile(r"\b(the|that|this|our)\s+(\w+\s+)?carrier\b", re.I)
_CONGESTED_WORDS = re.compile(r"\b(congest\w*|busy|backed[- ]up|backlog\w*|swamped|overloaded|behind)\b", re.I)
_CLOSED_WORDS = re.compile(r"\b(clos\w*|shut\w*|down|offline|flooded)\b", re.I)


def candidates(text: str, env: ToolEnv, *, limit: int = 5) -> list[Candidate]:
    """Concrete goals a vague one could mean, from the network as it is now: "the congested DC"
    -> each node marked congested, else the busiest by backlog; "the closed DC" -> closed nodes;
    "the carrier that is down" -> carriers in outage or degraded. Empty when the text refers to
    no such thing."""
    out: list[Candidate] = []
    if _VAGUE_NODE.search(text):
        loads = sorted(env.adapters.wms.node_load(), key=lambda ld: -ld.backlog_days)
        if _CLOSED_WORDS.search(text) and not _CONGESTED_WORDS.search(text):
            out += [
                Candidate(f"{ld.node_id} is closed", f"{ld.node_id} is marked closed")
                for ld in loads
                if ld.status is NodeStatus.CLOSED
            ]
        else:
            marked = [ld for ld in loads if ld.status is NodeStatus.CONGESTED]
            for ld in marked or loads[:3]:
                why = f"status {ld.status.value}, backlog {ld.backlog_days:.1f} days"
                out.append(Candidate(f"reroute orders away from {ld.node_id}", why))
    if _VAGUE_CARRIER.search(text):
        for c in env.adapters.carriers.list_carriers():
            if c.status is not CarrierStatus.OPERATIONAL:
                where = ", ".join(sorted(c.outage_states)) or "everywhere"
                out.append(Candidate(f"carrier {c.id} is down in {where}", f"status {c.status.value}"))
    return out[:limit]


def vague_refusal(text: str, env: ToolEnv, triage: Triage) -> str | None:
    """Why a goal cannot start a run, with the candidates it could mean; None when it can.

    A goal cannot start when its kind is unknown, or when its kind needs a node/carrier/SKU that
    neither the grammar nor the model could name."""
    needs = [f for f in triage.findings if " needs " in f]
    if triage.kind is not ExceptionKind.UNKNOWN and not needs:
        return None
    options = candidates(text, env)
    head = "; ".join(triage.findings[:3]) or "the goal matches no known exception"
    if not options:
        help_ = "" if GRAMMAR_HELP in head else f"; {GRAMMAR_HELP}"
        return f"cannot understand the goal {text[:120]!r}: {head}{help_}"
    listed = "; ".join(f"{c.goal!r} ({c.why})" for c in options)
    return (
        f"the goal {text[:120]!r} is vague; it could mean: {listed}. Say which, e.g. `orderops run {options[0].goal!r}`"
    )
