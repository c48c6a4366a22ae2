"""Order risk: reasons from the customer's own past, and the injected risky orders of a history held."""

from __future__ import annotations

from core.history import RiskCase, generate_history
from core.risk import OrderFacts, RiskReason, RiskScorer


def _scorer_with_history() -> RiskScorer:
    sc = RiskScorer()
    sc.know("C1", ship_tos={"A1", "A2"}, states={"NJ", "NY"}, domains={"c1.example"})
    for i in range(40):
        sc.observe(OrderFacts("C1", "A1" if i % 2 else "A2", "NJ", "c1.example", 1000.0 + 10 * (i % 7), 24.0 * i + 9))
    return sc


def _order(**kw: object) -> OrderFacts:
    base: dict[str, object] = {
        "customer": "C1", "ship_to_key": "A1", "ship_to_state": "NJ", "email_domain": "c1.example",
        "value": 1020.0, "at_hours": 24.0 * 50 + 10,
    }  # fmt: skip
    base.update(kw)
    return OrderFacts(**base)  # type: ignore[arg-type]


def test_an_ordinary_order_passes_without_reasons() -> None:
    s = _scorer_with_history().score(_order())
    assert s.reasons == ()
    assert not s.hold


def test_a_new_site_in_the_accounts_states_is_noted_not_held() -> None:
    s = _scorer_with_history().score(_order(ship_to_key="A9"))
    assert [r for r, _ in s.reasons] == [RiskReason.NEW_SHIP_TO]
    assert not s.hold


def test_new_site_elsewhere_with_new_domain_and_big_value_is_held_with_every_reason() -> None:
    s = _scorer_with_history().score(_order(ship_to_key="X", ship_to_state="NV", email_domain="mail.example",
                                            value=30_000.0))  # fmt: skip
    assert s.hold
    assert {r for r, _ in s.reasons} == {
        RiskReason.NEW_SHIP_TO, RiskReason.ADDRESS_MISMATCH, RiskReason.NEW_CONTACT_DOMAIN,
        RiskReason.VALUE_FAR_ABOVE_HISTORY,
    }  # fmt: skip
    assert any("vs usual" in why for _, why in s.reasons)


def test_a_burst_of_orders_is_held_once_it_is_implausible() -> None:
    sc = _scorer_with_history()
    held = [sc.score(_order(at_hours=24.0 * 50 + 10 + 0.1 * j)).hold for j in range(10)]
    assert not held[0]
    assert held[-1]


def test_injected_cases_of_every_kind_are_caught_and_legit_orders_mostly_pass() -> None:
    h = generate_history(4, 120)
    sc = RiskScorer()
    for c, states in h.customer_states.items():
        sc.know(c, ship_tos=set(h.customer_sites[c]), states=set(states), domains={h.customer_domains[c]})
    caught: set[RiskCase] = set()
    false_holds = legit = 0
    for o in h.orders:
        f = OrderFacts(o.customer, o.ship_to_key, o.ship_to_state, o.email_domain, o.value, o.day * 24 + o.hour)
        s = sc.score(f)
        if o.risk_case is not None:
            if s.hold:
                caught.add(o.risk_case)
            continue
        legit += 1
        false_holds += s.hold
        sc.observe(f)
    assert caught == set(RiskCase)
    assert false_holds / legit < 0.01
