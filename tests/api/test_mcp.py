"""`orderops mcp`: an MCP client (the SDK's own) against OrderOps on a generated network.

The client lists the tools, reads a run, asks for a reroute that waits for approval, carries it out
once a person approved it (once: a second call changes nothing), cannot write with a viewer key, and
the audit rows name the MCP client. The in-memory transport covers the handlers; one test runs the
streamable-HTTP app under uvicorn on loopback, where each request's API key decides who acts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from api.auth import ApiKeyStore, Principal, Role, create_key
from api.bootstrap import AppContext
from api.mcp_server import EXECUTE_APPROVED, SUBMIT_DOCUMENT, OrderOpsMcp, build_server, http_app
from api.worker_dbos import DbosWorker
from core.db import Database
from core.domain import CustomerTier, NodeStatus
from guardrails.audit import EventType
from guardrails.calls import Actor
from services.approvals import decide_step
from tests.api.conftest import make_context
from tests.graphs.support import congest
from tests.tools.conftest import Net, build_net
from tools.read import READ_TOOLS
from tools.write import WRITE_TOOLS

CLIENT = types.Implementation(name="test-client", version="1.0")
APPROVER = Actor(kind="user", id="amir", roles=frozenset({"approver", "viewer"}))


@dataclass
class Mcp:
    net: Net
    actx: AppContext
    keys: ApiKeyStore
    key: dict[str, str]

    def who(self, role: str) -> Principal:
        found = self.keys.authenticate(self.key[role])
        assert found is not None
        return found

    def server(self, role: str) -> Any:
        """The MCP server as stdio serves it: acting as the person of ``role``'s key."""
        return build_server(OrderOpsMcp(actx=self.actx, keys=self.keys, principal=self.who(role)))

    def reroute_args(self, n: int = 40) -> dict[str, Any]:
        """A bulk reroute off the busiest DC: the default policy wants an approver for it."""
        src = self.net.busiest_dc()
        ids = [o.id for o in self.net.movable(src)][:n]
        return {"order_ids": ids, "to_node_id": self.net.other_dc(src), "reason": "congestion"}


@pytest.fixture
def env(sqlite_db: Database, tmp_path: Path) -> Mcp:
    net = build_net(sqlite_db)
    home = tmp_path / "home"
    keys = ApiKeyStore(sqlite_db, home=home)
    key = {
        "viewer": create_key(keys, "vic", [Role.VIEWER]),
        "operator": create_key(keys, "otto", [Role.OPERATOR]),
        "approver": create_key(keys, "amir", [Role.APPROVER]),
    }
    return Mcp(net=net, actx=make_context(net, home), keys=keys, key=key)


def call(server: Any, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async def go() -> types.CallToolResult:
        async with Client(server, client_info=CLIENT) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(go)


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def test_the_client_lists_the_tools_and_resources(env: Mcp) -> None:
    async def go() -> tuple[types.ListToolsResult, types.ListResourcesResult, types.ListResourceTemplatesResult]:
        async with Client(env.server("viewer"), client_info=CLIENT) as client:
            return await client.list_tools(), await client.list_resources(), await client.list_resource_templates()

    tools, resources, templates = anyio.run(go)
    by_name = {t.name: t for t in tools.tools}
    expected = {t.name for t in READ_TOOLS} | {t.name for t in WRITE_TOOLS} | {EXECUTE_APPROVED, SUBMIT_DOCUMENT}
    assert expected <= set(by_name)
    reroute = by_name["reroute_orders"]
    assert "order_ids" in reroute.input_schema["properties"]
    assert "idempotency_key" in reroute.input_schema["properties"]
    assert reroute.annotations is not None
    assert reroute.annotations.read_only_hint is False
    read = by_name["get_node_load"].annotations
    assert read is not None
    assert read.read_only_hint is True
    assert {str(r.uri) for r in resources.resources} == {"orderops://runs", "orderops://approvals", "orderops://audit"}
    assert "orderops://runs/{run_id}" in {t.uri_template for t in templates.resource_templates}


def test_a_read_goes_through_the_gateway_and_is_audited(env: Mcp) -> None:
    out = call(env.server("viewer"), "get_node_load", {})
    assert not out.is_error
    assert out.structured_content is not None
    nodes = out.structured_content["result"]["nodes"]
    assert {n["node_id"] for n in nodes} == {n.id for n in env.net.adapters.wms.list_nodes()}
    [row] = env.actx.guard.audit.list(event_type=EventType.EXECUTED)
    assert row.tool == "get_node_load"
    assert row.actor == "agent:mcp:test-client@1.0"
    assert (row.run_id or "").startswith("mcp:vic:")


def test_the_client_reads_a_run(env: Mcp) -> None:
    node, _ = congest(env.net)
    from services.runs import StartRun, queue_run

    cmd = StartRun(goal=f"{node} is congested, move orders away", requested_by="otto")
    queue_run(env.net.db, cmd)
    with DbosWorker(env.actx, planner="playbook", worker_id="w") as worker:
        assert worker.run_once() is not None

    async def go() -> types.ReadResourceResult:
        async with Client(env.server("viewer"), client_info=CLIENT) as client:
            return await client.read_resource(f"orderops://runs/{cmd.run_id}")

    [content] = anyio.run(go).contents
    assert isinstance(content, types.TextResourceContents)
    run = json.loads(content.text)
    assert run["id"] == cmd.run_id
    assert run["status"] == "awaiting_approval"
    assert run["approvals"], "the parked run lists what waits for a person"


def test_a_reroute_waits_for_approval_then_executes_once(env: Mcp) -> None:
    args = env.reroute_args()
    before = env.net.snapshot()
    parked = call(env.server("operator"), "reroute_orders", args)
    assert not parked.is_error, text_of(parked)
    assert parked.structured_content is not None
    approval_id = parked.structured_content["approval_id"]
    said = text_of(parked)
    assert said.startswith(f"waiting for approval {approval_id}")
    assert f"orderops approvals approve {approval_id}" in said
    assert f"/console/approvals/{approval_id}" in said
    assert env.net.snapshot() == before  # nothing changed while it waits
    req = env.actx.guard.approvals.get(approval_id)
    assert req.requester_id == "otto"  # the key's person asked, so otto may not approve it himself

    # Asking to carry it out before anyone decided changes nothing and says it still waits.
    early = call(env.server("operator"), EXECUTE_APPROVED, {"approval_id": approval_id})
    assert text_of(early).startswith(f"waiting for approval {approval_id}")
    assert env.net.snapshot() == before

    # A person approves, as the console does (services.approvals.decide_step through the gateway).
    decide_step(env.actx.gateway, env.actx.db, approval_id, approver=APPROVER, decision="approve", enqueue=False)
    done = call(env.server("operator"), EXECUTE_APPROVED, {"approval_id": approval_id})
    assert not done.is_error, text_of(done)
    assert done.structured_content is not None
    assert done.structured_content["status"] == "executed"
    moved = done.structured_content["result"]["done"]
    assert moved
    assert {o.node_id for o in env.net.adapters.oms.get_orders(moved)} == {args["to_node_id"]}
    after = env.net.snapshot()
    assert after != before

    again = call(env.server("operator"), EXECUTE_APPROVED, {"approval_id": approval_id})
    assert again.structured_content is not None
    assert again.structured_content["status"] == "replayed"
    assert env.net.snapshot() == after  # the second call changed nothing

    rows = env.actx.guard.audit.list(call_id=req.call_id)
    executed = [r for r in rows if r.event_type == EventType.EXECUTED]
    assert len(executed) == 1
    assert executed[0].approver == "amir"
    # the audit names the MCP client (and, through the run id, the person it acted for)
    proposed = next(r for r in rows if r.event_type == EventType.PROPOSED)
    assert proposed.actor == executed[0].actor == "agent:mcp:test-client@1.0"
    assert (proposed.run_id or "").startswith("mcp:otto:")


def test_a_rejected_write_and_a_runs_own_approval_are_never_carried_out_here(env: Mcp) -> None:
    parked = call(env.server("operator"), "reroute_orders", env.reroute_args())
    assert parked.structured_content is not None
    approval_id = parked.structured_content["approval_id"]
    decide_step(
        env.actx.gateway, env.actx.db, approval_id, approver=APPROVER, decision="reject", reason="no", enqueue=False
    )
    before = env.net.snapshot()
    out = call(env.server("operator"), EXECUTE_APPROVED, {"approval_id": approval_id})
    assert out.is_error
    assert text_of(out).startswith(f"approval {approval_id} is rejected: nothing will be executed")

    # An approval of an exception run (here the agent ledger "run-1") is its run's to carry out.
    from tests.tools.conftest import AGENT

    args = env.reroute_args()
    theirs = env.net.gateway.propose("reroute_orders", args, actor=AGENT, run=env.net.run(), idempotency_key="k")
    assert theirs.approval_id is not None
    decide_step(env.actx.gateway, env.actx.db, theirs.approval_id, approver=APPROVER, decision="approve", enqueue=False)
    refused = call(env.server("operator"), EXECUTE_APPROVED, {"approval_id": theirs.approval_id})
    assert refused.is_error
    assert "belongs to run run-1, which carries it out itself" in text_of(refused)
    assert env.net.snapshot() == before


def test_a_viewer_key_cannot_write(env: Mcp) -> None:
    before = env.net.snapshot()
    out = call(env.server("viewer"), "reroute_orders", env.reroute_args())
    assert out.is_error
    assert text_of(out).startswith("denied reroute_orders: vic holds viewer, not operator")
    assert env.net.snapshot() == before
    assert env.actx.guard.approvals.list_pending() == []
    [row] = env.actx.guard.audit.list(event_type=EventType.DENIED)
    assert row.tool == "reroute_orders"
    assert row.actor == "agent:mcp:test-client@1.0"
    for name, arguments in ((EXECUTE_APPROVED, {"approval_id": "x"}), (SUBMIT_DOCUMENT, {"filename": "po.csv"})):
        refused = call(env.server("viewer"), name, arguments)
        assert refused.is_error
        assert "not operator" in text_of(refused)


def test_malformed_arguments_are_denied_by_the_gateway_and_audited(env: Mcp) -> None:
    out = call(env.server("operator"), "reroute_orders", {"order_ids": [], "to_node_id": "DC-X"})
    assert out.is_error
    assert text_of(out).startswith("denied reroute_orders: malformed arguments")
    [row] = env.actx.guard.audit.list(event_type=EventType.DENIED)
    assert row.actor == "agent:mcp:test-client@1.0"


def test_a_small_allowed_write_executes_at_once_and_its_key_replays(env: Mcp) -> None:
    ids = [o.id for o in env.net.small_safe_orders(2)]
    args = {"order_ids": ids, "reason": "customer asked", "idempotency_key": "hold-1"}
    first = call(env.server("operator"), "hold_orders", args)
    assert first.structured_content is not None, text_of(first)
    assert first.structured_content["status"] == "executed", text_of(first)
    assert text_of(first).startswith("executed hold_orders: 2 changed")
    second = call(env.server("operator"), "hold_orders", args)
    assert second.structured_content is not None
    assert second.structured_content["status"] == "replayed"
    assert len(env.actx.guard.audit.list(event_type=EventType.EXECUTED)) == 1


def test_audit_resources_follow_the_roles(env: Mcp) -> None:
    call(env.server("viewer"), "get_node_load", {})

    async def read(role: str, uri: str) -> Any:
        async with Client(env.server(role), client_info=CLIENT) as client:
            try:
                [content] = (await client.read_resource(uri)).contents
            except MCPError as exc:
                return exc.message
            assert isinstance(content, types.TextResourceContents)
            return json.loads(content.text)

    page = anyio.run(read, "approver", "orderops://audit")
    assert [r["tool"] for r in page["records"]] == ["get_node_load"]
    assert "vic needs the role approver or admin" in anyio.run(read, "viewer", "orderops://audit")
    assert "run_nope" in anyio.run(read, "viewer", "orderops://runs/run_nope")


# --- streamable HTTP: the key of each request decides -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_mcp(actx: AppContext, keys: ApiKeyStore) -> Iterator[str]:
    """The MCP server over streamable HTTP under uvicorn on a free loopback port, in a thread; its URL."""
    port = _free_port()
    app = http_app(OrderOpsMcp(actx=actx, keys=keys), host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the MCP HTTP server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def http_url(env: Mcp) -> Iterator[str]:
    with serve_mcp(env.actx, env.keys) as url:
        yield url


def http_call(url: str, key: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async def go() -> types.CallToolResult:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            Client(streamable_http_client(url, http_client=http), client_info=CLIENT) as client,
        ):
            return await client.call_tool(name, arguments)

    return anyio.run(go)


def test_over_http_each_request_key_decides_who_acts(env: Mcp, http_url: str) -> None:
    unauthenticated = httpx2.post(http_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert unauthenticated.status_code == 401
    args = env.reroute_args()
    refused = http_call(http_url, env.key["viewer"], "reroute_orders", args)
    assert refused.is_error
    assert "vic holds viewer" in text_of(refused)
    parked = http_call(http_url, env.key["operator"], "reroute_orders", args)
    assert text_of(parked).startswith("waiting for approval ")
    assert parked.structured_content is not None
    req = env.actx.guard.approvals.get(parked.structured_content["approval_id"])
    assert req.requester_id == "otto"
    assert env.net.adapters.wms.get_node(args["to_node_id"]).status is not NodeStatus.CLOSED


# --- intake through MCP -----------------------------------------------------------------------------


def test_a_submitted_document_goes_through_intake_and_the_gateway(env: Mcp) -> None:
    from tests.intake.test_pipeline import Line, x12_850

    oms = env.net.adapters.oms
    c = next(c for c in oms.list_customers() if c.tier is CustomerTier.STANDARD and c.edi_id is not None)
    assert c.edi_id is not None
    sku = next(p.sku for p in oms.list_products() if not (p.hazmat or p.cold_chain or p.list_price > 200))
    lines: list[Line] = [(3, "EA", oms.prices(c.id, [sku])[sku], "VN", sku, "")]
    doc = x12_850(c.edi_id, "PO-MCP-1", oms.addresses(c.id)[0], lines).decode()

    out = call(env.server("operator"), SUBMIT_DOCUMENT, {"filename": "po.x12", "content": doc})
    assert not out.is_error, text_of(out)
    assert out.structured_content is not None
    assert out.structured_content["channel"] == "mcp"
    [order] = out.structured_content["orders"]
    assert order["decision"]["status"] == "created", order
    assert "PO PO-MCP-1: created as order" in text_of(out)
    created = oms.get_order(order["decision"]["order_id"])
    assert created.external_ref == "PO-MCP-1"
    [row] = env.actx.guard.audit.list(event_type=EventType.EXECUTED)
    assert row.tool == "create_order"


# --- stdio: `orderops mcp` as a subprocess, as a desktop client launches it -------------------------


def test_orderops_mcp_over_stdio_acts_as_the_key_holder(env: Mcp) -> None:
    import os
    import sys

    from mcp import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from api.cli import main; main()", "mcp"],
        env={
            **os.environ,
            "ORDEROPS_HOME": str(env.actx.settings.home),
            "DATABASE_URL": env.net.db.url,
            "ORDEROPS_API_KEY": env.key["viewer"],
        },
        cwd=str(Path(__file__).resolve().parents[2]),
    )

    async def go() -> tuple[list[str], types.CallToolResult]:
        async with Client(params, client_info=CLIENT) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            return tools, await client.call_tool("reroute_orders", env.reroute_args())

    tools, refused = anyio.run(go)
    assert "reroute_orders" in tools
    assert refused.is_error
    assert "vic holds viewer" in text_of(refused)
    [row] = env.actx.guard.audit.list(event_type=EventType.DENIED)
    assert row.actor == "agent:mcp:test-client@1.0"
