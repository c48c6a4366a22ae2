"""Unit tests of the policy engine: each rule type, the combination logic, loading and versions,
fail-closed handling of malformed calls, and who may approve."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.domain import CustomerTier, NodeStatus
from core.errors import ConfigurationError
from guardrails import (
    Actor,
    CallFacts,
    CarrierUse,
    Decision,
    Effect,
    PolicyEngine,
    ProposedCall,
    RiskClass,
    approvals_complete,
    can_approve,
    digest_arguments,
    load_policy,
    parse_policy,
    policy_version,
)
from guardrails.testing import make_call, make_run

AIR = CarrierUse(carrier_id="BJX", service_id="BJX-OVERNIGHT", air=True)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(load_policy())


def custom(rules_yaml: str, extra: str = "") -> PolicyEngine:
    return PolicyEngine(parse_policy(f"version: t1\n{extra}\nrules:\n{rules_yaml}"))


# --- the default policy -------------------------------------------------------------------------


def test_default_policy_loads_with_hashed_version(engine: PolicyEngine) -> None:
    declared, _, digest = engine.version.partition("+")
    assert declared == "1.0.0"
    assert len(digest) == 12
    assert engine.version == policy_version(load_policy(None))


def test_reads_are_allowed_by_default(engine: PolicyEngine) -> None:
    d = engine.decide(make_call("get_orders", RiskClass.READ, no_facts=True))
    assert d.effect is Effect.ALLOW
    assert d.matched_rules == ["default:read"]
    assert d.policy_version == engine.version
    assert d.tool == "get_orders"


def test_small_low_risk_write_is_allowed(engine: PolicyEngine) -> None:
    d = engine.decide(make_call(order_count=25, order_value=Decimal(10000), cost_delta=Decimal(100)))
    assert d.effect is Effect.ALLOW, d.reasons
    assert d.matched_rules == ["small-low-risk-write"]
    assert d.approvers_required == 0
    assert d.required_roles == []


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"order_count": 26}, "bulk-write"),
        ({"order_value": Decimal("10000.01")}, "high-value-write"),
        ({"cost_delta": Decimal("100.01")}, "cost-increase"),
        ({"max_tier": CustomerTier.PLATINUM}, "platinum-customers"),
    ],
)
def test_thresholds_need_an_approver(engine: PolicyEngine, overrides: dict[str, Any], rule: str) -> None:
    d = engine.decide(make_call(**overrides))
    assert d.effect is Effect.REQUIRE_APPROVAL
    assert d.matched_rules == [rule]
    assert d.required_roles == ["approver"]
    assert d.approvers_required == 1
    assert d.requester_may_approve is False


def test_gold_write_falls_to_the_write_default(engine: PolicyEngine) -> None:
    d = engine.decide(make_call(max_tier=CustomerTier.GOLD))
    assert d.effect is Effect.REQUIRE_APPROVAL
    assert d.matched_rules == ["default:write"]
    assert d.required_roles == ["approver"]


def test_destructive_write_is_never_allowed_by_the_small_write_rule(engine: PolicyEngine) -> None:
    d = engine.decide(make_call("purge_holds", RiskClass.DESTRUCTIVE))
    assert d.effect is Effect.REQUIRE_APPROVAL
    assert d.matched_rules == ["default:write"]


def test_cancel_tools_get_the_destructive_floor_and_two_approvers_over_100(engine: PolicyEngine) -> None:
    small = engine.decide(make_call("cancel_orders", RiskClass.WRITE_LOW))
    assert small.risk is RiskClass.DESTRUCTIVE
    assert small.effect is Effect.REQUIRE_APPROVAL
    assert small.matched_rules == ["cancellation"]
    big = engine.decide(make_call("cancel_orders", RiskClass.WRITE_HIGH, order_count=101, order_value=Decimal(500)))
    assert big.effect is Effect.REQUIRE_APPROVAL
    assert big.matched_rules == ["bulk-write", "cancellation", "bulk-cancellation"]
    assert big.approvers_required == 2
    assert len(big.reasons) == 3


def test_hazmat_by_air_is_denied_even_when_small(engine: PolicyEngine) -> None:
    d = engine.decide(make_call(hazmat=True, hazmat_by_air=True, carriers=(AIR,)))
    assert d.effect is Effect.DENY
    assert d.matched_rules == ["hazmat-never-by-air", "small-low-risk-write"]  # the allow is outvoted
    assert engine.decide(make_call(hazmat=True)).effect is Effect.ALLOW  # by ground
    assert engine.decide(make_call(carriers=(AIR,))).effect is Effect.ALLOW  # air, not hazmat
    # a hazmat order by ground next to another order by air is no violation
    assert engine.decide(make_call(hazmat=True, carriers=(AIR,))).effect is Effect.ALLOW


def test_closed_node_never_receives(engine: PolicyEngine) -> None:
    closed = engine.decide(make_call(target_node_id="DC-9", target_node_status=NodeStatus.CLOSED))
    assert closed.effect is Effect.DENY
    assert closed.matched_rules[0] == "closed-node-never-receives"
    opened = engine.decide(make_call(target_node_id="DC-9", target_node_status=NodeStatus.OPEN))
    assert opened.effect is Effect.ALLOW


def test_carrier_allow_list(engine: PolicyEngine) -> None:
    rogue = CarrierUse(carrier_id="cheapo", service_id="cheapo-ground", air=False)
    d = engine.decide(make_call(carriers=(CarrierUse(carrier_id="RDG", service_id="x", air=False), rogue)))
    assert d.effect is Effect.DENY
    assert d.matched_rules[0] == "carrier-allow-list"


def test_deny_beats_approval_and_every_matched_rule_gives_its_reason(engine: PolicyEngine) -> None:
    d = engine.decide(
        make_call(
            order_count=500,
            order_value=Decimal(99999),
            max_tier=CustomerTier.PLATINUM,
            hazmat=True,
            hazmat_by_air=True,
            carriers=(AIR,),
        )
    )
    assert d.effect is Effect.DENY
    assert d.matched_rules == ["hazmat-never-by-air", "bulk-write", "high-value-write", "platinum-customers"]
    assert len(d.reasons) == len(d.matched_rules)
    assert "air" in d.reasons[0]
    assert d.required_roles == []
    assert d.approvers_required == 0


@pytest.mark.parametrize(
    ("run", "rule"),
    [
        (make_run(tool_calls=200), "budget:max_tool_calls"),
        (make_run(orders_touched=19_990), "budget:max_orders_touched"),
        (make_run(spend=Decimal("49950")), "budget:max_spend"),
    ],
)
def test_budgets_deny_when_the_call_would_exceed_them(engine: PolicyEngine, run: Any, rule: str) -> None:
    d = engine.decide(make_call(order_count=11, order_value=Decimal(500), cost_delta=Decimal(51), run=run))
    assert d.effect is Effect.DENY
    assert rule in d.matched_rules


def test_budgets_allow_up_to_the_limit(engine: PolicyEngine) -> None:
    run = make_run(tool_calls=199, orders_touched=19_989, spend=Decimal("49949"))
    d = engine.decide(make_call(order_count=11, order_value=Decimal(500), cost_delta=Decimal(51), run=run))
    assert d.effect is Effect.ALLOW, d.reasons


def test_tool_call_budget_counts_reads(engine: PolicyEngine) -> None:
    d = engine.decide(make_call("get_orders", RiskClass.READ, no_facts=True, run=make_run(tool_calls=200)))
    assert d.effect is Effect.DENY


# --- combination on a custom policy --------------------------------------------------------------


def test_approval_rules_merge_union_of_roles_and_max_approvers() -> None:
    eng = custom(
        """
  - {id: a, when: {tools: ["*"]}, effect: require_approval, roles: [approver], approvers: 1,
     requester_may_approve: true, reason: A}
  - {id: b, when: {orders_gt: 5}, effect: require_approval, roles: [finance, approver], approvers: 3, reason: B}
  - {id: c, when: {tools: ["*"]}, effect: allow, reason: C}
"""
    )
    both = eng.decide(make_call(order_count=6))
    assert both.effect is Effect.REQUIRE_APPROVAL
    assert both.matched_rules == ["a", "b", "c"]
    assert both.reasons == ["A", "B", "C"]
    assert both.required_roles == ["approver", "finance"]
    assert both.approvers_required == 3
    assert both.requester_may_approve is False  # any rule saying no wins
    only_a = eng.decide(make_call(order_count=1))
    assert only_a.requester_may_approve is True
    assert only_a.approvers_required == 1


def test_write_default_can_be_deny_but_never_allow() -> None:
    eng = custom("  []", extra="defaults: {write: deny}")
    assert eng.decide(make_call()).effect is Effect.DENY
    with pytest.raises(ConfigurationError, match=r"defaults\.write"):
        parse_policy("version: 1\ndefaults: {write: allow}\n")


@pytest.mark.parametrize(
    ("when", "overrides", "matches"),
    [
        ({"tools": "reroute_*"}, {}, True),
        ({"tools": ["cancel_*", "hold_*"]}, {}, False),
        ({"risk_in": ["write_high"]}, {}, False),
        ({"actor_kind": "agent"}, {}, True),
        ({"actor_kind": "user"}, {}, False),
        ({"orders_gt": 1}, {"order_count": 2}, True),
        ({"orders_gt": 2}, {"order_count": 2}, False),
        ({"orders_lte": 2}, {"order_count": 2}, True),
        ({"value_gt": 100}, {}, False),
        ({"value_lte": 100}, {}, True),
        ({"cost_delta_gt": -5}, {"cost_delta": Decimal(-4)}, True),
        ({"cost_delta_lte": -5}, {"cost_delta": Decimal(-4)}, False),
        ({"tier_in": ["gold", "platinum"]}, {"max_tier": CustomerTier.GOLD}, True),
        ({"tier_in": ["gold"]}, {}, False),
        ({"carrier_in": ["RDG"]}, {}, True),
        ({"carrier_not_in": ["RDG"]}, {}, False),
        ({"service_in": ["RDG-GROUND"]}, {}, True),
        ({"service_not_in": ["RDG-GROUND"]}, {}, False),
        ({"air": False}, {}, True),
        ({"air": True}, {"carriers": (AIR,)}, True),
        ({"hazmat": True}, {}, False),
        ({"cold_chain": True}, {"cold_chain": True}, True),
        ({"target_node_status_in": ["congested"]}, {"target_node_id": "N", "target_node_status": "congested"}, True),
        ({"target_node_status_in": ["closed"]}, {}, False),
        ({"states_in": ["ak", "HI"]}, {"ship_to_states": frozenset({"hi"})}, True),
        ({"states_not_in": ["CA"]}, {}, False),
        ({"tools": "reroute_*", "orders_gt": 0, "hazmat": True}, {}, False),  # all conditions must hold
    ],
)
def test_each_condition(when: dict[str, Any], overrides: dict[str, Any], matches: bool) -> None:
    import json

    eng = custom(f"  - {{id: r, when: {json.dumps(when)}, effect: deny, reason: R}}")
    d = eng.decide(make_call(**overrides))
    assert (d.matched_rules == ["r"]) is matches
    assert (d.effect is Effect.DENY) is matches


def test_fact_conditions_do_not_match_reads_without_facts() -> None:
    eng = custom("  - {id: r, when: {hazmat: false}, effect: deny, reason: R}")
    assert eng.decide(make_call("get_orders", RiskClass.READ, no_facts=True)).effect is Effect.ALLOW
    eng = custom("  - {id: r, when: {tools: get_*}, effect: deny, reason: R}")
    assert eng.decide(make_call("get_orders", RiskClass.READ, no_facts=True)).effect is Effect.DENY


# --- fail closed ---------------------------------------------------------------------------------


def _call_dict(**changes: Any) -> dict[str, Any]:
    data = make_call().model_dump(mode="json")
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (make_call(no_facts=True), "without facts"),
        (make_call("cancel_orders", RiskClass.READ, no_facts=True), "without facts"),  # floor makes it a write
        (_call_dict(risk="maybe_write"), "risk"),
        (_call_dict(run={"tool_calls": -1, "orders_touched": 0, "spend": "0"}), "run.tool_calls"),
        (_call_dict(facts=None, risk="write_high"), "without facts"),
        (_call_dict(facts={**_call_dict()["facts"], "order_count": -3}), "facts.order_count"),
        (_call_dict(facts={**_call_dict()["facts"], "cost_delta": "NaN"}), "facts.cost_delta"),
        (_call_dict(facts={**_call_dict()["facts"], "hazmat": None}), "facts.hazmat"),
        (_call_dict(surprise=1), "surprise"),
        (make_call(order_count=0), "no orders touched"),
        (make_call(max_tier=None), "no customer tier"),
        (make_call(target_node_id="DC-1"), "together"),
        ("reroute everything", "expected a ProposedCall"),
        (None, "expected a ProposedCall"),
    ],
)
def test_malformed_or_ambiguous_calls_are_denied(engine: PolicyEngine, raw: Any, needle: str) -> None:
    d = engine.decide(raw)
    assert d.effect is Effect.DENY
    assert d.matched_rules[0] == "malformed_call"
    assert any(needle in r for r in d.reasons), d.reasons


def test_model_construct_cannot_smuggle_bad_facts(engine: PolicyEngine) -> None:
    good = make_call()
    assert good.facts is not None
    bad_facts = CallFacts.model_construct(**{**dict(good.facts), "order_count": -5})
    bad = ProposedCall.model_construct(**{**dict(good), "facts": bad_facts})
    assert engine.decide(bad).effect is Effect.DENY


def test_a_mapping_call_is_judged_like_the_model(engine: PolicyEngine) -> None:
    assert engine.decide(_call_dict()) == engine.decide(make_call())


# --- loading the policy file -----------------------------------------------------------------------


def test_unknown_key_names_key_and_line() -> None:
    text = (
        "version: 1\nrules:\n  - id: a\n    when:\n      tools: ['*']\n      orderz_gt: 5\n"
        "    effect: deny\n    reason: x\n"
    )
    with pytest.raises(ConfigurationError) as err:
        parse_policy(text, source="p.yaml")
    assert "line 6" in err.value.message
    assert "rules[0].when.orderz_gt" in err.value.message
    assert "unknown key 'orderz_gt'" in err.value.message
    assert err.value.details["errors"][0]["line"] == 6


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version: 1\nbudgetz: {}\n", "unknown key 'budgetz'"),
        ("rules: []\n", "version"),
        ("version: 1\nversion: 2\n", "line 2: duplicate key 'version'"),
        ("version: 1\nrules: [{id: a, when: {}, effect: deny, reason: x}]\n", "'when' is empty"),
        ("version: 1\nrules: [{id: a, when: {tools: x}, effect: allow, reason: x, roles: [r]}]\n", "only apply"),
        ("version: 1\nrules: [{id: a, when: {tools: x}, effect: require_approval, reason: x}]\n", "needs 'roles'"),
        ("version: 1\nrules: [{id: a, when: {tools: x}, effect: maybe, reason: x}]\n", "rules[0].effect"),
        (
            "version: 1\nrules:\n - {id: a, when: {tools: x}, effect: deny, reason: x}\n"
            " - {id: a, when: {tools: y}, effect: deny, reason: x}\n",
            "used twice",
        ),
        ("version: 1\ncompliance: [{id: a, when: {hazmat: true}, effect: allow, reason: x}]\n", "compliance[0].effect"),
        ("version: 1\nrules: [{id: a, when: {tier_in: [diamond]}, effect: deny, reason: x}]\n", "tier_in"),
        ("version: 1\nrules: [\n", "not valid YAML"),
        ("- just\n- a list\n", "is a mapping"),
        ("", "empty"),
    ],
)
def test_invalid_policies_are_configuration_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_policy(text)
    assert needle in err.value.message


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_version_changes_on_any_edit_even_without_bump(tmp_path: Path) -> None:
    default_text = (Path(__file__).parents[2] / "guardrails" / "default_policy.yaml").read_text()
    base = load_policy().model_dump(mode="json")
    path = tmp_path / "p.yaml"
    path.write_text(default_text.replace("orders_lte: 25", "orders_lte: 26"))
    edited = load_policy(path)
    assert edited.version == "1.0.0"
    assert policy_version(edited) != policy_version(load_policy())
    assert edited.model_dump(mode="json") != base
    # A comment or layout change does not change the meaning, nor the version.
    path.write_text("# a new comment\n" + default_text.replace('version: "1.0.0"', "version:   '1.0.0'"))
    assert policy_version(load_policy(path)) == policy_version(load_policy())
    # Bumping the declared version shows in the label.
    path.write_text(default_text.replace('version: "1.0.0"', 'version: "1.0.1"'))
    assert policy_version(load_policy(path)).startswith("1.0.1+")


def test_each_decision_records_the_policy_version() -> None:
    one = custom("  - {id: a, when: {tools: '*'}, effect: allow, reason: A}")
    two = custom("  - {id: a, when: {tools: '*'}, effect: allow, reason: B}")
    assert one.decide(make_call()).policy_version != two.decide(make_call()).policy_version


# --- who may approve -----------------------------------------------------------------------------


@pytest.fixture
def needs_two(engine: PolicyEngine) -> Decision:
    return engine.decide(make_call("cancel_orders", RiskClass.DESTRUCTIVE, order_count=150, order_value=Decimal(900)))


def test_requester_cannot_approve_own_call(needs_two: Decision) -> None:
    ok, why = can_approve(needs_two, "alice", {"approver"}, requester_id="alice")
    assert not ok
    assert "requested" in why
    ok, _ = can_approve(needs_two, "alice", {"approver"}, requester_id={"run-1", "alice"})
    assert not ok
    ok, why = can_approve(needs_two, "bob", {"approver", "viewer"}, requester_id={"run-1", "alice"})
    assert ok, why


def test_approver_needs_every_required_role(needs_two: Decision) -> None:
    ok, why = can_approve(needs_two, "bob", {"viewer"}, requester_id="alice")
    assert not ok
    assert "approver" in why
    ok, _ = can_approve(needs_two, "", {"approver"}, requester_id="alice")
    assert not ok


def test_only_approval_decisions_can_be_approved(engine: PolicyEngine) -> None:
    allowed = engine.decide(make_call())
    ok, why = can_approve(allowed, "bob", {"approver"}, requester_id="alice")
    assert not ok
    assert "allow" in why


def test_requester_may_approve_when_every_rule_says_so() -> None:
    eng = custom(
        "  - {id: a, when: {tools: '*'}, effect: require_approval, roles: [lead],"
        " requester_may_approve: true, reason: A}"
    )
    d = eng.decide(make_call())
    assert can_approve(d, "alice", ["lead"], requester_id="alice")[0]


def test_approvals_complete_counts_distinct_eligible_people(needs_two: Decision) -> None:
    assert needs_two.approvers_required == 2
    ok, why = approvals_complete(
        needs_two, [("bob", {"approver"}), ("bob", {"approver"}), ("alice", {"approver"})], requester_id="alice"
    )
    assert not ok
    assert "1 of 2" in why
    ok, _ = approvals_complete(needs_two, [("bob", {"approver"}), ("carol", {"approver"})], requester_id="alice")
    assert ok


def test_digest_is_canonical() -> None:
    assert digest_arguments({"a": 1, "b": [1, 2]}) == digest_arguments({"b": [1, 2], "a": 1})
    assert digest_arguments({"a": 1}) != digest_arguments({"a": 2})


def test_actor_roles_and_kind_are_validated(engine: PolicyEngine) -> None:
    user = Actor(kind="user", id="alice", roles=frozenset({"ops"}))
    assert engine.decide(make_call(actor=user)).effect is Effect.ALLOW
    d = engine.decide(_call_dict(actor={"kind": "robot", "id": "x"}))
    assert d.effect is Effect.DENY


def test_policy_md_documents_every_condition() -> None:
    from guardrails.policy import When

    doc = (Path(__file__).parents[2] / "guardrails" / "POLICY.md").read_text()
    missing = [name for name in When.model_fields if f"`{name}`" not in doc]
    assert missing == []
