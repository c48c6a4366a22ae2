"""Where is my order in Slack (issue 18, item 7): ``/orderops where REF`` and a mention, on real
signed payloads, answer with the status, node, carrier, ETA against promise, risk and the runs that
changed the order (the answer is services.wismo's, as in the CLI and the API)."""

from __future__ import annotations

from core.domain import OrderStatus
from guardrails.calls import Actor
from tests.slack.conftest import SlackApi
from tests.slack.test_slack import _event, _responses
from tools.adapters.protocols import OrderFilter
from tools.gateway import RunLedger


def test_slash_where_answers_with_status_eta_and_the_run_that_changed_it(slack: SlackApi) -> None:
    actx = slack.api.actx
    order = actx.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED]), limit=1)[0]
    agent = Actor(kind="agent", id="run-w1", on_behalf_of="otto")
    ledger = RunLedger(run_id="run-w1")
    out = actx.gateway.propose(
        "hold_orders", {"order_ids": [order.id], "reason": "check"}, actor=agent, run=ledger, idempotency_key="w1"
    )
    if out.status == "awaiting_approval":
        assert out.approval_id is not None
        actx.gateway.decide(
            out.approval_id, approver=Actor(kind="user", id="boss", roles=frozenset({"approver"})), decision="approve"
        )
        out = actx.gateway.execute_approved(out.approval_id, actor=agent, run=ledger)
    assert out.status == "executed", out.reasons

    r = slack.command("UVIEW", f"where {order.id}")
    assert r.status_code == 200
    text = _responses(slack)[-1]
    assert f"*{order.id}*" in text
    assert "is *held*" in text
    assert f"node {order.node_id}" in text
    assert f"promised {order.promised_date}" in text
    assert "ETA" in text
    assert "run `run-w1`" in text


def test_where_by_mention_unknown_refs_and_people_without_a_role(slack: SlackApi) -> None:
    order = slack.api.actx.adapters.oms.list_orders(OrderFilter(), limit=1)[0]
    assert slack.post("/slack/events", _event(f"where {order.id}", event_id="EvW")).status_code == 200
    (posted,) = slack.fake.of("chat.postMessage")
    assert f"*{order.id}*" in posted["text"]
    assert "promised" in posted["text"]
    slack.command("UVIEW", "where PO-NOBODY-USED")
    assert _responses(slack)[-1] == "No order or PO number PO-NOBODY-USED."
    slack.command("UVIEW", "where")
    assert _responses(slack)[-1].startswith("usage: `where")
    slack.command("UNKNOWN", f"where {order.id}")
    assert "not allowed" in _responses(slack)[-1]
