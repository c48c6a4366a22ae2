"""A run with a model can be recorded (vcrpy, one cassette per case) and replayed offline; a replayed
run says so in its report. The "model" here is a LOCAL SCRIPTED STUB SERVER on loopback (the one
tests/cassettes uses), not a real model: this tests the recording mechanics only."""

from __future__ import annotations

import threading
from http.server import HTTPServer
from pathlib import Path

from evals.report import render_markdown
from evals.runner import EvalConfig, open_results_db, run_eval
from tests.cassettes.record_llm_planner import stub_handler

CASE = ("congestion-01",)


def _config(cassettes: Path, port: int, *, replay_only: bool) -> EvalConfig:
    return EvalConfig(
        suites=("exceptions",), cases=CASE, workers=1, planner="llm", model="local-scripted-stub",
        llm_base_url=f"http://127.0.0.1:{port}/v1", llm_api_key="secret-test-key",
        cassettes=cassettes, replay_only=replay_only,
    )  # fmt: skip


def test_record_then_replay_offline(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), stub_handler({"name": "get_node_load", "args": {}}))
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cassettes = tmp_path / "cassettes"
    db = open_results_db(f"sqlite:///{tmp_path / 'results.sqlite'}")
    try:
        recorded = run_eval(_config(cassettes, port, replay_only=False), results_db=db, workdir=tmp_path / "w1")
    finally:
        server.shutdown()
        server.server_close()
    files = sorted(cassettes.glob("*.yaml"))
    assert [f.name for f in files] == ["exceptions-congestion-01-t0.yaml"]
    text = files[0].read_text()
    assert "chat/completions" in text
    assert "secret-test-key" not in text  # auth headers never reach a cassette
    assert recorded.results[0].metrics["replayed_model_calls"] is False

    # the endpoint is gone now: only the cassette can answer
    replayed = run_eval(_config(cassettes, port, replay_only=True), results_db=db, workdir=tmp_path / "w2")
    first, again = recorded.results[0], replayed.results[0]
    assert again.metrics["replayed_model_calls"] is True
    assert again.error is None
    assert (again.passed, again.metrics["status"]) == (first.passed, first.metrics["status"])
    assert "REPLAYED" in render_markdown(replayed)
    assert "REPLAYED" not in render_markdown(recorded)
    db.dispose()
