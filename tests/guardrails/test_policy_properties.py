"""Property-based tests: arbitrary calls against arbitrary policies keep the safety properties.

The rule matcher is checked against a small reference written here in another style (a table of
predicates), so the properties do not just restate the engine's own code.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain import CustomerTier, NodeStatus
from guardrails import Actor, CallFacts, CarrierUse, Effect, PolicyEngine, ProposedCall, RiskClass, RunTotals
from guardrails.policy import (
    RISK_RANK,
    ApprovalSpec,
    Budgets,
    ComplianceRule,
    Defaults,
    Policy,
    Rule,
    When,
    parse_policy,
    policy_version,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOOLS = ["get_orders", "reroute_orders", "cancel_orders", "change_carrier", "hold_orders"]
GLOBS = ["*", "get_*", "reroute_*", "cancel_*", "*carrier*", "hold_orders", "nothing_*"]
CARRIERS = ["ups", "fedex", "cheapo"]
SERVICES = ["ground", "2day", "overnight"]
STATES = ["CA", "NY", "AK", "TX"]
ROLES = ["approver", "finance", "lead"]

money = st.decimals(min_value=-1000, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
pos_money = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
small_int = st.integers(min_value=0, max_value=300)
SPENDS = [Decimal(0), Decimal("99.99"), Decimal(5000)]


def _sub(values: list[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True).map(tuple)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly absent: an optional part of a rule or budget."""
    return st.one_of(st.none(), st.none(), strategy)


carrier_use = st.builds(
    CarrierUse, carrier_id=st.sampled_from(CARRIERS), service_id=st.sampled_from(SERVICES), air=st.booleans()
)


@st.composite
def facts(draw: st.DrawFn) -> CallFacts:
    n = draw(small_int)
    node = draw(opt(st.sampled_from(["DC-1", "DC-2"])))
    return CallFacts(
        order_count=n,
        order_value=draw(pos_money) if n else Decimal(0),
        cost_delta=draw(money),
        max_tier=draw(st.sampled_from(list(CustomerTier))) if n else None,
        carriers=tuple(draw(st.lists(carrier_use, max_size=3))),
        target_node_id=node,
        target_node_status=draw(st.sampled_from(list(NodeStatus))) if node else None,
        hazmat=draw(st.booleans()),
        hazmat_by_air=draw(st.booleans()),
        cold_chain=draw(st.booleans()),
        ship_to_states=frozenset(draw(st.lists(st.sampled_from(STATES), max_size=3))),
    )


@st.composite
def calls(draw: st.DrawFn) -> ProposedCall:
    risk = draw(st.sampled_from(list(RiskClass)))
    return ProposedCall(
        tool=draw(st.sampled_from(TOOLS)),
        risk=risk,
        actor=Actor(kind=draw(st.sampled_from(["agent", "user"])), id="r1", roles=frozenset()),
        args_digest="a" * 64,
        facts=draw(opt(facts())) if risk is RiskClass.READ else draw(facts()),
        run=RunTotals(
            tool_calls=draw(st.integers(0, 50)), orders_touched=draw(small_int), spend=draw(st.sampled_from(SPENDS))
        ),
    )


CONDITIONS: dict[str, st.SearchStrategy[Any]] = {
    "tools": _sub(GLOBS),
    "risk_in": _sub(list(RiskClass)),
    "actor_kind": st.sampled_from(["agent", "user"]),
    "orders_gt": small_int,
    "orders_lte": small_int,
    "value_gt": pos_money,
    "value_lte": pos_money,
    "cost_delta_gt": money,
    "cost_delta_lte": money,
    "tier_in": _sub(list(CustomerTier)),
    "carrier_in": _sub(CARRIERS),
    "carrier_not_in": _sub(CARRIERS),
    "service_in": _sub(SERVICES),
    "service_not_in": _sub(SERVICES),
    "air": st.booleans(),
    "hazmat": st.booleans(),
    "hazmat_by_air": st.booleans(),
    "cold_chain": st.booleans(),
    "target_node_status_in": _sub(list(NodeStatus)),
    "states_in": _sub(STATES),
    "states_not_in": _sub(STATES),
}


@st.composite
def whens(draw: st.DrawFn) -> When:
    # One to three conditions: rules with many conditions almost never match a random call, and a
    # rule that never matches tests nothing.
    keys = draw(st.lists(st.sampled_from(sorted(CONDITIONS)), min_size=1, max_size=3, unique=True))
    return When(**{k: draw(CONDITIONS[k]) for k in keys})


@st.composite
def rules(draw: st.DrawFn, rule_id: str) -> Rule:
    effect = draw(st.sampled_from([Effect.ALLOW, Effect.ALLOW, Effect.REQUIRE_APPROVAL, Effect.DENY]))
    if effect is Effect.REQUIRE_APPROVAL:
        return Rule(
            id=rule_id,
            when=draw(whens()),
            effect=effect,
            reason=f"reason {rule_id}",
            roles=draw(_sub(ROLES)),
            approvers=draw(opt(st.integers(1, 4))),
            requester_may_approve=draw(opt(st.booleans())),
        )
    return Rule(id=rule_id, when=draw(whens()), effect=effect, reason=f"reason {rule_id}")


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    n_comp = draw(st.integers(0, 1))
    n_rules = draw(st.integers(0, 6))
    return Policy(
        version=draw(st.sampled_from(["1", "2.0", "x"])),
        defaults=Defaults(
            read=draw(st.sampled_from(list(Effect))),
            write=draw(st.sampled_from([Effect.REQUIRE_APPROVAL, Effect.DENY])),
            approval=ApprovalSpec(roles=draw(_sub(ROLES)), approvers=draw(st.integers(1, 3))),
        ),
        budgets=Budgets(
            max_tool_calls=draw(opt(st.integers(0, 60))),
            max_orders_touched=draw(opt(st.integers(0, 600))),
            max_spend=draw(opt(pos_money)),
        ),
        tool_risk=draw(st.dictionaries(st.sampled_from(GLOBS), st.sampled_from(list(RiskClass)), max_size=2)),
        compliance=tuple(ComplianceRule(id=f"c{i}", when=draw(whens()), reason=f"reason c{i}") for i in range(n_comp)),
        rules=tuple(draw(rules(f"r{i}")) for i in range(n_rules)),
    )


# --- a reference matcher, written independently of the engine's -----------------------------------


def _any_in(have: set[str], wanted: Any) -> bool:
    return any(x in wanted for x in have)


def _any_out(have: set[str], wanted: Any) -> bool:
    return any(x not in wanted for x in have)


FACT_PREDICATES: dict[str, Callable[[CallFacts, Any], bool]] = {
    "orders_gt": lambda f, v: f.order_count > v,
    "orders_lte": lambda f, v: f.order_count <= v,
    "value_gt": lambda f, v: f.order_value > v,
    "value_lte": lambda f, v: f.order_value <= v,
    "cost_delta_gt": lambda f, v: f.cost_delta > v,
    "cost_delta_lte": lambda f, v: f.cost_delta <= v,
    "tier_in": lambda f, v: f.max_tier in v,
    "carrier_in": lambda f, v: _any_in({c.carrier_id for c in f.carriers}, v),
    "carrier_not_in": lambda f, v: _any_out({c.carrier_id for c in f.carriers}, v),
    "service_in": lambda f, v: _any_in({c.service_id for c in f.carriers}, v),
    "service_not_in": lambda f, v: _any_out({c.service_id for c in f.carriers}, v),
    "air": lambda f, v: any(c.air for c in f.carriers) is v,
    "hazmat": lambda f, v: f.hazmat is v,
    "hazmat_by_air": lambda f, v: f.hazmat_by_air is v,
    "cold_chain": lambda f, v: f.cold_chain is v,
    "target_node_status_in": lambda f, v: f.target_node_status in v,
    "states_in": lambda f, v: _any_in(set(f.ship_to_states), v),
    "states_not_in": lambda f, v: _any_out(set(f.ship_to_states), v),
}


def effective_risk(policy: Policy, call: ProposedCall) -> RiskClass:
    import fnmatch

    floors = [r for g, r in policy.tool_risk.items() if fnmatch.fnmatchcase(call.tool, g)]
    return max([call.risk, *floors], key=RISK_RANK.__getitem__)


def ref_matches(when: When, call: ProposedCall, risk: RiskClass) -> bool:
    import fnmatch

    given_ = {k: v for k, v in when.model_dump().items() if v is not None}
    if "tools" in given_ and not any(fnmatch.fnmatchcase(call.tool, g) for g in given_.pop("tools")):
        return False
    if "risk_in" in given_ and risk not in given_.pop("risk_in"):
        return False
    if "actor_kind" in given_ and call.actor.kind != given_.pop("actor_kind"):
        return False
    if call.facts is None:
        return not given_
    facts_ = call.facts
    return all(FACT_PREDICATES[k](facts_, v) for k, v in given_.items())


def budget_exceeded(policy: Policy, call: ProposedCall) -> bool:
    b, run, f = policy.budgets, call.run, call.facts
    orders = f.order_count if f else 0
    spend = max(f.cost_delta, Decimal(0)) if f else Decimal(0)
    return (
        (b.max_tool_calls is not None and run.tool_calls + 1 > b.max_tool_calls)
        or (b.max_orders_touched is not None and run.orders_touched + orders > b.max_orders_touched)
        or (b.max_spend is not None and run.spend + spend > b.max_spend)
    )


# --- the properties ------------------------------------------------------------------------------


@SETTINGS
@given(policy=policies(), call=calls())
def test_safety_properties(policy: Policy, call: ProposedCall) -> None:
    engine = PolicyEngine(policy)
    d = engine.decide(call)
    risk = effective_risk(policy, call)
    assert d.risk is risk
    if call.facts is None and risk is not RiskClass.READ:
        # A tool-risk floor made this "read" a write, and writes must bring their facts.
        assert d.effect is Effect.DENY
        assert d.matched_rules == ["malformed_call"]
        return
    matched = {r.id: r for r in (*policy.compliance, *policy.rules) if ref_matches(r.when, call, risk)}

    # The engine reports exactly the rules the reference says match (plus built-ins).
    assert {m for m in d.matched_rules if m in matched} == set(matched)
    assert all(m in matched or m.startswith(("budget:", "default:")) for m in d.matched_rules)
    assert len(d.reasons) == len(d.matched_rules)

    # A call matching any deny rule (compliance included) is never allowed, nor sent for approval.
    if any(r.effect is Effect.DENY for r in matched.values()):
        assert d.effect is Effect.DENY
    # Budgets exceeded -> deny.
    if budget_exceeded(policy, call):
        assert d.effect is Effect.DENY
        assert any(m.startswith("budget:") for m in d.matched_rules)
    # A write is allowed only if an allow rule matched it and nothing stricter did.
    if d.effect is Effect.ALLOW and risk is not RiskClass.READ:
        assert matched
        assert all(r.effect is Effect.ALLOW for r in matched.values())
        assert not budget_exceeded(policy, call)
    # An approval lists the union of roles and the largest approver count of what matched.
    if d.effect is Effect.REQUIRE_APPROVAL:
        specs = [r.approval() for r in matched.values() if r.effect is Effect.REQUIRE_APPROVAL]
        if not matched:
            specs = [policy.defaults.approval]
        assert d.required_roles == sorted({role for s in specs for role in s.roles})
        assert d.approvers_required == max(s.approvers for s in specs)
        assert d.requester_may_approve == all(s.requester_may_approve for s in specs)
    else:
        assert d.approvers_required == 0
        assert d.required_roles == []
    # Deterministic, and stamped with the policy's version.
    assert PolicyEngine(policy).decide(call) == d
    assert d.policy_version == policy_version(policy)


@SETTINGS
@given(policy=policies())
def test_policy_round_trips_through_yaml_with_the_same_version(policy: Policy) -> None:
    text = yaml.safe_dump(policy.model_dump(mode="json", exclude_none=True), sort_keys=False)
    again = parse_policy(text)
    assert again == policy
    assert policy_version(again) == policy_version(policy)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
CALL_KEYS = ["tool", "risk", "actor", "args_digest", "facts", "run"]


@st.composite
def mangled_calls(draw: st.DrawFn) -> Any:
    """A valid call as a dict with some parts replaced by arbitrary values, or just anything."""
    if draw(st.booleans()):
        return draw(json_values)
    data: dict[str, Any] = draw(calls()).model_dump(mode="python")
    for key in draw(st.lists(st.sampled_from(CALL_KEYS), min_size=1, max_size=3, unique=True)):
        if isinstance(data.get(key), dict) and draw(st.booleans()):
            sub = dict(data[key])
            sub[draw(st.sampled_from([*sub, "extra"]))] = draw(json_values)
            data[key] = sub
        else:
            data[key] = draw(json_values)
    return data


@SETTINGS
@given(policy=policies(), raw=mangled_calls())
def test_decide_never_raises_and_fails_closed(policy: Policy, raw: Any) -> None:
    engine = PolicyEngine(policy)
    d = engine.decide(raw)
    assert d.policy_version == engine.version
    try:
        valid = ProposedCall.model_validate(raw)
    except Exception:
        valid = None
    if valid is None:
        assert d.effect is Effect.DENY
        assert d.matched_rules[0] == "malformed_call"
    else:
        assert d == engine.decide(valid)
