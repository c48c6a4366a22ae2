"""Loud fallbacks: when the model does not plan a run (no model, endpoint down, output unusable after
repairs), the plan, the run report, the CLI and ``orderops llm check`` / ``eval run --planner llm``
say so first; nothing falls back silently."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from rich.console import Console
from typer.testing import CliRunner

from agents.llm_planner import LLMPlanner, make_planner
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert
from api.cli_eval import eval_app
from api.cli_llm import llm_app
from api.cli_runs import render_dry_run, render_report
from core.db import Database
from core.settings import Settings
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, make_plan
from tests.graphs.support import congest, congestion_alert, deps_for
from tests.tools.conftest import Net, build_net
from tools.llm import Capabilities, CapabilityCache, StructuredModel


@pytest.fixture
def congested(sqlite_db: Database) -> tuple[Net, str]:
    net = build_net(sqlite_db)
    node, _ = congest(net)
    return net, node


def prose_model(n: int) -> StructuredModel:
    chat = FakeMessagesListChatModel(responses=[AIMessage(content="I would reroute some orders.")] * n)
    return StructuredModel(chat, mode="json", max_repairs=n - 1)


def test_output_that_never_parses_falls_back_with_the_reason(congested: tuple[Net, str]) -> None:
    net, node = congested
    llm = LLMPlanner(prose_model(3), fallback=PlaybookPlanner(), model_name="prose", max_repairs=2)
    plan = llm.plan(triage_alert(congestion_alert(node), net.gateway.env), net.gateway.env)
    assert plan.planner.startswith("playbook:")
    assert plan.fallback_reason is not None
    assert plan.fallback_reason.startswith("the model's output could not be used")
    assert "no JSON object" in plan.fallback_reason


def test_the_run_report_and_the_cli_say_fallback_first(congested: tuple[Net, str]) -> None:
    net, node = congested
    llm = make_planner(Settings(llm_base_url=None, llm_model=None), fallback=PlaybookPlanner())
    deps = deps_for(net, llm)
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps, saver)
        result = runs.start(alert=congestion_alert(node), run_id="run-fb")
        if result.waiting:
            decisions = [
                {"approval_id": a["approval_id"], "decision": "reject", "reason": "t"} for a in result.approvals
            ]
            result = runs.resume("run-fb", decisions=decisions, approver={"id": "amir", "roles": ["approver"]})
    report = result.report
    assert report is not None
    assert next(iter(report)) == "fallback"
    assert report["fallback"].startswith("FALLBACK: the model did not plan this run (no model is configured)")
    out = Console(record=True, width=200)
    render_report(report, out)
    assert out.export_text().splitlines()[0].startswith("FALLBACK: the model did not plan this run")


def test_a_run_the_model_planned_has_no_fallback_line(congested: tuple[Net, str]) -> None:
    net, node = congested
    ids = [o.id for o in net.movable(node)][:2]
    target = net.other_dc(node)
    answer = {"summary": "move two", "calls": [{"tool": "reroute_orders", "arguments": {"order_ids": ids,
              "to_node_id": target, "reason": "r"}}]}  # fmt: skip
    chat = FakeMessagesListChatModel(responses=[AIMessage(content=json.dumps(answer))])
    llm = LLMPlanner(StructuredModel(chat, mode="json_schema"), fallback=PlaybookPlanner(), model_name="m")
    plan, _ = make_plan(deps_for(net, llm), triage_alert(congestion_alert(node), net.gateway.env))
    assert plan.planner == "llm:m"
    assert [s.tool for s in plan.steps] == ["reroute_orders"]
    out = Console(record=True, width=200)
    render_report({"fallback": None, "run_id": "r", "status": "completed", "plan": {"planner": "llm:m"}}, out)
    assert "FALLBACK" not in out.export_text()


def test_dry_run_says_fallback_first() -> None:
    out = Console(record=True, width=200)
    report = {
        "fallback": "FALLBACK: the model did not plan this run (x); the playbook planner did.",
        "triage": {"summary": "s"},
        "plan": {"planner": "playbook", "summary": "p"},
        "steps": [],
    }
    render_dry_run(report, out)
    assert out.export_text().startswith("FALLBACK: the model did not plan this run (x)")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_eval_with_the_llm_planner_and_no_reachable_model_exits_non_zero(tmp_path: Path) -> None:
    runner = CliRunner()
    none = runner.invoke(eval_app, ["run", "--planner", "llm", "--suite", "exceptions"], obj=Settings(home=tmp_path))
    assert none.exit_code == 3
    assert "no model is configured" in none.output
    down = Settings(home=tmp_path, llm_base_url=f"http://127.0.0.1:{_closed_port()}/v1", llm_model="m")
    gone = runner.invoke(eval_app, ["run", "--planner", "llm", "--suite", "exceptions"], obj=down)
    assert gone.exit_code == 1
    assert "unreachable" in gone.output


@pytest.fixture
def models_endpoint() -> Iterator[str]:
    """A loopback HTTP server that answers ``GET /v1/models`` (reachability only; no model)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = b'{"object": "list", "data": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_llm_check_reports_problems_and_stored_abilities(tmp_path: Path, models_endpoint: str) -> None:
    runner = CliRunner()
    assert runner.invoke(llm_app, ["check"], obj=Settings(home=tmp_path)).exit_code == 3
    down = Settings(home=tmp_path, llm_base_url=f"http://127.0.0.1:{_closed_port()}/v1", llm_model="m")
    assert runner.invoke(llm_app, ["check"], obj=down).exit_code == 1
    settings = Settings(home=tmp_path, llm_base_url=models_endpoint, llm_model="m")
    caps = Capabilities(models_endpoint, "m", native_tools=False, json_schema=True, probed_at="2026-12-06T00:00:00",
                        latency_s=8.3, tokens_per_s=3.7)  # fmt: skip
    CapabilityCache(tmp_path / "llm-capabilities.json").put(caps)
    res = runner.invoke(llm_app, ["check", "--json"], obj=settings)
    CapabilityCache._memory.clear()
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["native_tools"], out["json_schema"], out["mode"], out["cached"]) == (False, True, "json_schema", True)
    assert out["tokens_per_s"] == 3.7
