"""Slack for operators: slash commands, chat, and approval cards with Approve / Reject buttons.

:func:`install` mounts the endpoints (``api.app.create_app`` does when ``settings.slack_configured``).
:func:`post_approval_cards` posts the cards of a run parked for approval; the worker should call it
after a run job ends ``awaiting_approval`` (and again after a continue job, which refreshes cards
decided elsewhere).
"""

from __future__ import annotations

from api.bootstrap import AppContext
from api.slack.bolt_app import BackgroundExecutor, SlackMount, build_bolt_app, install, web_client
from api.slack.ops import SlackOps, SlackUser

__all__ = [
    "BackgroundExecutor",
    "SlackMount",
    "SlackOps",
    "SlackUser",
    "build_bolt_app",
    "install",
    "post_approval_cards",
    "post_run_status",
    "web_client",
]


def post_approval_cards(actx: AppContext, run_id: str) -> list[str]:
    """Post a card per pending approval of ``run_id`` not yet posted (and refresh decided ones);
    the approval ids posted. No-op (empty) when Slack is not configured."""
    if not actx.settings.slack_configured:
        return []
    return SlackOps(actx, web_client(actx)).post_approval_cards(run_id)


def post_run_status(actx: AppContext, run_id: str) -> bool:
    """Reply in the Slack thread ``run_id`` was started from with its status (False: none)."""
    if not actx.settings.slack_configured:
        return False
    return SlackOps(actx, web_client(actx)).post_run_status(run_id)
