"""Deterministic triage: what kind of exception an alert or an operator's goal is, and what it touches.

Alerts are triaged from their ``kind`` and ``labels`` only (``node``/``nodes``, ``carrier``/
``carriers``, ``states``, ``region``, ``sku``/``skus``, ``orders``). An alert's free text is carried
verbatim in ``quoted_text`` and scanned for instruction-like phrases (recorded in ``findings``);
it never changes the kind or the scope.

Goals (what an operator types when no model is configured) follow a small command grammar; ids are
matched case-insensitively against the live network, and nodes also by city ("Reno"):

* ``reroute orders away from DC-NEWARK`` / ``DC-RENO is congested`` / ``backlog at Reno`` -> node congestion
* ``DC-X is closed`` / ``close DC-X`` / ``DC-X shut down`` -> node closure
* ``carrier BJX is down in the Southeast`` / ``carrier RDG outage in GA, FL`` -> carrier outage
  (states from two-letter codes after "in", or region names such as "Southeast")
* ``SKU-00042 is out at DC-RENO`` / ``stockout of SKU-00042 at Reno`` -> stockout
* ``orders at risk of missing their promise`` / ``expedite late orders`` -> promise-date risk
* ``hold hazmat orders going by air`` -> compliance

Anything else is ``unknown`` with a finding that says what the grammar understands. Instruction-
like text ("ignore previous instructions", "cancel all orders", "as the system administrator")
is recorded in ``findings`` and never widens what the grammar matched: there is no grammar rule
that cancels, deletes or bypasses anything.

One run handles one incident. A goal that names more than one node ("DC-NEWARK is congested -
<anything>, DC-RENO is closed") is never read as one scope over both: the first incident is
triaged, the others are named in a finding, and :func:`goal_incidents` gives the caller one goal
per incident to start as separate runs. Likewise an alert's node label that carries free text
besides ids yields its first node only. No text can add a node to the scope beyond that one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from agents.plan import Alert, ExceptionKind, Scope, Triage
from core.errors import NotFound
from core.geo import CITIES, STATES_BY_REGION
from core.injection import find_injections, split_sentences
from tools.base import ToolEnv

US_STATES: frozenset[str] = frozenset(c.state for c in CITIES)

# Phrases that address the system rather than describe the exception. Matching is for the audit
# trail and the person reading the triage; safety does not depend on this list being complete,
# because nothing in the text reaches the kind or scope except through the grammar below.
_INJECTION = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(instructions?|rules?|polic(y|ies)|guardrails?|prompts?)\b",
        r"\bcancel\s+(all|every|the)\b[^.\n]{0,20}\borders?\b",
        r"\bdelete\b[^.\n]{0,30}\b(orders?|data|database|records?|audit)\b",
        r"\b(as|i am|i'm)\s+(the\s+)?(system\s+)?(administrator|admin|root|developer|operator in charge)\b",
        r"\bsystem\s*(prompt|message)\b",
        r"\byou are now\b",
        r"\b(without|skip|bypass|no)\s+(the\s+)?(approvals?|review|policy|guardrails?|checks?)\b",
        r"\b(approve|execute)\s+(it\s+|everything\s+|all\s+)?(automatically|immediately|now)\b",
        r"</?\s*(system|assistant|instructions?)\s*>",
        r"\bjailbreak|developer mode\b",
    )
)

_NODE_ID = re.compile(r"\b(?:DC|STORE|DS)-[A-Z0-9-]*[A-Z0-9]\b", re.IGNORECASE)
_SKU = re.compile(r"\bSKU-\d+\b", re.IGNORECASE)
_ORDER = re.compile(r"\bORD-\d+\b", re.IGNORECASE)
_STATES_AFTER_IN = re.compile(r"\bin\s+((?:[A-Z]{2}\b(?:\s*(?:,|and|&)\s*|\s+)?)+)")


def injection_findings(*texts: str) -> list[str]:
    """One finding per instruction-like phrase found in ``texts`` (this module's English patterns
    plus :mod:`core.injection`'s multilingual, tool-call and role-marker ones, matched on a view
    with accents, zero-width characters, look-alike letters and case folded away)."""
    out: list[str] = []
    for text in texts:
        for start, end in find_injections(text, _INJECTION):
            snippet = text[start:end].strip()[:80]
            out.append(f"instruction-like text ignored (treated as data): {snippet!r}")
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class _Network:
    """The ids triage may name, read once."""

    nodes: dict[str, str]  # upper id -> id
    cities: dict[str, list[str]]  # lower city -> node ids
    carriers: dict[str, str]  # upper id or upper name -> id

    @classmethod
    def read(cls, env: ToolEnv) -> _Network:
        nodes = env.adapters.wms.list_nodes()
        cities: dict[str, list[str]] = {}
        for n in sorted(nodes, key=lambda n: n.id):
            cities.setdefault(n.city.lower(), []).append(n.id)
        carriers: dict[str, str] = {}
        for c in env.adapters.carriers.list_carriers():
            carriers[c.id.upper()] = c.id
            carriers[c.name.upper()] = c.id
        return cls({n.id.upper(): n.id for n in nodes}, cities, carriers)


def _split(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[,;\s]+", value) if v.strip()]


def _labels(labels: dict[str, str], *keys: str) -> list[str]:
    out: list[str] = []
    for k in keys:
        if k in labels:
            out.extend(_split(labels[k]))
    return list(dict.fromkeys(out))


def _known_skus(env: ToolEnv, skus: Iterable[str], findings: list[str]) -> list[str]:
    out = []
    for sku in dict.fromkeys(s.upper() for s in skus):
        try:
            out.append(env.adapters.oms.get_product(sku).sku)
        except NotFound:
            findings.append(f"unknown SKU {sku} ignored")
    return out


def _known_orders(env: ToolEnv, ids: Iterable[str], findings: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(i.upper() for i in ids))
    out = []
    for oid in wanted:
        try:
            out.append(env.adapters.oms.get_order(oid).id)
        except NotFound:
            findings.append(f"unknown order {oid} ignored")
    return out


def _states(values: Iterable[str], findings: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        code = v.strip().upper()
        if code in US_STATES:
            out.append(code)
        else:
            findings.append(f"unknown state {v!r} ignored")
    return sorted(set(out))


def _region_states(region: str, findings: list[str]) -> list[str]:
    for name, states in STATES_BY_REGION.items():
        if name.lower() == region.strip().lower():
            return sorted(states)
    findings.append(f"unknown region {region!r} ignored (known: {', '.join(sorted(STATES_BY_REGION))})")
    return []


def _describe(kind: ExceptionKind, scope: Scope) -> str:
    parts = {
        ExceptionKind.NODE_CONGESTION: "node congestion",
        ExceptionKind.NODE_CLOSURE: "node closure",
        ExceptionKind.CARRIER_OUTAGE: "carrier outage",
        ExceptionKind.STOCKOUT: "stockout",
        ExceptionKind.STOCKOUT_RISK: "projected stock-out",
        ExceptionKind.PROMISE_RISK: "promise-date risk",
        ExceptionKind.COMPLIANCE: "compliance check",
        ExceptionKind.UNDO: "undo of an earlier run",
        ExceptionKind.UNKNOWN: "unrecognised exception",
    }[kind]
    bits = []
    if scope.carrier_ids:
        bits.append("carrier " + ", ".join(scope.carrier_ids))
    if scope.skus:
        bits.append(", ".join(scope.skus))
    if scope.node_ids:
        bits.append("at " + ", ".join(scope.node_ids))
    if scope.states:
        bits.append("in " + ", ".join(scope.states))
    if scope.order_ids:
        bits.append(f"{len(scope.order_ids)} named orders")
    return parts + (" " + " ".join(bits) if bits else "")


def _units(raw: str | None, findings: list[str]) -> int | None:
    """A shortfall label (``units``): a positive whole number, else ignored with a finding."""
    if raw is None:
        return None
    text = raw.strip()
    if text.isdigit() and 0 < int(text) <= 10_000_000:
        return int(text)
    findings.append(f"units label {raw[:40]!r} is not a positive whole number; ignored")
    return None


def _missing(kind: ExceptionKind, scope: Scope) -> str | None:
    """What a kind needs in scope to be actionable."""
    if kind in (ExceptionKind.NODE_CONGESTION, ExceptionKind.NODE_CLOSURE) and not scope.node_ids:
        return "a node"
    if kind is ExceptionKind.CARRIER_OUTAGE and not scope.carrier_ids:
        return "a carrier"
    if kind in (ExceptionKind.STOCKOUT, ExceptionKind.STOCKOUT_RISK) and not (scope.skus and scope.node_ids):
        return "a SKU and a node"
    return None


def triage_alert(alert: Alert, env: ToolEnv) -> Triage:
    """Triage an alert from its kind and labels; its text is quoted, scanned, never obeyed."""
    net = _Network.read(env)
    findings: list[str] = []
    labels = {k.lower(): v for k, v in alert.labels.items()}
    nodes: list[str] = []
    unknown_node = False
    for raw in _labels(labels, "node", "nodes"):
        node = net.nodes.get(raw.upper())
        if node is None and raw.lower() in net.cities:
            nodes.extend(net.cities[raw.lower()])
        elif node is None:
            unknown_node = True
            findings.append(f"unknown node {raw!r} ignored")
        else:
            nodes.append(node)
    nodes = list(dict.fromkeys(nodes))
    if unknown_node and len(nodes) > 1:
        # a label of ids is trusted; one mixed with free text is not allowed to name more scope
        findings.append(
            f"the node label carries free text besides ids; only {nodes[0]} is used (ignored: {', '.join(nodes[1:])})"
        )
        nodes = nodes[:1]
    carriers: list[str] = []
    for raw in _labels(labels, "carrier", "carriers"):
        cid = net.carriers.get(raw.upper())
        if cid is None:
            findings.append(f"unknown carrier {raw!r} ignored")
        else:
            carriers.append(cid)
    states = _states(_labels(labels, "states", "state"), findings)
    if "region" in labels:
        states = sorted(set(states) | set(_region_states(labels["region"], findings)))
    scope = Scope(
        node_ids=list(dict.fromkeys(nodes)),
        carrier_ids=list(dict.fromkeys(carriers)),
        states=states,
        skus=_known_skus(env, _labels(labels, "sku", "skus"), findings),
        order_ids=_known_orders(env, _labels(labels, "orders", "order"), findings),
        units=_units(labels.get("units"), findings),
    )
    kind = alert.kind
    if kind is ExceptionKind.UNDO:  # undoing a run is a person's decision (`orderops runs undo`), never an alert's
        findings.append("an alert cannot ask to undo a run; treated as unrecognised")
        kind = ExceptionKind.UNKNOWN
    missing = _missing(kind, scope)
    if missing:
        findings.append(f"a {kind.value} alert needs {missing} in its labels; nothing can be planned without it")
    findings.extend(injection_findings(alert.summary, alert.text, *alert.labels.values()))
    return Triage(
        kind=kind,
        scope=scope,
        summary=_describe(kind, scope),
        source="alert",
        quoted_text=alert.text,
        findings=findings,
    )


# --- goals --------------------------------------------------------------------------------------

_CLOSURE = re.compile(r"\b(closed|closure|close|closing|shut\s*down|shutdown|offline)\b", re.IGNORECASE)
_CONGESTION = re.compile(
    r"\b(congest\w*|backlog\w*|overload\w*|swamped|behind|reroute|re-route|move\s+orders|away\s+from|off\s+of)\b",
    re.IGNORECASE,
)
_OUTAGE = re.compile(r"\b(down|outage|out|not\s+picking\s+up|suspended|disrupt\w*|delays?)\b", re.IGNORECASE)
_STOCKOUT = re.compile(r"\b(out|stockout|stock-out|out\s+of\s+stock|no\s+stock|short)\b", re.IGNORECASE)
_PROMISE = re.compile(
    r"\b(at\s+risk|late|miss\w*\s+(their\s+|the\s+)?(promise|sla|delivery)|promise|expedite\w*|sla)\b", re.IGNORECASE
)
_HAZMAT = re.compile(r"\b(hazmat|hazardous|dangerous\s+goods)\b", re.IGNORECASE)
_CARRIER_WORD = re.compile(r"\bcarrier\b", re.IGNORECASE)

GRAMMAR_HELP = (
    "understood goals: '<node> is congested' / 'reroute orders away from <node>', '<node> is closed', "
    "'carrier <id> is down in <states or region>', '<sku> is out at <node>', 'expedite late orders', "
    "'hold hazmat orders going by air'"
)


def _goal_nodes(text: str, net: _Network, findings: list[str]) -> list[str]:
    found: list[str] = []
    for m in _NODE_ID.finditer(text):
        node = net.nodes.get(m.group(0).upper())
        if node is None:
            findings.append(f"unknown node {m.group(0)!r} ignored")
        else:
            found.append(node)
    lowered = text.lower()
    for city_name, ids in net.cities.items():
        if re.search(rf"(?<![\w-]){re.escape(city_name)}(?![\w-])", lowered):
            found.extend(ids)
    return list(dict.fromkeys(found))


def _goal_carriers(text: str, net: _Network) -> list[str]:
    found = []
    upper = text.upper()
    for key, cid in net.carriers.items():
        if re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", upper):
            found.append(cid)
    return sorted(set(found))


def _goal_states(text: str) -> list[str]:
    states: set[str] = set()
    for m in _STATES_AFTER_IN.finditer(text):
        codes = re.findall(r"[A-Z]{2}", m.group(1))
        states |= {c for c in codes if c in US_STATES}
    lowered = text.lower()
    for region, members in STATES_BY_REGION.items():
        if re.search(rf"\b{region.lower()}\b", lowered):
            states |= members
    return sorted(states)


def _plain(sentence: str) -> str:
    """NFKC-normalised (full-width letters become ASCII) and without format characters (zero-width
    spaces, bidi controls), case kept: what the grammar reads."""
    return "".join(c for c in unicodedata.normalize("NFKC", sentence) if unicodedata.category(c) != "Cf")


def _classify(sentence: str, env: ToolEnv, net: _Network, findings: list[str]) -> tuple[ExceptionKind, Scope]:
    """The grammar applied to one sentence: its kind and the ids it names (nothing from elsewhere)."""
    text = _plain(sentence)
    nodes = _goal_nodes(text, net, findings)
    carriers = _goal_carriers(text, net)
    skus = _known_skus(env, (m.group(0) for m in _SKU.finditer(text)), findings)
    orders = _known_orders(env, (m.group(0) for m in _ORDER.finditer(text)), findings)
    has_carrier = bool(carriers) or bool(_CARRIER_WORD.search(text))
    if has_carrier and _OUTAGE.search(text):
        return ExceptionKind.CARRIER_OUTAGE, Scope(carrier_ids=carriers, states=_goal_states(text), order_ids=orders)
    if skus and _STOCKOUT.search(text):
        return ExceptionKind.STOCKOUT, Scope(node_ids=nodes, skus=skus, order_ids=orders)
    if _HAZMAT.search(text):
        return ExceptionKind.COMPLIANCE, Scope(node_ids=nodes, carrier_ids=carriers, order_ids=orders)
    if nodes and _CLOSURE.search(text):
        return ExceptionKind.NODE_CLOSURE, Scope(node_ids=nodes, order_ids=orders)
    if nodes and _CONGESTION.search(text):
        return ExceptionKind.NODE_CONGESTION, Scope(node_ids=nodes, order_ids=orders)
    if _PROMISE.search(text):
        return ExceptionKind.PROMISE_RISK, Scope(node_ids=nodes, order_ids=orders)
    return ExceptionKind.UNKNOWN, Scope()


_CLAUSE = re.compile(r"\s+[-\u2013\u2014]+\s+|[,;:]\s*|\s+(?:and|also|plus|while|but|then)\s+", re.IGNORECASE)


def _one_incident(
    sentence: str, kind: ExceptionKind, scope: Scope, env: ToolEnv, net: _Network
) -> tuple[ExceptionKind, Scope]:
    """A sentence's incident narrowed to one node: the first clause that reads as an incident at
    exactly one node, else the sentence's kind at its first node. Nothing is added, only removed."""
    if len(scope.node_ids) <= 1:
        return kind, scope
    for clause in _CLAUSE.split(_plain(sentence)):
        if not clause.strip() or find_injections(clause, _INJECTION):
            continue
        c_kind, c_scope = _classify(clause, env, net, [])
        if c_kind is not ExceptionKind.UNKNOWN and len(c_scope.node_ids) == 1:
            first = c_scope.node_ids[0]
            return c_kind, scope.model_copy(update={"node_ids": [first]} | _same_kind_extras(c_kind, c_scope, scope))
    return kind, scope.model_copy(update={"node_ids": scope.node_ids[:1]})


def _same_kind_extras(kind: ExceptionKind, clause: Scope, sentence: Scope) -> dict[str, object]:
    # the clause's own SKUs/orders when it names them; otherwise the sentence's (still a subset)
    return {"skus": clause.skus or sentence.skus, "order_ids": clause.order_ids or sentence.order_ids}


def _other_nodes(text: str, scope: Scope, net: _Network) -> list[str]:
    named = _goal_nodes(_plain(text), net, [])
    return [n for n in named if n not in scope.node_ids]


def goal_incidents(text: str, env: ToolEnv) -> list[str]:
    """The goal cut into one goal per incident (per node named), each to start as its own run.

    A clause or sentence that reads as an incident at one node becomes that incident's goal;
    instruction-like clauses are dropped. A goal with one incident comes back as itself.
    """
    net = _Network.read(env)
    if len(_goal_nodes(_plain(text), net, [])) <= 1:
        return [text]
    out: dict[str, str] = {}
    for sentence in split_sentences(text):
        if find_injections(sentence, _INJECTION) and len(_goal_nodes(_plain(sentence), net, [])) <= 1:
            continue
        for clause in _CLAUSE.split(_plain(sentence)):
            if not clause.strip() or find_injections(clause, _INJECTION):
                continue
            kind, scope = _classify(clause, env, net, [])
            if kind is not ExceptionKind.UNKNOWN and len(scope.node_ids) == 1:
                out.setdefault(scope.node_ids[0], clause.strip())
    return list(out.values()) or [text]


def triage_goal(text: str, env: ToolEnv) -> Triage:
    """Triage an operator's goal with the command grammar in this module's docstring.

    The goal is cut into sentences; sentences holding instruction-like text are never read by the
    grammar. The first remaining sentence the grammar understands is the command, and the kind and
    every id in the scope come from that sentence alone, so a second sentence cannot add a node, a
    carrier or an order. When the only sentence that reads as a command is itself instruction-like,
    the goal is ``unknown`` with a finding.
    """
    net = _Network.read(env)
    findings: list[str] = injection_findings(text)
    kind, scope = ExceptionKind.UNKNOWN, Scope()
    injected_command: str | None = None
    notes: list[str] = []
    for sentence in split_sentences(text):
        sentence_notes: list[str] = []
        s_kind, s_scope = _classify(sentence, env, net, sentence_notes)
        if find_injections(sentence, _INJECTION):
            if s_kind is not ExceptionKind.UNKNOWN and injected_command is None:
                injected_command = sentence
            continue
        if s_kind is ExceptionKind.UNKNOWN:
            notes.extend(sentence_notes)
            continue
        kind, scope = _one_incident(sentence, s_kind, s_scope, env, net)
        notes = sentence_notes
        break
    findings.extend(dict.fromkeys(notes))
    others = _other_nodes(text, scope, net) if scope.node_ids else []
    if others:
        findings.append(
            f"the goal names more than one incident ({', '.join([*scope.node_ids, *others])}); this run handles "
            f"only {', '.join(scope.node_ids)}: start a separate run for {', '.join(others)}"
        )

    if kind is ExceptionKind.UNKNOWN and injected_command is not None:
        findings.append(
            "the only sentence that reads as a command carries instruction-like text; nothing is planned "
            f"from it: {injected_command[:120]!r}"
        )
    elif kind is ExceptionKind.UNKNOWN:
        findings.append(f"the goal matches no known exception; {GRAMMAR_HELP}")
    else:
        missing = _missing(kind, scope)
        if missing:
            findings.append(f"a {kind.value} goal needs {missing}; none matched the network")
    return Triage(
        kind=kind,
        scope=scope,
        summary=_describe(kind, scope),
        source="goal",
        quoted_text=text,
        findings=findings,
    )
