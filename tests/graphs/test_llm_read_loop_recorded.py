"""The LLM planner's agent loop replayed from a cassette RECORDED AGAINST A REAL MODEL
(Qwen2.5-Coder-1.5B-Instruct on llama.cpp via xllamacpp; see the cassette's header and
tests/cassettes/record_read_loop.py). No network: vcrpy answers with what the model answered.

The run is an exception-suite scenario rebuilt on its suite network: the reads the model asked for
go through the gateway again, its proposal is validated, simulated, judged, approved and executed
again, and the suite scores it as when it was recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import vcr

from evals.llm_reference import header
from tests.cassettes.real_model import MODEL, REAL, run_scenario
from tests.cassettes.record_read_loop import chat, loop_planner, reads_of
from tools.llm import StructuredModel

LOOPS = sorted(REAL.glob("loop-*.yaml"))


@pytest.mark.parametrize("path", LOOPS, ids=[p.stem for p in LOOPS])
def test_recorded_real_model_loop_replays_with_the_same_reads_and_verdict(path: Path, tmp_path: Path) -> None:
    meta = header(path)
    assert meta["model"] == MODEL
    assert "llama.cpp" in meta["runtime"]
    outcome = json.loads(meta["outcome"])
    model = StructuredModel(chat(), mode=meta["mode"], attempts=1, max_repairs=1)  # type: ignore[arg-type]
    planner = loop_planner(model)
    with vcr.use_cassette(str(path), record_mode="none", filter_headers=["authorization"]) as tape:
        got = run_scenario(meta["case"], planner, tmp_path)
        assert tape.play_count == len(tape.data), "every recorded request was made again, no more"
    assert reads_of(planner) == outcome["reads"]
    for key in ("triage_kind", "status", "passed", "planner", "fallback", "steps", "orders_changed"):
        assert got[key] == outcome[key], key
    assert got["unapproved_writes"] == 0
