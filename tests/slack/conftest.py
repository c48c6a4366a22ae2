"""An API app with Slack configured, a fake Slack Web API on 127.0.0.1, and signed Slack requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.slack import SlackMount
from core.db import Database
from core.settings import Settings
from tests.api.conftest import Api, build_api

SIGNING_SECRET = "slack-signing-secret-for-tests"
APPROVERS = {
    "UOPS": ["operator"],
    "UAPP": ["approver"],
    "UVIEW": ["viewer"],
    "UBOTH": ["operator", "approver"],
}


@dataclass
class FakeSlack:
    """Answers the Web API methods OrderOps calls, and response URLs; records every call."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    port: int = 0
    _ts: int = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, n: int = 1) -> str:
        return f"http://127.0.0.1:{self.port}/response/{n}"

    def of(self, method: str) -> list[dict[str, Any]]:
        return [args for m, args in self.calls if m == method]

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((method, args))
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "team": "test", "url": "x"}
        if method == "chat.postMessage":
            self._ts += 1
            return {"ok": True, "channel": args.get("channel"), "ts": f"1700000000.{self._ts:06d}"}
        if method in ("chat.update", "chat.postEphemeral", "views.open") or method.startswith("response/"):
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        return {"ok": False, "error": "unknown_method"}


def _serve(fake: FakeSlack) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            if "json" in (self.headers.get("content-type") or ""):
                args = json.loads(raw or "{}")
            else:
                args = {k: v[0] for k, v in parse_qs(raw).items()}
            path = self.path.lstrip("/")
            method = path.removeprefix("api/")
            out = json.dumps(fake.answer(method, args)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    server = _serve(fake)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SlackApi:
    api: Api
    fake: FakeSlack
    client: TestClient

    @property
    def mount(self) -> SlackMount:
        mount: SlackMount = self.client.app.state.slack  # type: ignore[attr-defined]
        return mount

    def post(self, path: str, body: str, *, headers: dict[str, str] | None = None, sign: bool = True) -> Any:
        """POST ``body`` to a Slack endpoint, signed, and wait for the listener's work after its ack."""
        h = {"content-type": "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"}
        if sign:
            h.update(signature(body))
        h.update(headers or {})
        r = self.client.post(path, content=body.encode(), headers=h)
        self.mount.drain()
        return r

    def command(self, user: str, text: str) -> Any:
        form = {
            "command": "/orderops",
            "text": text,
            "user_id": user,
            "team_id": "T1",
            "channel_id": "C1",
            "response_url": self.fake.response_url(),
            "trigger_id": f"trig-{time.monotonic_ns()}",
        }
        return self.post("/slack/commands", urlencode(form))

    def interact(self, payload: dict[str, Any]) -> Any:
        return self.post("/slack/interactions", urlencode({"payload": json.dumps(payload)}))


def signature(body: str, *, ts: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest}


def with_slack(api: Api, fake: FakeSlack) -> SlackApi:
    s = api.actx.settings
    settings = Settings(
        home=s.home,
        database_url=s.database_url,
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token="xoxb-test-token",
        slack_api_url=fake.api_url,
        slack_approvers=APPROVERS,
        slack_approval_channel="CAPPROVALS",
    )
    actx = replace(api.actx, settings=settings)
    app = create_app(actx, keys=api.keys)
    client = TestClient(app)
    return SlackApi(api=replace(api, actx=actx, app=app, client=client), fake=fake, client=client)


@pytest.fixture
def slack(sqlite_db: Database, tmp_path: Path, fake_slack: FakeSlack) -> Iterator[SlackApi]:
    built = with_slack(build_api(sqlite_db, tmp_path / "home"), fake_slack)
    with built.client:
        yield built
