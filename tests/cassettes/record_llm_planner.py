"""Re-record ``llm_planner_stub.yaml``: the real ``ChatOpenAI`` HTTP path against a LOCAL SCRIPTED
STUB SERVER on loopback. The stub always answers with one fixed tool call; it is not a model, and
the cassette must never be presented as a model's answer.

Run: ``.venv/bin/python -m tests.cassettes.record_llm_planner``
"""

from __future__ import annotations

import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import vcr
from langchain_openai import ChatOpenAI

from agents.llm_planner import LLMPlanner
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert
from core.db import make_database, migrate
from tests.graphs.support import congest, congestion_alert
from tests.tools.conftest import build_net

HERE = Path(__file__).parent
CASSETTE = HERE / "llm_planner_stub.yaml"
PORT = 18765
BASE_URL = f"http://127.0.0.1:{PORT}/v1"
STUB_MODEL = "local-scripted-stub-not-a-real-model"
HEADER = (
    "# RECORDED AGAINST A LOCAL SCRIPTED STUB SERVER (tests/cassettes/record_llm_planner.py), NOT A REAL MODEL.\n"
    "# The response below is a fixed, hand-written tool call; it shows the ChatOpenAI HTTP path only.\n"
)


def stub_handler(tool_call: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Stub(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            body = {
                "id": "chatcmpl-stub-1",
                "object": "chat.completion",
                "created": 0,
                "model": STUB_MODEL,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {
                            "role": "assistant",
                            "content": "SCRIPTED STUB RESPONSE (not a real model): reroute three orders.",
                            "tool_calls": [
                                {
                                    "id": "call_stub_1",
                                    "type": "function",
                                    "function": {"name": tool_call["name"], "arguments": json.dumps(tool_call["args"])},
                                }
                            ],
                        },
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Stub


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{tmp}/orderops.db")
        migrate(db)
        net = build_net(db)
        node, target = congest(net)
        ids = [o.id for o in net.movable(node)][:3]
        tool_call = {"name": "reroute_orders", "args": {"order_ids": ids, "to_node_id": target, "reason": "stub"}}
        server = HTTPServer(("127.0.0.1", PORT), stub_handler(tool_call))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            CASSETTE.unlink(missing_ok=True)
            model = ChatOpenAI(model=STUB_MODEL, base_url=BASE_URL, api_key=lambda: "sk-recording", max_retries=0)
            planner = LLMPlanner(model, fallback=PlaybookPlanner(), model_name=STUB_MODEL)
            with vcr.use_cassette(str(CASSETTE), record_mode="all", filter_headers=["authorization", "api-key"]):
                plan = planner.plan(triage_alert(congestion_alert(node), net.gateway.env), net.gateway.env)
        finally:
            server.shutdown()
            db.dispose()
    CASSETTE.write_text(HEADER + CASSETTE.read_text())
    print(f"recorded {CASSETTE}: {[(s.tool, s.args) for s in plan.steps]}")


if __name__ == "__main__":
    main()
