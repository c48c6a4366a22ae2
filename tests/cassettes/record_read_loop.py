"""Record ONE whole exception run with the LLM planner's agent loop (reads through the gateway, then
a proposal) against the REAL local model, into ``tests/cassettes/real/loop-<case>.yaml``.

Needs the server of ``../shared/tools/local-llm/`` (``serve.sh``; 127.0.0.1:8088). Slow: minutes
per model call on 2 shared cores, so the loop is held to ``READ_STEPS`` read steps here. The header
says what answered and what came of it, including each read the model made (tool, arguments,
status, tokens); ``tests/graphs/test_llm_read_loop_recorded.py`` replays it.

Run: ``PYTHONPATH=. .venv/bin/python -m tests.cassettes.record_read_loop [CASE]`` (default outage-03).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import vcr
from langchain_openai import ChatOpenAI

from agents.llm_planner import LLMPlanner
from agents.playbooks import PlaybookPlanner
from guardrails.policy import PolicyEngine
from tests.cassettes.real_model import (
    BASE_URL,
    MODEL,
    MODEL_FILE,
    REAL,
    RUNTIME,
    RUNTIME_VERSION,
    run_scenario,
    write_header,
)
from tools.llm import ResolvedMode, StructuredModel

READ_STEPS = 2
MODE: ResolvedMode = "json_schema"
"""What the probe picked for this server (tests/cassettes/real/probe.yaml)."""
FILTER = {"filter_headers": ["authorization", "api-key"]}


def chat() -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL, base_url=BASE_URL, api_key=lambda: "none", timeout=1800, max_retries=0,
        temperature=0, seed=0, max_completion_tokens=700,
    )  # fmt: skip


def loop_planner(model: StructuredModel) -> LLMPlanner:
    """The planner as recorded and replayed: one repair round, ``READ_STEPS`` read steps."""
    return LLMPlanner(model, fallback=PlaybookPlanner(), model_name=MODEL, policy=PolicyEngine.from_path(None),
                      max_repairs=1, attempts=1, max_read_steps=READ_STEPS)  # fmt: skip


def reads_of(planner: LLMPlanner) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("step", "tool", "args", "status", "tokens")} for r in planner.last_reads]


def call_of(r: Any) -> dict[str, Any]:
    return {"latency_s": r.latency_s, "in": r.input_tokens, "out": r.output_tokens, "est": r.prompt_tokens_est,
            "ok": r.ok}  # fmt: skip


def record(case: str) -> None:
    path = REAL / f"loop-{case}.yaml"
    path.unlink(missing_ok=True)
    model = StructuredModel(chat(), mode=MODE, attempts=1, max_repairs=1)
    planner = loop_planner(model)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, vcr.use_cassette(str(path), record_mode="all", **FILTER):
        outcome = run_scenario(case, planner, Path(tmp))
    outcome |= {
        "reads": reads_of(planner),
        "calls": [call_of(r) for r in model.calls],
        "wall_s": round(time.monotonic() - t0, 1),
    }
    fields = {
        "model": MODEL,
        "model_file": MODEL_FILE,
        "runtime": RUNTIME,
        "runtime_version": RUNTIME_VERSION,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "mode": MODE,
        "case": case,
        "outcome": json.dumps(outcome, sort_keys=True),
    }
    write_header(path, fields)
    text = path.read_text()
    path.write_text(text.replace("(tests/cassettes/record_real_model.py)", "(tests/cassettes/record_read_loop.py)", 1))
    print(json.dumps({"loop": case, **outcome}), flush=True)


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else "outage-03")
