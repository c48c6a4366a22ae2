"""Malformed and unsigned Slack requests: a 4xx problem, nothing written, nothing posted.

Bolt parses a body (UTF-8, JSON, a form's ``payload``) before it checks the signature, so these
were 500s; the signature is now checked on the raw bytes first (and the headers before the body
is read), and a signed body that does not parse is a 400.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from core.db.tables_jobs import JobRow
from core.db.tables_slack import SlackSeenRow
from tests.slack.conftest import SIGNING_SECRET, SlackApi, signature

PATHS = ["/slack/events", "/slack/commands", "/slack/interactions"]

MALFORMED: list[tuple[str, bytes, str]] = [
    ("not-json", b"{not json", "application/json"),
    ("not-utf8", b"\xff\xfe\xfd", "application/json"),
    ("not-utf8-form", b"payload=\xff\xfe", "application/x-www-form-urlencoded"),
    ("payload-not-json", b"payload=" + quote("{nope").encode(), "application/x-www-form-urlencoded"),
    ("json-array", b"[1, 2, 3]", "application/json"),
    ("deep", b"[" * 50_000, "application/json"),
    ("nul", b'{"type": "event_callback", "event": {"text": "\\u0000"}}', "application/json"),
    ("empty", b"", "application/json"),
]


def _count(slack: SlackApi, table: type) -> int:
    with slack.api.actx.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _post(slack: SlackApi, path: str, body: bytes, content_type: str, headers: dict[str, str]) -> Any:
    r = slack.client.post(path, content=body, headers={"content-type": content_type, **headers})
    slack.mount.drain()
    return r


@pytest.mark.parametrize("signed", ["unsigned", "forged", "bad-timestamp"])
def test_unsigned_malformed_slack_requests_are_401(slack: SlackApi, signed: str) -> None:
    """Every endpoint, every malformed body (one app for all: building one is the slow part)."""
    for path in PATHS:
        for name, body, content_type in MALFORMED:
            if signed == "unsigned":
                headers: dict[str, str] = {}
            elif signed == "forged":
                headers = signature(body.decode("latin-1"), secret="not-the-secret")
            else:
                headers = {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}
            r = _post(slack, path, body, content_type, headers)
            assert r.status_code == 401, (path, name, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    assert _count(slack, SlackSeenRow) == 0
    assert _count(slack, JobRow) == 0
    assert slack.fake.calls == []


def test_signed_but_unparseable_slack_requests_are_400(slack: SlackApi) -> None:
    """Only Slack (or whoever holds the secret) can send these; still a 4xx, never a 500."""
    for path in PATHS:
        for name, body, content_type in MALFORMED[:4]:
            stamp = str(int(time.time()))
            mac = hmac.new(SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
            headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + mac.hexdigest()}
            r = _post(slack, path, body, content_type, headers)
            assert 400 <= r.status_code < 500, (path, name, r.text)
    assert _count(slack, JobRow) == 0


def test_a_stale_timestamp_is_refused_before_the_body_is_read(slack: SlackApi) -> None:
    body = '{"type": "url_verification", "challenge": "abc"}'
    r = _post(slack, "/slack/events", body.encode(), "application/json", signature(body, ts=int(time.time()) - 3600))
    assert r.status_code == 401
    fresh = _post(slack, "/slack/events", body.encode(), "application/json", signature(body))
    assert fresh.status_code == 200
