"""Hostile HTTP input: bodies too large are refused before (or while) they are read, requests
without credentials are refused before their body is read, and malformed input (NUL bytes, integers
past the database's columns) is a 4xx problem on SQLite and PostgreSQL, never a 500.

The size tests drive the ASGI app directly with a ``receive`` that counts what it hands out: that
is how "the server stopped reading" is observed, without timing or memory sampling.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

from api import webhooks
from api.app import create_app
from api.auth import Principal, Role
from api.console.session import SessionStore
from api.http_guard import RequestGuard
from core.db import Database
from core.db.tables_jobs import AlertRow, JobRow
from core.settings import Settings
from tests.api.conftest import Api, build_api

CHUNK = 64 * 1024
LIMIT = 1_048_576


@pytest.fixture
def any_api(db: Database, tmp_path: Path) -> Iterator[Api]:
    """The API test app on each backend."""
    built = build_api(db, tmp_path / "home")
    with built.client:
        yield built


# --- driving the ASGI app with a counting client ------------------------------------------------------


@dataclass
class Sent:
    """What a request handed to the app, and what came back."""

    bytes_read: int = 0
    reads: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/problem+json", self.headers
        out: dict[str, Any] = json.loads(self.body)
        return out


def call(
    app: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    chunks: int,
    query: bytes = b"",
) -> Sent:
    """Send ``chunks`` body chunks of 64 KiB (a stream that would go on for ``chunks`` of them) and
    record how many bytes the app actually pulled."""
    sent = Sent()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        if sent.reads >= chunks:
            return {"type": "http.disconnect"}
        sent.reads += 1
        sent.bytes_read += CHUNK
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": sent.reads < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            sent.body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return sent


GIGABYTE = 1 << 30


def test_a_gigabyte_announced_is_refused_without_reading_a_byte(api: Api) -> None:
    auth = api.as_("operator")
    for path in ("/v1/alerts", "/v1/runs", "/console/login", "/v1/nowhere"):
        sent = call(api.app, "POST", path, {**auth, "content-length": str(GIGABYTE)}, chunks=GIGABYTE // CHUNK)
        assert sent.status == 413, path
        assert sent.bytes_read == 0, path
        problem = sent.problem()
        assert problem["code"] == "payload_too_large"
        assert problem["status"] == 413
        assert sent.headers["connection"] == "close"  # the unread body is not drained


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/alerts", "application/json"), ("/v1/runs", "application/json"), ("/console/login", "text/plain")],
)
def test_an_unannounced_stream_stops_being_read_at_the_limit(api: Api, path: str, content_type: str) -> None:
    """Chunked, no Content-Length: the app reads until the limit is passed, then stops (one chunk
    past the limit at most), though the client would go on for a gigabyte."""
    headers = {**api.as_("operator"), "content-type": content_type}
    sent = call(api.app, "POST", path, headers, chunks=GIGABYTE // CHUNK)
    assert sent.status == 413, sent.body
    assert sent.problem()["code"] == "payload_too_large"
    assert LIMIT < sent.bytes_read <= LIMIT + CHUNK


def test_the_limit_is_a_setting(api: Api) -> None:
    s = api.actx.settings
    settings = Settings(home=s.home, database_url=s.database_url, max_body_bytes=4096)
    small = create_app(replace(api.actx, settings=settings), keys=api.keys)
    sent = call(small, "POST", "/v1/runs", {**api.as_("operator"), "content-length": "5000"}, chunks=1)
    assert sent.status == 413
    assert sent.bytes_read == 0
    body = json.dumps({"goal": "DC-RENO is congested"})
    r = api.client.post("/v1/runs", content=body, headers={**api.as_("operator"), "content-type": "application/json"})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/alerts", "/v1/approvals/apr_1", "/v1/decide/route"])
@pytest.mark.parametrize("credentials", ["none", "unknown key", "malformed key"])
def test_writes_without_a_valid_key_are_refused_before_the_body_is_read(api: Api, path: str, credentials: str) -> None:
    headers = {"content-type": "application/json", "content-length": str(LIMIT)}
    if credentials == "unknown key":
        headers["authorization"] = "Bearer oo_0123456789ab_notarealsecret"
    elif credentials == "malformed key":
        headers["x-api-key"] = "hello"
    sent = call(api.app, "POST", path, headers, chunks=LIMIT // CHUNK)
    assert sent.status == 401
    assert sent.bytes_read == 0
    assert sent.problem()["code"] == "unauthenticated"
    assert sent.headers["www-authenticate"].startswith("Bearer")


def test_signed_alert_headers_are_checked_before_the_body_is_read(api: Api, tmp_path: Path) -> None:
    s = api.actx.settings
    settings = Settings(home=s.home, database_url=s.database_url, webhook_secret="whsec_dGVzdA==")
    app = create_app(replace(api.actx, settings=settings), keys=api.keys)
    stale = {
        webhooks.ID_HEADER: "msg_1",
        webhooks.TIMESTAMP_HEADER: str(int(time.time()) - 3600),
        webhooks.SIGNATURE_HEADER: "v1,AAAA",
        "content-length": str(LIMIT),
    }
    sent = call(app, "POST", "/v1/alerts", stale, chunks=LIMIT // CHUNK)
    assert sent.status == 401
    assert sent.bytes_read == 0
    missing = {webhooks.ID_HEADER: "msg_1", "content-length": str(LIMIT)}
    sent = call(app, "POST", "/v1/alerts", missing, chunks=LIMIT // CHUNK)
    assert sent.status == 401
    assert sent.bytes_read == 0
    # Fresh headers: the body is read (it has to be, to check the HMAC), and the HMAC fails.
    fresh = {**stale, webhooks.TIMESTAMP_HEADER: str(int(time.time()))}
    sent = call(app, "POST", "/v1/alerts", fresh, chunks=LIMIT // CHUNK)
    assert sent.status == 401
    assert sent.bytes_read == LIMIT


def test_reads_and_small_bodies_pass_the_guard(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/v1/nodes", headers=api.as_("viewer")).status_code == 200
    assert api.client.get("/v1/nodes").status_code == 401


# --- malformed input: 4xx on both backends -----------------------------------------------------------


def post_json(api: Api, url: str, body: Any, who: str) -> Any:
    """POST ``body`` as JSON with non-ASCII escaped, so lone surrogates travel as ``\\udXXX`` escapes."""
    headers = {**api.as_(who), "content-type": "application/json"}
    return api.client.post(url, content=json.dumps(body).encode(), headers=headers)


def _jobs(api: Api) -> int:
    with api.actx.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(JobRow)) or 0)


def _alerts(api: Api) -> int:
    with api.actx.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AlertRow)) or 0)


@pytest.mark.parametrize(
    "url",
    [
        "/v1/approvals?run_id=%00",
        "/v1/audit?run_id=run%00x",
        "/v1/audit?call_id=%00",
        "/v1/runs?status=queued%00",
        "/v1/orders?node=DC%00",
        "/v1/orders?customer=%00",
        "/v1/runs/run%00x",
        "/v1/runs/run%00x/trace",
        "/v1/approvals/apr%00",
        "/v1/orders/ORD%00",
        "/console/audit?run_id=%00",
    ],
)
def test_nul_bytes_in_paths_and_query_strings_are_422(any_api: Api, url: str) -> None:
    r = any_api.client.get(url, headers=any_api.as_("admin"), follow_redirects=False)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "validation_failed"


@pytest.mark.parametrize("goal", ["DC-RENO is congested\x00", "DC-RENO is congested \ud800"])
def test_a_goal_no_database_can_store_is_refused_and_queues_nothing(any_api: Api, goal: str) -> None:
    r = post_json(any_api, "/v1/runs", {"goal": goal}, "operator")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"
    assert _jobs(any_api) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"id": "a\x00b", "kind": "node_congestion", "labels": {"node": "DC-RENO"}},
        {"id": "a", "kind": "node_congestion", "labels": {"node": "DC-\x00RENO"}},
        {"id": "a", "kind": "node_congestion", "labels": {"no\x00de": "DC-RENO"}},
        {"version": "4", "alerts": [{"labels": {"alertname": "x\x00", "node": "DC-RENO"}}]},
        {"title": "backlog", "tags": ["node:DC-\x00RENO"]},
        {"id": "a\ud800", "kind": "node_congestion"},
        {"version": "4", "alerts": [{}, {"labels": {"node": "DC-\udc4a"}, "status": "firing"}]},
    ],
)
def test_alerts_with_nul_bytes_are_refused_and_store_nothing(any_api: Api, body: dict[str, Any]) -> None:
    r = post_json(any_api, "/v1/alerts", body, "operator")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"
    assert _alerts(any_api) == 0
    assert _jobs(any_api) == 0


def test_decisions_with_nul_bytes_are_refused(any_api: Api) -> None:
    out = any_api.propose_bulk_reroute()
    url = f"/v1/approvals/{out.approval_id}"
    for body in (
        {"decision": "reject", "reason": "no\x00"},
        {"decision": "approve", "reason": "ok\x00"},
        {"decision": "approve", "subset": ["ORD\x00"]},
        {"decision": "approve", "expected_args_hash": "\x00"},
        {"decision": "edit", "arguments": {"order_ids": ["ORD-\x00"], "to_node_id": "DC-RENO"}},
        {"decision": "edit", "arguments": {"deep": [{"k\x00": 1}]}},
        {"decision": "edit", "arguments": {"deep": [{"k": ["\udfff"]}]}},
    ):
        r = post_json(any_api, url, body, "approver")
        assert r.status_code == 422, (body, r.text)
    assert any_api.actx.guard.approvals.get(out.approval_id).status.value == "pending"


@pytest.mark.parametrize("after_seq", [2**31, 2**31 + 1, 2**62, 2**63, 2**64, 10**30])
def test_audit_after_seq_past_the_column_is_422(any_api: Api, after_seq: int) -> None:
    r = any_api.client.get("/v1/audit", params={"after_seq": after_seq}, headers=any_api.as_("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"


def test_audit_after_seq_at_the_bound_is_fine(any_api: Api) -> None:
    r = any_api.client.get("/v1/audit", params={"after_seq": 2**31 - 1}, headers=any_api.as_("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["records"] == []


@pytest.mark.parametrize(
    "body",
    [
        (b"[[[[" * 100_000, ""),
        (b"\xff\xfe not utf-8", ""),
        (b"{", ""),
        (b"[]", ""),
        (b'"text"', ""),
        (b'{"id": 1}', ""),
        (b'{"version": "4", "alerts": 3}', "alertmanager"),
        (b'{"version": [], "alerts": -1}', "alertmanager"),
        (b'{"title": "x", "tags": 2.5}', "datadog"),
    ],
    ids=["deep", "not-utf8", "truncated", "array", "string", "wrong-type", "am-int", "am-neg", "dd-float"],
)
def test_malformed_alert_bodies_are_4xx(any_api: Api, body: tuple[bytes, str]) -> None:
    raw, source = body
    r = any_api.client.post(
        "/v1/alerts" + (f"?source={source}" if source else ""),
        content=raw,
        headers={**any_api.as_("operator"), "content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_a_value_the_database_refuses_is_a_422_not_a_500(api: Api) -> None:
    """The safety net under the route-level bounds: a DataError that slips through is the request's fault."""
    app: FastAPI = api.app

    def refuse() -> None:
        raise DataError("SELECT 1", {}, ValueError("integer out of range"))

    app.add_api_route("/v1/test-data-error", refuse, methods=["GET"])
    r = api.client.get("/v1/test-data-error")
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert "integer out of range" not in r.text  # the driver's message stays in the log


# --- console sessions on both backends --------------------------------------------------------------


def test_console_session_records_on_each_backend(db: Database) -> None:
    store = SessionStore(db)
    who = Principal(id="amir", roles=frozenset({Role.APPROVER}), key_id="k1")
    now = time.time()
    sid = store.open(who, now=now, ttl_s=60)
    assert store.active(sid, key_id="k1", principal="amir", now=now + 1)
    assert not store.active(sid, key_id="k2", principal="amir", now=now + 1)
    assert not store.active(sid, key_id="k1", principal="amir", now=now + 61)
    assert store.end(sid, now=now + 2)
    assert not store.end(sid, now=now + 3)
    assert not store.active(sid, key_id="k1", principal="amir", now=now + 4)
    assert not store.active("nope", key_id="k1", principal="amir", now=now)


def test_guard_is_the_outermost_layer(api: Api) -> None:
    assert getattr(api.app.user_middleware[0], "cls", None) is RequestGuard


@pytest.mark.parametrize(("announced", "status"), [("9" * 40, 413), ("1_000", 400), ("-1", 400), ("0x10", 400)])
def test_odd_content_lengths_are_refused_unread(api: Api, announced: str, status: int) -> None:
    sent = call(api.app, "POST", "/v1/runs", {**api.as_("operator"), "content-length": announced}, chunks=4)
    assert sent.status == status
    assert sent.bytes_read == 0


def test_the_openapi_schema_documents_the_nul_rule(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    goal = schema["components"]["schemas"]["RunCreate"]["properties"]["goal"]
    assert goal["not"] == {"pattern": "\x00"}
    alert_body = schema["paths"]["/v1/alerts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    generic = alert_body["anyOf"][0]
    assert generic["properties"]["id"]["not"] == {"pattern": "\x00"}
    assert generic["properties"]["labels"]["propertyNames"] == {"not": {"pattern": "\x00"}}
