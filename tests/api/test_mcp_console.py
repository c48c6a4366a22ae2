"""An MCP client, over the real streamable-HTTP transport, driven to the end with a person in the console.

The SDK's own client lists the tools, reads a parked run, and asks for a bulk reroute that comes
back "waiting for approval"; an approver approves it in the console (signed in, CSRF token, the
form's POST) and that decision carries the write out — once: a second console click, the client's
``execute_approved`` and the CLI-style replay change nothing more. A viewer's key cannot write, and
every audit row of the call names the MCP client as its ``initialize`` named itself (name@version).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from api.mcp_server import EXECUTE_APPROVED
from core.db import Database
from guardrails.approvals import ApprovalStatus
from guardrails.audit import EventType
from tests.api.conftest import Api, build_api
from tests.api.test_mcp import serve_mcp, text_of
from tests.console.conftest import start_parked_run

CLIENT = types.Implementation(name="desk-agent", version="2.5.1")
HX = {"HX-Request": "true"}


@pytest.fixture
def api(sqlite_db: Database, tmp_path: Path) -> Iterator[Api]:
    built = build_api(sqlite_db, tmp_path / "home")
    with built.client:
        yield built


@pytest.fixture
def mcp_url(api: Api) -> Iterator[str]:
    with serve_mcp(api.actx, api.keys) as url:
        yield url


def session(url: str, key: str, steps: Any) -> Any:
    """Run ``steps(client)`` in one MCP session over streamable HTTP, as the holder of ``key``."""

    async def go() -> Any:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            Client(streamable_http_client(url, http_client=http), client_info=CLIENT) as client,
        ):
            return await steps(client)

    return anyio.run(go)


def reroute_args(api: Api, n: int = 40) -> dict[str, Any]:
    src = api.net.busiest_dc()
    ids = [o.id for o in api.net.movable(src)][:n]
    return {"order_ids": ids, "to_node_id": api.net.other_dc(src), "reason": "congestion"}


def console_approve(api: Api, approval_id: str) -> str:
    """The approver signs in to the console and presses approve on the request's card."""
    c = TestClient(api.app)
    c.get("/console/login")
    login = {"api_key": api.key["approver"], "csrf_token": c.cookies["oo_csrf"], "next": "/console/approvals"}
    assert c.post("/console/login", data=login, follow_redirects=False).status_code == 303
    r = c.post(
        f"/console/approvals/{approval_id}/decide",
        data={"action": "approve", "csrf_token": c.cookies["oo_csrf"]},
        headers=HX,
    )
    assert r.status_code == 200, r.text
    return r.text


def test_an_mcp_reroute_waits_then_the_console_approval_executes_it_once(api: Api, mcp_url: str) -> None:
    run, _ = start_parked_run(api)
    args = reroute_args(api)
    before = api.net.snapshot()

    async def ask(client: Client) -> tuple[list[str], dict[str, Any], types.CallToolResult]:
        tools = [t.name for t in (await client.list_tools()).tools]
        [content] = (await client.read_resource(f"orderops://runs/{run.run_id}")).contents
        assert isinstance(content, types.TextResourceContents)
        return tools, json.loads(content.text), await client.call_tool("reroute_orders", args)

    tools, read_run, parked = session(mcp_url, api.key["operator"], ask)
    assert {"reroute_orders", "get_node_load", EXECUTE_APPROVED} <= set(tools)
    assert read_run["id"] == run.run_id
    assert read_run["status"] == "awaiting_approval"
    assert not parked.is_error, text_of(parked)
    assert parked.structured_content is not None
    approval_id = parked.structured_content["approval_id"]
    assert text_of(parked).startswith(f"waiting for approval {approval_id}")
    assert api.net.snapshot() == before

    page = console_approve(api, approval_id)
    assert "reroute_orders executed" in page
    req = api.actx.guard.approvals.get(approval_id)
    assert req.status == ApprovalStatus.APPROVED
    after = api.net.snapshot()
    assert after != before
    moved = [o for o in api.net.adapters.oms.get_orders(args["order_ids"]) if o.node_id == args["to_node_id"]]
    assert moved, "the approved reroute moved the orders"

    # Again from the console (a double click), then the client asking for the result: nothing more.
    console_approve(api, approval_id)

    async def result(client: Client) -> types.CallToolResult:
        return await client.call_tool(EXECUTE_APPROVED, {"approval_id": approval_id})

    done = session(mcp_url, api.key["operator"], result)
    assert done.structured_content is not None
    assert done.structured_content["status"] == "replayed"
    assert api.net.snapshot() == after

    rows = api.actx.guard.audit.list(call_id=req.call_id)
    executed = [r for r in rows if r.event_type == EventType.EXECUTED]
    assert len(executed) == 1
    assert executed[0].approver == "amir"
    assert {r.actor for r in rows if r.event_type in (EventType.PROPOSED, EventType.EXECUTED)} == {
        "agent:mcp:desk-agent@2.5.1"
    }
    assert (executed[0].run_id or "").startswith("mcp:otto:")


def test_a_viewer_key_cannot_write_over_http(api: Api, mcp_url: str) -> None:
    before = api.net.snapshot()

    async def write(client: Client) -> types.CallToolResult:
        return await client.call_tool("reroute_orders", reroute_args(api))

    out = session(mcp_url, api.key["viewer"], write)
    assert out.is_error
    assert "vic holds viewer, not operator" in text_of(out)
    assert api.net.snapshot() == before
    assert api.actx.guard.approvals.list_pending() == []
    [row] = api.actx.guard.audit.list(event_type=EventType.DENIED)
    assert row.actor == "agent:mcp:desk-agent@2.5.1"


def test_an_api_approval_carries_out_an_mcp_write_once_too(api: Api, mcp_url: str) -> None:
    args = reroute_args(api)

    async def ask(client: Client) -> types.CallToolResult:
        return await client.call_tool("reroute_orders", args)

    parked = session(mcp_url, api.key["operator"], ask)
    assert parked.structured_content is not None
    approval_id = parked.structured_content["approval_id"]
    before = api.net.snapshot()
    r = api.client.post(f"/v1/approvals/{approval_id}", json={"decision": "approve"}, headers=api.as_("approver"))
    assert r.status_code == 200, r.text
    after = api.net.snapshot()
    assert after != before
    again = api.client.post(f"/v1/approvals/{approval_id}", json={"decision": "approve"}, headers=api.as_("approver"))
    assert again.status_code == 409
    assert api.net.snapshot() == after
    req = api.actx.guard.approvals.get(approval_id)
    executed = [r for r in api.actx.guard.audit.list(call_id=req.call_id) if r.event_type == EventType.EXECUTED]
    assert [r.actor for r in executed] == ["agent:mcp:desk-agent@2.5.1"]
