"""The outermost layer of the HTTP service: what every request must pass before any route reads it.

A pure ASGI middleware (:class:`RequestGuard`), so that it sees the request as a stream and can act
before anything is buffered:

* **Body size.** A request announcing more than ``max_body_bytes`` (``Content-Length``) is answered
  413 without reading a byte of its body; one that does not announce its length (chunked) is
  counted while the app reads it: the read that passes the limit raises :class:`BodyTooLarge` (a
  413 ``HTTPException``), nothing more is read from the client, and whatever the layers inside make
  of the exception, the response is a 413 problem. No route holds more than the limit plus one chunk.
* **Credentials before the body.** A write to the API (``POST``/``PUT``/``PATCH``/``DELETE`` under
  ``/v1/``) carrying neither an API key nor a webhook signature, or an API key that matches no
  active key, is refused (401) before its body is read; the route checks roles and signatures
  again, this is only the cheap, early refusal. A Slack request without Slack's signature headers,
  or with a timestamp outside Slack's five-minute window, is refused the same way.
* **NUL bytes** in the path or the query string are refused (422): PostgreSQL cannot store them, and
  no identifier or filter of ours contains one.

Every refusal is an RFC 9457 problem (:mod:`api.problems`).

What this module must never do: read (or buffer) a request body, authorise anything (passing this
layer admits nothing: routes still authenticate and check roles), or log a presented key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import webhooks
from api.auth import ApiKeyStore
from api.problems import problem_response
from core.errors import ValidationFailed

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/v1/"
SLACK_PREFIX = "/slack/"
SLACK_TOLERANCE_S = 300
"""Slack's own replay window (bolt refuses older requests too)."""


class BodyTooLarge(HTTPException):
    """The body grew past the limit while being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class RequestGuard:
    """Size limit, early credential check and NUL refusal for every HTTP request (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        keys: ApiKeyStore | None = None,
        slack: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``keys``: refuse unknown API keys early too (None: only missing ones). ``slack``: the
        Slack endpoints are mounted, so requests to them need Slack's signature headers."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.keys = keys
        self.slack = slack
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body = _BodyLimit(self, scope, receive, send)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.exceeded or (body.started and not body.replaced):
                raise
            if not body.started:
                await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        response = _problem(
            scope, 413, f"the request body is larger than {self.max_body_bytes} bytes", "payload_too_large"
        )

        async def nothing() -> Message:  # the response reads nothing more from the client
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)

    def _refusal(self, scope: Scope) -> Any:
        """The response refusing this request before its body is read, or None to let it through."""
        headers = _headers(scope)
        path: str = scope.get("path", "")
        if "\x00" in path or b"%00" in scope.get("query_string", b"") or b"\x00" in scope.get("query_string", b""):
            return _problem(scope, 422, "the path or query string contains a NUL byte", ValidationFailed.code)
        announced = headers.get("content-length")
        if announced is not None:
            digits = announced.strip()
            if not digits.isascii() or not digits.isdigit():
                return _problem(scope, 400, "Content-Length is not a number", "bad_request")
            # Compared as text first: a 10,000-digit length must not cost a big-integer conversion.
            if len(digits) > 18 or int(digits) > self.max_body_bytes:
                return _problem(
                    scope, 413, f"the request body is larger than {self.max_body_bytes} bytes", "payload_too_large"
                )
        method = scope.get("method", "GET")
        if method in WRITE_METHODS and path.startswith(API_PREFIX):
            return self._api_credentials(scope, headers)
        if self.slack and method == "POST" and path.startswith(SLACK_PREFIX):
            return self._slack_headers(scope, headers)
        return None

    def _api_credentials(self, scope: Scope, headers: dict[str, str]) -> Any:
        if webhooks.has_signature(headers):
            return None  # the route checks the signature over the body it then reads (bounded above)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else ""
        presented = presented or headers.get("x-api-key", "")
        if not presented:
            return _unauthenticated(
                scope, "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            )
        if self.keys is not None and self.keys.authenticate(presented) is None:
            return _unauthenticated(scope, "the API key is not valid (unknown, malformed or revoked)")
        return None

    def _slack_headers(self, scope: Scope, headers: dict[str, str]) -> Any:
        stamp = headers.get("x-slack-request-timestamp", "")
        if not stamp or not headers.get("x-slack-signature"):
            return _unauthenticated(scope, "a Slack request needs X-Slack-Signature and X-Slack-Request-Timestamp")
        try:
            ts = int(stamp)
        except ValueError:
            return _unauthenticated(scope, "X-Slack-Request-Timestamp must be whole seconds since the epoch")
        if abs(self.clock() - ts) > SLACK_TOLERANCE_S:
            return _unauthenticated(scope, "X-Slack-Request-Timestamp is outside the five-minute window")
        return None


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-cased header names; a repeated header keeps its first value (latin-1, as HTTP/1.1 says)."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _unauthenticated(scope: Scope, detail: str) -> Any:
    return _problem(scope, 401, detail, "unauthenticated", headers={"WWW-Authenticate": 'Bearer realm="orderops"'})


_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    413: "Content too large",
    422: "Invalid request",
}


def _problem(scope: Scope, status: int, detail: str, code: str, *, headers: dict[str, str] | None = None) -> Any:
    response = problem_response(status, _TITLES[status], detail, code, instance=scope.get("path"), headers=headers)
    # Every answer from here leaves the body unread on the connection: close it, rather than have the
    # server drain (read and discard) whatever the client goes on sending before the next request.
    response.headers["Connection"] = "close"
    return response


class _BodyLimit:
    """One request's receive and send, counting the body: past the limit reading stops with
    :class:`BodyTooLarge`, and the app's own answer to the cut-off body is replaced by a 413."""

    def __init__(self, guard: RequestGuard, scope: Scope, receive: Receive, send: Send) -> None:
        self.guard, self.scope, self._receive, self._send = guard, scope, receive, send
        self.limit = guard.max_body_bytes
        self.seen = 0
        self.exceeded = self.started = self.replaced = False

    async def receive(self) -> Message:
        if self.exceeded:
            # Whoever asks again (a disconnect watcher) learns the client is gone; nothing more is read.
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge(self.limit)
        return message

    async def send(self, message: Message) -> None:
        if self.replaced:
            return  # the app's own answer to a body it could not finish reading: dropped
        if message["type"] == "http.response.start":
            self.started = True
            if self.exceeded:
                # Layers between here and the route may wrap the exception (a 400 "error parsing
                # the body", a 500); whatever they make of it, the client is told 413.
                self.replaced = True
                await self.guard._too_large(self.scope, self._send)
                return
        await self._send(message)
