"""People, not accounts (issue 15, problem 8): a Slack user linked to a person is that person, so
someone who asked through an API key cannot approve the same change in Slack, and one human never
counts as two approvers."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from slack_sdk import WebClient

from api.slack.ops import SlackOps
from core.errors import Conflict, PolicyDenied
from core.settings import Settings, SlackPerson
from guardrails.approvals import ApprovalStatus
from tests.api.conftest import Api
from tests.slack.conftest import SlackApi


def ops_with(api: Api, approvers: dict[str, list[str] | SlackPerson]) -> SlackOps:
    settings = Settings(
        home=api.actx.settings.home, database_url=api.actx.settings.database_url, slack_approvers=approvers
    )
    return SlackOps(replace(api.actx, settings=settings), WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"))


def test_a_linked_slack_user_acts_as_their_person() -> None:
    settings = Settings.model_validate(
        {"slack_approvers": {"UAMIR": {"person": "amir", "roles": ["approver"]}, "UOLD": ["operator"]}}
    )
    entry = settings.slack_approvers["UAMIR"]
    assert isinstance(entry, SlackPerson)
    assert entry.person == "amir"


def test_the_requester_cannot_approve_their_own_change_from_slack(slack: SlackApi) -> None:
    api = slack.api
    out = api.propose_bulk_reroute()  # proposed on behalf of olivia, who holds an API key
    ops = ops_with(api, {"UOLIVIA": SlackPerson(person="olivia", roles=["approver"])})
    user = ops.user("UOLIVIA")
    assert user.actor().id == "olivia"
    value = json.dumps({"id": out.approval_id})
    with pytest.raises(PolicyDenied):
        ops.decide(user, value, "approve", refresh=False)
    assert api.actx.guard.approvals.get(str(out.approval_id)).status == ApprovalStatus.PENDING


def test_one_person_is_one_approver_through_the_api_and_slack(slack: SlackApi) -> None:
    api = slack.api
    out = api.propose_bulk_reroute(key="two-ways")
    approval_id = str(out.approval_id)
    r = api.client.post(f"/v1/approvals/{approval_id}", json={"decision": "approve"}, headers=api.as_("approver"))
    assert r.status_code == 200, r.text
    assert [d.approver_id for d in api.actx.guard.approvals.get(approval_id).decisions] == ["amir"]
    # amir's Slack account is amir: not a second approver, whatever the rule asks for
    ops = ops_with(api, {"UAMIR": SlackPerson(person="amir", roles=["approver"])})
    with pytest.raises(Conflict):
        ops.decide(ops.user("UAMIR"), json.dumps({"id": approval_id}), "approve", refresh=False)
    assert [d.approver_id for d in api.actx.guard.approvals.get(approval_id).decisions] == ["amir"]
