"""The policy engine: for every tool call an agent proposes, allow, require approval, or deny.

The policy is code in YAML (schema in ``guardrails/POLICY.md``), validated on load; a bad file is a
:class:`~core.errors.ConfigurationError` naming the key and line, never a policy that silently
means something else. Deciding is pure: :meth:`PolicyEngine.decide` reads only the policy and the
:class:`~guardrails.calls.ProposedCall` it is handed — no database, no clock, no I/O — so the same
call and policy always give the same :class:`Decision`, and it can be property-tested.

What it must never do:

* raise from :meth:`PolicyEngine.decide` — anything it cannot judge (malformed, ambiguous, or an
  internal error) is denied with a reason: it fails closed;
* allow a write that no ``allow`` rule matched — the default for writes is approval or deny,
  and the schema refuses ``allow`` there;
* let an ``allow`` outvote a ``deny`` or a ``require_approval``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.resources
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.domain import CustomerTier, NodeStatus
from core.errors import ConfigurationError
from guardrails.calls import CallFacts, ProposedCall, RiskClass

__all__ = [
    "ApprovalSpec",
    "Budgets",
    "Decision",
    "Defaults",
    "Effect",
    "Policy",
    "PolicyEngine",
    "Rule",
    "When",
    "approvals_complete",
    "can_approve",
    "load_policy",
    "parse_policy",
    "policy_version",
]

DEFAULT_POLICY_RESOURCE = "default_policy.yaml"

RISK_RANK: dict[RiskClass, int] = {
    RiskClass.READ: 0,
    RiskClass.WRITE_LOW: 1,
    RiskClass.WRITE_HIGH: 2,
    RiskClass.DESTRUCTIVE: 3,
}


class Effect(StrEnum):
    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


SEVERITY: dict[Effect, int] = {Effect.ALLOW: 0, Effect.REQUIRE_APPROVAL: 1, Effect.DENY: 2}


# --- the policy file schema ---------------------------------------------------------------------


def _listify(v: Any) -> Any:
    """Let a single string stand for a one-element list (``tools: cancel_*``)."""
    return [v] if isinstance(v, str) else v


def _to_str(v: Any) -> Any:
    # ``version: 3`` or ``version: 1.2`` in YAML are numbers; a version is a label, so keep the text.
    return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


Name = Annotated[str, Field(min_length=1, max_length=100)]
Names = Annotated[tuple[Name, ...], BeforeValidator(_listify), Field(min_length=1)]
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")]
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Config):
    """Conditions of a rule; all given ones must hold (AND). A condition on facts never matches a
    call without facts (a read): reads change nothing, and writes without facts are denied anyway."""

    tools: Names | None = None
    """Tool names or fnmatch globs (``reroute_*``); any may match."""
    risk_in: Annotated[tuple[RiskClass, ...], BeforeValidator(_listify), Field(min_length=1)] | None = None
    actor_kind: Literal["agent", "user"] | None = None
    orders_gt: Annotated[int, Field(ge=0)] | None = None
    orders_lte: Annotated[int, Field(ge=0)] | None = None
    value_gt: Money | None = None
    value_lte: Money | None = None
    cost_delta_gt: Money | None = None
    cost_delta_lte: Money | None = None
    tier_in: Annotated[tuple[CustomerTier, ...], BeforeValidator(_listify), Field(min_length=1)] | None = None
    """Matches when the highest tier touched is one of these."""
    carrier_in: Names | None = None
    """Matches when any carrier used is one of these."""
    carrier_not_in: Names | None = None
    """Matches when any carrier used is not one of these (an allow-list, as a deny rule)."""
    service_in: Names | None = None
    service_not_in: Names | None = None
    air: bool | None = None
    """true: some service used is air. false: none is."""
    hazmat: bool | None = None
    hazmat_by_air: bool | None = None
    """true: some single order is hazmat and would ship by air."""
    cold_chain: bool | None = None
    target_node_status_in: Annotated[tuple[NodeStatus, ...], BeforeValidator(_listify), Field(min_length=1)] | None = (
        None
    )
    states_in: Names | None = None
    """Matches when any ship-to state is one of these."""
    states_not_in: Names | None = None

    @field_validator("states_in", "states_not_in")
    @classmethod
    def _upper(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else tuple(s.upper() for s in v)

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def reads_facts(self) -> bool:
        return any(getattr(self, n) is not None for n in type(self).model_fields if n not in _CALL_CONDITIONS)


# Conditions answered by the call itself; every other condition reads ``call.facts``.
_CALL_CONDITIONS = frozenset({"tools", "risk_in", "actor_kind"})


class ApprovalSpec(_Config):
    """Who must approve: each approver holds every role in ``roles``; ``approvers`` distinct people."""

    roles: Names
    approvers: Annotated[int, Field(ge=1, le=10)] = 1
    requester_may_approve: bool = False


class Rule(_Config):
    id: RuleId
    when: When
    effect: Effect
    reason: Reason
    roles: Names | None = None
    approvers: Annotated[int, Field(ge=1, le=10)] | None = None
    requester_may_approve: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.when.is_empty():
            raise ValueError(f"rule {self.id!r}: 'when' is empty; write `tools: ['*']` to mean every call")
        approval_keys = [k for k in ("roles", "approvers", "requester_may_approve") if getattr(self, k) is not None]
        if self.effect is Effect.REQUIRE_APPROVAL:
            if self.roles is None:
                raise ValueError(f"rule {self.id!r}: require_approval needs 'roles'")
        elif approval_keys:
            raise ValueError(f"rule {self.id!r}: {', '.join(approval_keys)} only apply to require_approval rules")
        return self

    def approval(self) -> ApprovalSpec:
        return ApprovalSpec(
            roles=self.roles or (),
            approvers=self.approvers or 1,
            requester_may_approve=bool(self.requester_may_approve),
        )


class ComplianceRule(Rule):
    """A rule that always denies; listed apart so that a reader sees the hard limits first."""

    effect: Literal[Effect.DENY] = Effect.DENY


class Defaults(_Config):
    read: Effect = Effect.ALLOW
    write: Literal[Effect.REQUIRE_APPROVAL, Effect.DENY] = Effect.REQUIRE_APPROVAL
    """What a write gets when no rule matched. ``allow`` is refused: the policy fails closed."""
    approval: ApprovalSpec = ApprovalSpec(roles=("approver",))
    """Who approves a call that needs approval by default."""


class Budgets(_Config):
    """Per-run limits; a call that would take the run past one is denied."""

    max_tool_calls: Annotated[int, Field(ge=0)] | None = None
    max_orders_touched: Annotated[int, Field(ge=0)] | None = None
    max_spend: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None = None


class Policy(_Config):
    version: Annotated[str, BeforeValidator(_to_str), Field(min_length=1, max_length=64)]
    description: str | None = None
    defaults: Defaults = Defaults()
    budgets: Budgets = Budgets()
    tool_risk: dict[Name, RiskClass] = Field(default_factory=dict)
    """Risk floors by tool glob: a call is judged at least at this risk, whatever the tool layer says."""
    compliance: tuple[ComplianceRule, ...] = ()
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        seen: set[str] = set()
        for rule in (*self.compliance, *self.rules):
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice; ids name rules in every decision")
            seen.add(rule.id)
        return self


def policy_version(policy: Policy) -> str:
    """Declared version + a short hash of the policy's canonical content.

    The hash is over the validated policy (keys sorted, defaults filled in), so reformatting or
    comments do not change it, while any change of meaning does, even if nobody bumped ``version``.
    """
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return f"{policy.version}+{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:12]}"


# --- loading ------------------------------------------------------------------------------------


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file; ``None`` loads the built-in ``default_policy.yaml``."""
    if path is None:
        text = importlib.resources.files("guardrails").joinpath(DEFAULT_POLICY_RESOURCE).read_text("utf-8")
        return parse_policy(text, source=f"guardrails/{DEFAULT_POLICY_RESOURCE}")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read policy file {path}: {exc}", path=str(path)) from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML text; raise :class:`ConfigurationError` naming the key and line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigurationError(f"{source}: the policy file is empty", source=source)
        _reject_duplicate_keys(node, source)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigurationError(f"{source}: line {line}: not valid YAML: {exc}", source=source, line=line) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: a policy is a mapping with 'version' and 'rules'", source=source)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = _line_of(node, loc)
            where = _dotted(loc) or "(top level)"
            msg = f"unknown key {loc[-1]!r}" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append({"line": line, "key": where, "message": msg})
        first = "; ".join(f"line {p['line']}: {p['key']}: {p['message']}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ConfigurationError(f"{source}: invalid policy: {first}{more}", source=source, errors=problems) from exc


def _reject_duplicate_keys(node: yaml.Node, source: str) -> None:
    # PyYAML keeps the last of two equal keys silently; in a policy that is an ambiguity.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    line = key.start_mark.line + 1
                    raise ConfigurationError(
                        f"{source}: line {line}: duplicate key {key.value!r}", source=source, line=line
                    )
                seen.add(key.value)
            _reject_duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source)


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest YAML node on a pydantic error path that exists in the file."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                continue  # a union tag or a name the file does not spell: stay where we are
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- decisions ----------------------------------------------------------------------------------


class Decision(BaseModel):
    """What the policy says about one call, and why. Recorded with the call in the audit trail."""

    model_config = ConfigDict(frozen=True)

    effect: Effect
    reasons: list[str]
    """One per matched rule (same order as ``matched_rules``), most severe first."""
    matched_rules: list[str]
    """Rule ids; ``budget:<name>``, ``default:read|write`` and ``malformed_call`` are built in."""
    required_roles: list[str] = Field(default_factory=list)
    """Every approver must hold all of these (sorted); empty unless approval is required."""
    approvers_required: int = 0
    requester_may_approve: bool = False
    policy_version: str
    tool: str | None = None
    args_digest: str | None = None
    risk: RiskClass | None = None
    """The risk the call was judged at (the tool's, raised by ``tool_risk`` floors)."""

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


class _Match:
    __slots__ = ("approval", "effect", "reason", "rule_id")

    def __init__(self, rule_id: str, effect: Effect, reason: str, approval: ApprovalSpec | None = None) -> None:
        self.rule_id = rule_id
        self.effect = effect
        self.reason = reason
        self.approval = approval


class PolicyEngine:
    """Decides calls against one loaded policy. Stateless between calls; safe to share."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.version = policy_version(policy)

    @classmethod
    def from_path(cls, path: str | Path | None = None) -> PolicyEngine:
        return cls(load_policy(path))

    def decide(self, call: ProposedCall | Mapping[str, Any] | object) -> Decision:
        """Judge one proposed call. Never raises: whatever cannot be judged is denied."""
        try:
            return self._decide(call)
        except Exception as exc:  # fail closed: a bug or an odd input must not become "allow"
            return self._deny(
                [f"policy evaluation failed ({type(exc).__name__}: {exc}); denied to fail closed"],
                ["malformed_call"],
            )

    # -- internals --------------------------------------------------------------------------------

    def _deny(
        self, reasons: list[str], rules: list[str], call: ProposedCall | None = None, risk: RiskClass | None = None
    ) -> Decision:
        return Decision(
            effect=Effect.DENY,
            reasons=reasons,
            matched_rules=rules,
            policy_version=self.version,
            tool=call.tool if call else None,
            args_digest=call.args_digest if call else None,
            risk=risk or (call.risk if call else None),
        )

    def _decide(self, raw: object) -> Decision:
        if not isinstance(raw, ProposedCall | Mapping):
            reason = f"malformed call: expected a ProposedCall, got {type(raw).__name__}"
            return self._deny([reason], ["malformed_call"])
        try:
            # Re-validates ProposedCall instances too (revalidate_instances), so model_construct
            # cannot smuggle a negative count past the engine.
            call = ProposedCall.model_validate(raw if isinstance(raw, ProposedCall) else dict(raw))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            reasons = [f"malformed call: {_dotted(tuple(e['loc'])) or 'call'}: {e['msg']}" for e in errors[:10]]
            return self._deny(reasons, ["malformed_call"])

        risk = self._effective_risk(call)
        problems = _ambiguities(call, risk)
        if problems:
            return self._deny([f"ambiguous call: {p}" for p in problems], ["malformed_call"], call, risk)

        matches = self._rule_matches(call, risk) or [self._default_match(risk)]

        effect = max((m.effect for m in matches), key=SEVERITY.__getitem__)
        # Most severe first, evaluation order within a severity: the reader sees why it stopped.
        ordered = sorted(matches, key=lambda m: -SEVERITY[m.effect])
        roles: set[str] = set()
        approvers = 0
        requester_may = True
        if effect is Effect.REQUIRE_APPROVAL:
            for m in ordered:
                if m.approval is not None:
                    roles.update(m.approval.roles)
                    approvers = max(approvers, m.approval.approvers)
                    requester_may = requester_may and m.approval.requester_may_approve
        return Decision(
            effect=effect,
            reasons=[m.reason for m in ordered],
            matched_rules=[m.rule_id for m in ordered],
            required_roles=sorted(roles),
            approvers_required=approvers,
            requester_may_approve=requester_may if effect is Effect.REQUIRE_APPROVAL else False,
            policy_version=self.version,
            tool=call.tool,
            args_digest=call.args_digest,
            risk=risk,
        )

    def _rule_matches(self, call: ProposedCall, risk: RiskClass) -> list[_Match]:
        """Compliance rules (always deny), budgets, then the policy's rules, in that order."""
        matches = [
            _Match(rule.id, Effect.DENY, rule.reason)
            for rule in self.policy.compliance
            if _matches(rule.when, call, risk)
        ]
        matches += self._budget_matches(call)
        for rule in self.policy.rules:
            if _matches(rule.when, call, risk):
                approval = rule.approval() if rule.effect is Effect.REQUIRE_APPROVAL else None
                matches.append(_Match(rule.id, rule.effect, rule.reason, approval))
        return matches

    def _default_match(self, risk: RiskClass) -> _Match:
        """No rule matched: the default for reads; writes fail closed unless the default says otherwise."""
        if risk is RiskClass.READ:
            effect, reason = self.policy.defaults.read, "no rule matched; the default for read tools applies"
            match = _Match("default:read", effect, reason)
        else:
            effect = self.policy.defaults.write
            reason = "no rule matched this write; writes need a rule that allows them (fail closed)"
            match = _Match("default:write", effect, reason)
        if effect is Effect.REQUIRE_APPROVAL:
            match.approval = self.policy.defaults.approval
        return match

    def _effective_risk(self, call: ProposedCall) -> RiskClass:
        risk = call.risk
        for pattern, floor in self.policy.tool_risk.items():
            if fnmatch.fnmatchcase(call.tool, pattern) and RISK_RANK[floor] > RISK_RANK[risk]:
                risk = floor
        return risk

    def _budget_matches(self, call: ProposedCall) -> list[_Match]:
        # Totals are the run's *before* this call; the call counts against the budget it would use.
        b, run = self.policy.budgets, call.run
        orders = call.facts.order_count if call.facts else 0
        spend = max(call.facts.cost_delta, Decimal(0)) if call.facts else Decimal(0)
        out: list[_Match] = []
        if b.max_tool_calls is not None and run.tool_calls + 1 > b.max_tool_calls:
            out.append(
                _Match(
                    "budget:max_tool_calls",
                    Effect.DENY,
                    f"run budget exceeded: this would be tool call {run.tool_calls + 1}, "
                    f"the limit is {b.max_tool_calls}",
                )
            )
        if b.max_orders_touched is not None and run.orders_touched + orders > b.max_orders_touched:
            out.append(
                _Match(
                    "budget:max_orders_touched",
                    Effect.DENY,
                    f"run budget exceeded: {run.orders_touched} orders touched so far + {orders} "
                    f"> limit {b.max_orders_touched}",
                )
            )
        if b.max_spend is not None and run.spend + spend > b.max_spend:
            out.append(
                _Match(
                    "budget:max_spend",
                    Effect.DENY,
                    f"run budget exceeded: spend ${run.spend} so far + ${spend} > limit ${b.max_spend}",
                )
            )
        return out


def _ambiguities(call: ProposedCall, risk: RiskClass) -> list[str]:
    """Facts that contradict each other, or a write that does not say what it touches."""
    f = call.facts
    if f is None:
        if risk is not RiskClass.READ:
            return [f"write tool {call.tool!r} proposed without facts; the tool layer must resolve them"]
        return []
    out = []
    if f.order_count == 0 and (f.order_value != 0 or f.max_tier is not None):
        out.append("no orders touched, yet an order value or customer tier is given")
    if f.order_count > 0 and f.max_tier is None:
        out.append(f"{f.order_count} orders touched but no customer tier given")
    if (f.target_node_id is None) != (f.target_node_status is None):
        out.append("target node id and target node status must be given together")
    return out


def _matches(when: When, call: ProposedCall, risk: RiskClass) -> bool:
    """True when every condition given in ``when`` holds for ``call``."""
    if when.tools is not None and not any(fnmatch.fnmatchcase(call.tool, p) for p in when.tools):
        return False
    if when.risk_in is not None and risk not in when.risk_in:
        return False
    if when.actor_kind is not None and call.actor.kind != when.actor_kind:
        return False
    f = call.facts
    if f is None:
        return not when.reads_facts()
    return all(test(f, cond) for name, test in _FACT_TESTS if (cond := getattr(when, name)) is not None)


def _carriers(f: CallFacts) -> set[str]:
    return {c.carrier_id for c in f.carriers}


def _services(f: CallFacts) -> set[str]:
    return {c.service_id for c in f.carriers}


_FACT_TESTS: tuple[tuple[str, Callable[[CallFacts, Any], bool]], ...] = (
    ("orders_gt", lambda f, v: f.order_count > v),
    ("orders_lte", lambda f, v: f.order_count <= v),
    ("value_gt", lambda f, v: f.order_value > v),
    ("value_lte", lambda f, v: f.order_value <= v),
    ("cost_delta_gt", lambda f, v: f.cost_delta > v),
    ("cost_delta_lte", lambda f, v: f.cost_delta <= v),
    ("tier_in", lambda f, v: f.max_tier is not None and f.max_tier in v),
    ("carrier_in", lambda f, v: bool(_carriers(f) & set(v))),
    ("carrier_not_in", lambda f, v: bool(_carriers(f) - set(v))),
    ("service_in", lambda f, v: bool(_services(f) & set(v))),
    ("service_not_in", lambda f, v: bool(_services(f) - set(v))),
    ("air", lambda f, v: f.any_air == v),
    ("hazmat", lambda f, v: f.hazmat == v),
    ("hazmat_by_air", lambda f, v: f.hazmat_by_air == v),
    ("cold_chain", lambda f, v: f.cold_chain == v),
    ("target_node_status_in", lambda f, v: f.target_node_status is not None and f.target_node_status in v),
    ("states_in", lambda f, v: bool(f.ship_to_states & set(v))),
    ("states_not_in", lambda f, v: bool(f.ship_to_states - set(v))),
)
"""Each fact condition of a :class:`When` (by field name) and the test it puts to the call's facts;
a condition left out (None) does not constrain."""


# --- who may approve ----------------------------------------------------------------------------


def can_approve(
    decision: Decision,
    approver_id: str,
    approver_roles: Iterable[str],
    requester_id: str | Collection[str] | None,
) -> tuple[bool, str]:
    """May this person approve the call behind ``decision``? Returns ``(ok, reason)``.

    ``requester_id`` is whoever asked for the call: for an agent run pass both the run id and the
    person who started it, so nobody approves their own request by way of an agent.
    """
    if decision.effect is not Effect.REQUIRE_APPROVAL:
        return False, f"the decision is {decision.effect.value}; only require_approval decisions can be approved"
    if not isinstance(approver_id, str) or not approver_id.strip():
        return False, "the approver has no id"
    requesters = {requester_id} if isinstance(requester_id, str) else set(requester_id or ())
    if approver_id in requesters and not decision.requester_may_approve:
        return False, f"{approver_id} requested this call and may not approve it"
    held = set(approver_roles)
    missing = sorted(set(decision.required_roles) - held)
    if missing:
        return False, f"{approver_id} lacks the role(s) {', '.join(missing)} needed to approve"
    if not decision.required_roles:
        # A decision that asks for approval but names no role is not a blank cheque.
        return False, "the decision names no approver role; nobody can approve it"
    return True, f"{approver_id} holds {', '.join(decision.required_roles)}"


def approvals_complete(
    decision: Decision,
    approvals: Iterable[tuple[str, Iterable[str]]],
    requester_id: str | Collection[str] | None,
) -> tuple[bool, str]:
    """Are there enough distinct eligible approvers? ``approvals`` is ``(approver_id, roles)`` pairs."""
    eligible: set[str] = set()
    refused: list[str] = []
    for approver_id, roles in approvals:
        ok, why = can_approve(decision, approver_id, roles, requester_id)
        if ok:
            eligible.add(approver_id)
        else:
            refused.append(why)
    need = decision.approvers_required
    if decision.effect is Effect.REQUIRE_APPROVAL and need >= 1 and len(eligible) >= need:
        return True, f"{len(eligible)} of {need} required approvals from {', '.join(sorted(eligible))}"
    detail = f"; not counted: {'; '.join(refused)}" if refused else ""
    return False, f"{len(eligible)} of {need} required approvals{detail}"
