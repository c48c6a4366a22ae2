"""What OrderOps does for a Slack user: who they are, the command grammar, and approval cards.

Kept apart from the bolt wiring (:mod:`api.slack.bolt_app`) so that the worker side (posting cards
when a run parks) needs only an :class:`~api.bootstrap.AppContext` and a Web API client, no bolt app.

Every decision goes through :mod:`services.approvals` (the gateway's checks, then the job that
carries the run on), exactly as ``POST /v1/approvals/{id}`` does: the gateway checks the approver's
roles and refuses self-approval; this module only shows its refusal to the user. Runs start through
:func:`services.runs.queue_run`, as ``POST /v1/runs`` starts them.

What this module must never do: decide, start or list anything for a Slack user who is not in
``settings.slack_approvers`` with a role that allows it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from agents.plan import ExceptionKind
from agents.triage import GRAMMAR_HELP, triage_goal
from api.auth import Role, effective_roles
from api.bootstrap import AppContext
from api.inputs import unstorable
from api.slack.store import SlackStore
from core.errors import Conflict, NotFound, PolicyDenied, ValidationFailed
from core.settings import SlackPerson
from guardrails.approvals import ApprovalRequest, ApprovalStatus
from guardrails.calls import Actor
from services.approvals import IncidentCard, IncidentDecision, decide_incident, decide_step, incident_card
from services.runs import StartRun, queue_run
from services.wismo import Whereabouts, where_is

APPROVE_ACTION = "orderops_approve"
REJECT_ACTION = "orderops_reject"
APPROVE_RUN_ACTION = "orderops_approve_run"
VIEW_ACTION = "orderops_view"
REJECT_MODAL = "orderops_reject_modal"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"

HELP = (
    "`/orderops status ORD-123` order status · `/orderops where ORD-123|PO` where is my order · "
    "`/orderops approvals` pending approvals · "
    "`/orderops <goal>` start an exception run, e.g. `/orderops reroute from DC-EAST`; " + GRAMMAR_HELP
)
_ORDER = re.compile(r"^ORD-\d+$", re.IGNORECASE)
_MENTION = re.compile(r"<@[A-Z0-9]+>")


@dataclass(frozen=True)
class SlackUser:
    """A Slack user as OrderOps sees them: ``slack:<user id>`` with the roles the allow-list gives."""

    user_id: str
    roles: frozenset[Role]
    person: str | None = None
    """The person this Slack user is (``ORDEROPS_SLACK_APPROVERS``): the same id their API keys and
    console sessions carry, so self-approval and approver counts see one human, not two accounts."""

    @property
    def actor_id(self) -> str:
        return self.person or f"slack:{self.user_id}"

    def actor(self) -> Actor:
        return Actor(kind="user", id=self.actor_id, roles=frozenset(r.value for r in self.roles))

    def require(self, role: Role, doing: str) -> None:
        if role not in self.roles:
            raise PolicyDenied(f"you are not allowed to {doing} (needs the {role.value} role in OrderOps)")


@dataclass(frozen=True)
class Reply:
    text: str
    run_id: str | None = None


class SlackOps:
    """The Slack-facing operations on one :class:`AppContext` and one Web API client."""

    def __init__(self, actx: AppContext, client: WebClient) -> None:
        self.actx = actx
        self.client = client
        self.store = SlackStore(actx.db)

    # --- who ---------------------------------------------------------------------------------------

    def user(self, user_id: str) -> SlackUser:
        """The allow-listed user; unknown users get no roles (and so may do nothing)."""
        entry = self.actx.settings.slack_approvers.get(user_id, [])
        person, raw = (entry.person, entry.roles) if isinstance(entry, SlackPerson) else (None, entry)
        try:
            roles = effective_roles(raw)
        except ValueError:  # a misspelt role in the settings grants nothing
            roles = frozenset()
        return SlackUser(user_id=user_id, roles=roles, person=person)

    # --- commands ----------------------------------------------------------------------------------

    def command(self, user: SlackUser, text: str) -> Reply:
        """One line of the command grammar (slash command text, or a chat message without the mention).

        ``status ORD-123`` · ``approvals`` · ``help`` · anything else is an exception goal.
        """
        text = _MENTION.sub(" ", text).strip()
        words = text.split()
        head = words[0].lower() if words else "help"
        if head == "help":
            return Reply(HELP)
        user.require(Role.VIEWER, "read OrderOps data")
        if head == "status":
            if len(words) != 2 or not _ORDER.match(words[1]):
                return Reply("usage: `status ORD-123`")
            return Reply(self.order_status(words[1].upper()))
        if head == "approvals":
            return Reply(self.pending_approvals())
        if head == "where":
            if len(words) != 2:
                return Reply("usage: `where ORD-123` or `where <PO number>`")
            return Reply(self.where(words[1]))
        return self.start_run(user, text)

    def order_status(self, order_id: str) -> str:
        try:
            o = self.actx.adapters.oms.get_order(order_id)
        except NotFound:
            return f"No order {order_id}."
        parts = [f"*{o.id}* is *{o.status.value}*", f"node {o.node_id or '-'}", f"promised {o.promised_date}"]
        if o.carrier_service_id:
            parts.append(f"service {o.carrier_service_id}")
        return " · ".join(parts) + f" · {o.service_level.value}, {o.total_units} units, ${o.total_value}"

    def where(self, ref: str) -> str:
        """Where is my order (:func:`services.wismo.where_is`, the CLI's and the API's answer) as Slack text."""
        a = self.actx
        try:
            found = where_is(ref, db=a.db, adapters=a.adapters, clock=a.twin_clock, audit=a.guard.audit)
        except NotFound:
            return f"No order or PO number {ref}."
        return "\n\n".join(_where_text(w) for w in found)

    def pending_approvals(self) -> str:
        pending = self.actx.guard.approvals.list_pending()
        if not pending:
            return "No approvals pending."
        lines = [f"*{len(pending)} pending approval(s)*"]
        for r in pending[:20]:
            preview = r.preview if isinstance(r.preview, dict) else {}
            lines.append(f"• `{r.id}` {r.tool} (run {r.run_id or '-'}): {preview.get('summary', '')}")
        return "\n".join(lines)

    def start_run(self, user: SlackUser, goal: str) -> Reply:
        """Queue an exception run for ``goal`` acting for ``user`` (who then may not approve its calls).

        Without a model the goal must match the triage grammar (else nothing starts and the reply
        says what is understood); with a model configured free text goes to the run as is and the
        LLM planner reads it.
        """
        user.require(Role.OPERATOR, "start runs")
        if not goal or len(goal) > 2000 or unstorable(goal) is not None:
            raise ValidationFailed("a goal is 1 to 2000 characters, without NUL bytes")
        if not self.actx.settings.llm_configured:
            triage = triage_goal(goal, self.actx.tool_env)
            if triage.kind is ExceptionKind.UNKNOWN or any("needs" in f for f in triage.findings):
                from agents.triage_llm import vague_refusal

                vague = vague_refusal(goal, self.actx.tool_env, triage)
                return Reply("Not started: " + (vague or "; ".join(triage.findings or [HELP])))
        cmd = StartRun(goal=goal, requested_by=user.actor_id)
        queue_run(self.actx.db, cmd)
        return Reply(f"Run `{cmd.run_id}` queued: {goal}", run_id=cmd.run_id)

    # --- approval cards ----------------------------------------------------------------------------

    def post_approval_cards(self, run_id: str) -> list[str]:
        """Post the run's approval card — one per incident: a run with several pending steps gets
        one card with every step, the totals and Approve all / Reject all; a single step gets its
        own card — and refresh cards decided elsewhere. Returns the ids newly posted (an incident
        card's id is ``run:<run id>:<steps digest>``). Safe to repeat."""
        posted: list[str] = []
        thread = self.store.thread(run_id)
        channel = thread.channel if thread is not None else self.actx.settings.slack_approval_channel
        pending = self.actx.guard.approvals.list_pending(run_id=run_id)
        if len(pending) > 1:
            key = _incident_key(run_id, [r.id for r in pending])
            if self.store.card(key) is None and channel is not None:
                card = incident_card(self.actx.gateway, run_id)
                resp = self.client.chat_postMessage(
                    channel=channel,
                    text=f"Approval needed: run {run_id}, {len(card.steps)} steps",
                    blocks=self.incident_blocks(card, key),
                    thread_ts=thread.thread_ts if thread is not None else None,
                )
                status = "pending:" + ",".join(sorted(r.id for r in pending))
                self.store.add_card(
                    approval_id=key, run_id=run_id, channel=str(resp["channel"]), ts=str(resp["ts"]), status=status
                )
                posted.append(key)
            pending = []  # the steps are on the incident card
        for req in pending:
            if self.store.card(req.id) is not None or channel is None:
                continue
            resp = self.client.chat_postMessage(
                channel=channel,
                text=f"Approval needed: {req.tool} ({req.id})",
                blocks=self.card_blocks(req),
                thread_ts=thread.thread_ts if thread is not None else None,
            )
            self.store.add_card(
                approval_id=req.id,
                run_id=run_id,
                channel=str(resp["channel"]),
                ts=str(resp["ts"]),
                status=req.status.value,
            )
            posted.append(req.id)
        for row in self.store.cards_of_run(run_id):
            self.refresh_card(row.approval_id)
        return posted

    def incident_blocks(self, card: IncidentCard, key: str, decided: str | None = None) -> list[dict[str, Any]]:
        """One card for the whole incident: totals, each step in a line, the policy's reasons."""
        fields = [
            f"*Run*\n{card.run_id}",
            f"*Steps*\n{len(card.steps)}",
            f"*Orders*\n{card.orders}",
            f"*Cost delta*\n${card.cost_delta}",
            f"*Late orders*\n{card.late_before} → {card.late_after}",
            f"*Needs*\n{', '.join(card.required_roles) or 'approver'}",
        ]
        steps = "\n".join(f"• `{st.tool}` {st.summary}" for st in card.steps)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Approval needed* · run {card.run_id}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "section", "text": {"type": "mrkdwn", "text": steps[:2900]}},
        ]
        if card.reasons:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "Why: " + "; ".join(card.reasons)[:2900]}]}
            )
        link = f"{self.actx.settings.slack_link_base_url.rstrip('/')}/console/runs/{card.run_id}"
        if decided is None:
            value = json.dumps({"run": card.run_id, "key": key})
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"incident:{key}"[:255],
                    "elements": [
                        _button("Approve all", APPROVE_RUN_ACTION, value=value, style="primary"),
                        _button("Reject all", REJECT_ACTION, value=value, style="danger"),
                        _button("View details", VIEW_ACTION, value=card.run_id, url=link),
                    ],
                }
            )
        else:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{decided} · <{link}|View details>"}]}
            )
        return blocks

    def decide_run(self, user: SlackUser, value: str, decision: str, reason: str | None = None) -> IncidentDecision:
        """``user``'s one decision on an incident card: every step it showed, through the same
        service the API, console and CLI use; a step decided elsewhere meanwhile makes it refuse."""
        user.require(Role.APPROVER, "decide approval requests")
        try:
            data = json.loads(value)
            run_id, key = str(data["run"]), str(data["key"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed("malformed approval button") from exc
        shown = key.rsplit(":", 1)[-1]
        now = self.actx.guard.approvals.list_pending(run_id=run_id)
        if _incident_key(run_id, [r.id for r in now]).rsplit(":", 1)[-1] != shown:
            raise Conflict("the run's pending steps changed since this card was posted; see the newer card")
        shown_card = incident_card(self.actx.gateway, run_id)
        out = decide_incident(
            self.actx.gateway,
            self.actx.db,
            run_id,
            approver=user.actor(),
            decision="approve" if decision == "approve" else "reject",
            reason=reason,
        )
        row = self.store.card(key)
        if row is not None:
            verb = "✅ approved" if out.decision == "approve" else "❌ rejected"
            text = f"{verb} by {_who(user.actor_id)} ({len(out.decided)} steps)" + (f": {reason}" if reason else "")
            self.client.chat_update(
                channel=row.channel, ts=row.ts, text=text, blocks=self.incident_blocks(shown_card, key, text)
            )
            self.store.set_card_status(key, "decided")
        return out

    def refresh_card(self, approval_id: str) -> bool:
        """Show the request's current state in its card (``chat.update``) if it changed since posted."""
        card = self.store.card(approval_id)
        if card is None or approval_id.startswith("run:"):  # incident cards change when decided
            return False
        req = self.actx.guard.approvals.get(approval_id)
        shown = f"{req.status.value}:{len(req.decisions)}"
        if card.status == shown or (card.status == req.status.value and not req.decisions):
            return False
        self.client.chat_update(channel=card.channel, ts=card.ts, text=_decided_text(req), blocks=self.card_blocks(req))
        self.store.set_card_status(approval_id, shown)
        return True

    def card_blocks(self, req: ApprovalRequest) -> list[dict[str, Any]]:
        preview: dict[str, Any] = req.preview if isinstance(req.preview, dict) else {}
        late = f"{preview.get('late_before', '?')} → {preview.get('late_after', '?')}"
        fields = [
            f"*Tool*\n{req.tool}",
            f"*Run*\n{req.run_id or '-'}",
            f"*Cost delta*\n${preview.get('cost_delta', '?')}",
            f"*Late orders*\n{late}",
            f"*Orders*\n{len(req.items)}",
            f"*Needs*\n{', '.join(req.required_roles) or 'approver'} ×{req.approvers_required}",
        ]
        blocks: list[dict[str, Any]] = [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Approval needed* · {preview.get('summary', '')}"},
            },
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        ]
        reasons = self._reasons(req)
        if reasons:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "Why: " + "; ".join(reasons)[:2900]}]}
            )
        link = f"{self.actx.settings.slack_link_base_url.rstrip('/')}/console/approvals/{req.id}"
        if req.status == ApprovalStatus.PENDING:
            value = json.dumps({"id": req.id, "h": req.args_hash})
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"approval:{req.id}",
                    "elements": [
                        _button("Approve", APPROVE_ACTION, value=value, style="primary"),
                        _button("Reject", REJECT_ACTION, value=value, style="danger"),
                        _button("View details", VIEW_ACTION, value=req.id, url=link),
                    ],
                }
            )
        if req.decisions:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _decided_text(req)}]})
        if req.status != ApprovalStatus.PENDING:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|View details>"}]})
        return blocks

    def _reasons(self, req: ApprovalRequest) -> list[str]:
        if req.call_id is None:
            return []
        parked = self.actx.guard.audit.list(call_id=req.call_id, event_type="awaiting_approval")
        return list(parked[-1].reasons) if parked else []

    # --- deciding ----------------------------------------------------------------------------------

    def decide(
        self, user: SlackUser, value: str, decision: str, reason: str | None = None, *, refresh: bool = True
    ) -> ApprovalRequest:
        """``user``'s decision on the request named by a card's button ``value`` (id + the args hash
        the card showed, so a request edited since is refused rather than decided unseen)."""
        user.require(Role.APPROVER, "decide approval requests")
        approval_id, expected = _card_value(value)
        if decision not in ("approve", "reject"):
            raise ValidationFailed(f"unknown decision {decision!r}")
        decided = decide_step(
            self.actx.gateway,
            self.actx.db,
            approval_id,
            approver=user.actor(),
            decision="approve" if decision == "approve" else "reject",
            reason=reason,
            expected_args_hash=expected,
        ).request
        if refresh:
            self.refresh_card(decided.id)
        return decided

    def reject_modal(self, value: str, *, channel: str | None, ts: str | None) -> dict[str, Any]:
        run_id = incident_run_of(value)
        approval_id = f"every step of run {run_id}" if run_id is not None else _card_value(value)[0]
        return {
            "type": "modal",
            "callback_id": REJECT_MODAL,
            "private_metadata": json.dumps({"value": value, "channel": channel, "ts": ts}),
            "title": {"type": "plain_text", "text": "Reject request"},
            "submit": {"type": "plain_text", "text": "Reject"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"Rejecting `{approval_id}`."}},
                {
                    "type": "input",
                    "block_id": REASON_BLOCK,
                    "label": {"type": "plain_text", "text": "Reason (goes to the audit trail and the requester)"},
                    "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True},
                },
            ],
        }

    # --- run threads -------------------------------------------------------------------------------

    def post_run_status(self, run_id: str) -> bool:
        """Reply in the thread a run was started from with its current status (no-op for other runs)."""
        thread = self.store.thread(run_id)
        if thread is None:
            return False
        from graphs.runs import RunStore  # graphs is below api; imported late to keep this module light

        fallback: str | None = None
        try:
            run = RunStore(self.actx.db, self.actx.clock).get(run_id=run_id)
            status = run.status
            report = run.typed_report
            fallback = report.fallback if report is not None else None
        except NotFound:
            status = "queued"
        text = f"Run `{run_id}` is {status}."
        if fallback:  # a fallback from the model is never silent: it is the message's first line
            text = f"{fallback}\n{text}"
        self.client.chat_postMessage(channel=thread.channel, thread_ts=thread.thread_ts, text=text)
        return True


def _button(
    text: str, action_id: str, *, value: str, style: str | None = None, url: str | None = None
) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        b["style"] = style
    if url is not None:
        b["url"] = url
    return b


def _card_value(value: str) -> tuple[str, str | None]:
    try:
        data = json.loads(value)
        approval_id, expected = str(data["id"]), data.get("h")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed("malformed approval button") from exc
    return approval_id, str(expected) if expected is not None else None


def _who(approver_id: str) -> str:
    return f"<@{approver_id.removeprefix('slack:')}>" if approver_id.startswith("slack:") else approver_id


def _decided_text(req: ApprovalRequest) -> str:
    marks = {"approve": "✅ approved", "reject": "❌ rejected", "edit": "✏️ edited"}
    done = [
        f"{marks.get(d.decision.value, d.decision.value)} by {_who(d.approver_id)}"
        + (f": {d.reason}" if d.reason else "")
        for d in req.decisions
    ]
    head = {
        ApprovalStatus.PENDING: f"pending ({len(req.decisions)} of {req.approvers_required})",
        ApprovalStatus.APPROVED: "*Approved*",
        ApprovalStatus.REJECTED: "*Rejected*",
        ApprovalStatus.EXPIRED: "*Expired*",
        ApprovalStatus.SUPERSEDED: "*Superseded*",
    }[req.status]
    return f"{head} · " + "; ".join(done) if done else head


def _incident_key(run_id: str, approval_ids: list[str]) -> str:
    """A card id naming the exact set of steps it shows (a run that parks again gets a new card)."""
    digest = hashlib.sha256("\n".join(sorted(approval_ids)).encode()).hexdigest()[:12]
    return f"run:{run_id}:{digest}"[:64]


def incident_run_of(value: str) -> str | None:
    """The run an incident card's button names; None for a single step's card."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return str(data["run"]) if isinstance(data, dict) and "run" in data else None


def _where_text(w: Whereabouts) -> str:
    """One order's whereabouts in a few Slack lines."""
    po = f" (PO {w.po_number})" if w.po_number else ""
    promise = "on time" if w.on_time else ("*late*" if w.on_time is False else (w.why_no_eta or "no ETA"))
    lines = [
        f"*{w.order_id}*{po} is *{w.status}* · node {w.node_id or '-'} · service {w.carrier_service_id or '-'}",
        f"promised {w.promised_date} · ETA {w.eta or '-'} ({w.eta_source}): {promise}",
    ]
    if w.risk is not None:
        hold = " (over the hold threshold)" if w.risk_hold else ""
        reasons = "; ".join(w.risk_reasons[:3])
        lines.append(f"risk {w.risk:.2f}{hold}" + (f": {reasons}" if reasons else ""))
    lines += [f"tracking `{t.tracking_number}` {t.status} {t.last_event or ''}".rstrip() for t in w.tracking]
    lines += [f"run `{c.run_id or '-'}` {c.at:%Y-%m-%d %H:%M}: {c.change}" for c in w.runs[-5:]]
    return "\n".join(lines)
