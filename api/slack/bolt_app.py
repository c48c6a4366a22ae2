"""The Slack app: a bolt :class:`~slack_bolt.App` behind ``POST /slack/{events,commands,interactions}``.

Bolt verifies every request (signing secret over the raw body, five-minute replay window) before
any listener or middleware of ours runs: a forged, tampered, unsigned or stale request gets 401 and
writes nothing. Our first middleware then drops retries and replays (``slack_seen``). Listeners
``ack()`` first — Slack wants an answer within three seconds — and do the work after, on bolt's
listener executor (``process_before_response=False``); replies go through ``respond`` (the
command's response URL) or the Web API.

The signature is checked once more before bolt sees the request (:meth:`SlackMount.signature_ok`):
bolt parses the body while building its request, before verifying, and a malformed unsigned body
would otherwise end in a 500.

What this module must never do: parse the request body before its signature has been verified, or
act for a Slack user other than the one the verified payload names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from slack_bolt import Ack, App, BoltRequest, BoltResponse, Respond
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool

from api.auth import Role
from api.bootstrap import AppContext
from api.problems import Unauthenticated
from api.slack.ops import (
    APPROVE_ACTION,
    APPROVE_RUN_ACTION,
    REASON_BLOCK,
    REASON_INPUT,
    REJECT_ACTION,
    REJECT_MODAL,
    VIEW_ACTION,
    SlackOps,
    incident_run_of,
)
from core.errors import ConfigurationError, OrderOpsError, ValidationFailed

log = logging.getLogger("orderops.slack")

P = ParamSpec("P")
T = TypeVar("T")

PATHS = ("/slack/events", "/slack/commands", "/slack/interactions")
REPLAY_WINDOW_S = 300
"""Slack's five-minute window (bolt's own check uses the same)."""


class BackgroundExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, which can also wait for the work handed to it (:meth:`drain`):
    for a graceful shutdown, and for tests that check what a listener did after its ack."""

    def __init__(self, max_workers: int = 4) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="orderops-slack")
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        fut = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def drain(self) -> None:
        """Return once everything submitted (including work submitted meanwhile) has finished."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            wait(pending)


@dataclass
class SlackMount:
    """What :func:`install` hangs on ``app.state.slack``."""

    bolt: App
    ops: SlackOps
    executor: BackgroundExecutor
    signing_secret: bytes
    clock: Callable[[], float] = time.time

    def drain(self) -> None:
        self.executor.drain()

    def signature_ok(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Slack's v0 signature (HMAC-SHA256 of ``v0:<timestamp>:<raw body>``) within the replay
        window; computed on the bytes, so a body that is not UTF-8 fails here instead of in bolt."""
        stamp = headers.get("x-slack-request-timestamp", "")
        presented = headers.get("x-slack-signature", "")
        if not stamp.isdigit() or not presented or abs(self.clock() - int(stamp)) > REPLAY_WINDOW_S:
            return False
        digest = hmac.new(self.signing_secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(presented.encode("utf-8", "replace"), ("v0=" + digest).encode())


def web_client(actx: AppContext) -> WebClient:
    """The Web API client of the configured bot (``settings.slack_api_url`` as its base URL)."""
    token = actx.settings.slack_bot_token
    if token is None:
        raise ConfigurationError("Slack needs settings.slack_bot_token")
    base = actx.settings.slack_api_url
    return WebClient(token=token.get_secret_value(), base_url=base if base.endswith("/") else base + "/")


def build_bolt_app(
    actx: AppContext, *, client: WebClient | None = None, executor: BackgroundExecutor | None = None
) -> SlackMount:
    """The bolt app with OrderOps' listeners, on ``actx`` (signing secret and token from its settings)."""
    secret = actx.settings.slack_signing_secret
    if secret is None:
        raise ConfigurationError("Slack needs settings.slack_signing_secret")
    client = client or web_client(actx)
    executor = executor or BackgroundExecutor()
    bolt = App(
        client=client,
        signing_secret=secret.get_secret_value(),
        token_verification_enabled=False,  # no Web API call at start-up; auth.test runs on first request
        process_before_response=False,
        listener_executor=executor,
    )
    ops = SlackOps(actx, client)
    _register(bolt, ops)
    return SlackMount(bolt=bolt, ops=ops, executor=executor, signing_secret=secret.get_secret_value().encode())


def _register(bolt: App, ops: SlackOps) -> None:
    """Wire Slack's ways in to :class:`SlackOps`: repeated deliveries dropped, then commands and
    chat, button clicks, and the reject modal."""
    _register_dedupe(bolt, ops)
    _register_chat(bolt, ops)
    _register_buttons(bolt, ops)
    _register_reject_modal(bolt, ops)


def _register_dedupe(bolt: App, ops: SlackOps) -> None:
    @bolt.middleware
    def drop_retries(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        """Slack retries an event (``X-Slack-Retry-Num``) under the same ``event_id``; anything else
        replayed within the signature window is the same signed body. Either is acknowledged and ignored."""
        body: dict[str, Any] = req.body if isinstance(req.body, dict) else {}
        event_id = body.get("event_id")
        if event_id:
            key, kind = f"event:{event_id}"[:200], "event"
        else:
            key, kind = "body:" + hashlib.sha256(req.raw_body.encode()).hexdigest(), str(body.get("type") or "command")
        if not ops.store.first_time(key, kind[:32]):
            log.info("slack: dropped a repeated delivery %s", key)
            return BoltResponse(status=200, body="")
        return next()


def _register_chat(bolt: App, ops: SlackOps) -> None:
    """The slash command, mentions and direct messages: each is a command to the bot."""

    @bolt.command("/orderops")
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        try:
            reply = ops.command(ops.user(str(command["user_id"])), str(command.get("text") or ""))
            respond(text=reply.text, response_type="ephemeral")
        except OrderOpsError as exc:
            respond(text=f"Not done: {exc.message}", response_type="ephemeral")

    def on_chat(event: dict[str, Any], client: WebClient) -> None:
        channel, user_id = str(event["channel"]), str(event.get("user") or "")
        thread_ts = str(event.get("thread_ts") or event["ts"])
        try:
            reply = ops.command(ops.user(user_id), str(event.get("text") or ""))
        except OrderOpsError as exc:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=f"Not done: {exc.message}")
            return
        if reply.run_id is not None:
            ops.store.add_thread(run_id=reply.run_id, channel=channel, thread_ts=thread_ts, user_id=user_id)
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=reply.text)

    @bolt.event("app_mention")
    def on_mention(event: dict[str, Any], client: WebClient) -> None:
        on_chat(event, client)

    @bolt.event("message")
    def on_message(event: dict[str, Any], client: WebClient) -> None:
        # Direct messages only, from people (no edits, joins or bot posts).
        if event.get("channel_type") == "im" and not event.get("subtype") and not event.get("bot_id"):
            on_chat(event, client)


def _register_buttons(bolt: App, ops: SlackOps) -> None:
    """Approve, approve-the-run, reject (opens the reason modal) and view buttons on cards."""

    @bolt.action(APPROVE_ACTION)
    def on_approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id, channel = _clicker(body)
        try:
            ops.decide(ops.user(user_id), str(body["actions"][0]["value"]), "approve")
        except OrderOpsError as exc:
            client.chat_postEphemeral(channel=channel, user=user_id, text=f"Not done: {exc.message}")

    @bolt.action(APPROVE_RUN_ACTION)
    def on_approve_run(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id, channel = _clicker(body)
        try:
            ops.decide_run(ops.user(user_id), str(body["actions"][0]["value"]), "approve")
        except OrderOpsError as exc:
            client.chat_postEphemeral(channel=channel, user=user_id, text=f"Not done: {exc.message}")

    @bolt.action(REJECT_ACTION)
    def on_reject_click(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id, channel = _clicker(body)
        try:
            ops.user(user_id).require(Role.APPROVER, "decide approval requests")
            message = body.get("message") or {}
            view = ops.reject_modal(str(body["actions"][0]["value"]), channel=channel, ts=message.get("ts"))
        except OrderOpsError as exc:
            client.chat_postEphemeral(channel=channel, user=user_id, text=f"Not done: {exc.message}")
            return
        client.views_open(trigger_id=str(body["trigger_id"]), view=view)

    @bolt.action(VIEW_ACTION)
    def on_view_click(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL; the click still has to be acknowledged


def _register_reject_modal(bolt: App, ops: SlackOps) -> None:
    """The reason a rejecter gives; a refusal is shown under the field and the modal stays open."""

    @bolt.view(REJECT_MODAL)
    def on_reject_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        user_id = str(body["user"]["id"])
        meta = json.loads(view.get("private_metadata") or "{}")
        reason = (
            ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value")
        )
        value = str(meta.get("value"))
        try:
            if incident_run_of(value) is not None:
                ops.decide_run(ops.user(user_id), value, "reject", reason=reason)
                ack()
                return
            decided = ops.decide(ops.user(user_id), value, "reject", reason=reason, refresh=False)
        except OrderOpsError as exc:  # shown under the reason field; the modal stays open
            ack(response_action="errors", errors={REASON_BLOCK: exc.message[:150]})
            return
        ack()
        ops.refresh_card(decided.id)


def _clicker(body: dict[str, Any]) -> tuple[str, str]:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
    return str(body["user"]["id"]), str(channel)


def router(mount: SlackMount) -> APIRouter:
    """The three Slack endpoints (left out of the OpenAPI schema: Slack is their only client)."""
    r = APIRouter(include_in_schema=False)

    async def handle(request: Request) -> Response:
        body = await request.body()  # bounded by api.http_guard, which also wants the signature headers
        # Bolt parses the body (UTF-8, JSON, the form's payload) as it builds its request, before it
        # checks the signature: so the signature is checked here first, on the raw bytes, and a body
        # that fails to parse is a 400, not a 500.
        if not mount.signature_ok(request.headers, body):
            raise Unauthenticated("the Slack signature does not match the body (or is stale)")
        try:
            bolt_request = to_bolt_request(request, body)
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise ValidationFailed("the Slack request body is malformed") from exc
        resp = await run_in_threadpool(mount.bolt.dispatch, bolt_request)
        return to_starlette_response(resp)

    for path in PATHS:
        r.add_api_route(path, handle, methods=["POST"])
    return r


def install(app: FastAPI, actx: AppContext, *, client: WebClient | None = None) -> SlackMount:
    """Mount the Slack endpoints on ``app`` (``app.state.slack`` keeps the mount)."""
    mount = build_bolt_app(actx, client=client)
    app.include_router(router(mount))
    app.state.slack = mount
    return mount
