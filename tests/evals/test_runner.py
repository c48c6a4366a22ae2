"""The eval runner works on a tiny subset: cases run on their own databases, results are stored
and read back, reports render, compare flags a deliberately broken change. Scores are not tested."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli_eval import eval_app
from evals.compare import compare_runs
from evals.metrics import CaseResult, exceptions_metrics, mean_pass_hat_k, pass_hat_k, security_metrics
from evals.report import render_html, render_markdown, write_reports
from evals.runner import EvalConfig, EvalRun, load_run, open_results_db, run_eval

SMALL = ("congestion-01", "noop-01")


def test_pass_hat_k_matches_the_tau_bench_estimator() -> None:
    assert pass_hat_k(4, 4, 2) == 1.0
    assert pass_hat_k(2, 4, 2) == pytest.approx(1 / 6)
    assert pass_hat_k(1, 4, 2) == 0.0
    assert mean_pass_hat_k({"a": [True, True], "b": [True, False]}, 1) == pytest.approx(0.75)
    assert mean_pass_hat_k({"a": [True, True], "b": [True, False]}, 2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="pass"):
        pass_hat_k(1, 2, 3)


def test_metrics_count_safety_fields() -> None:
    rs = [
        CaseResult(suite="exceptions", case_id="x", category="c", trial=0, passed=True, metrics={"tool_calls": 4}),
        CaseResult(suite="exceptions", case_id="x", category="c", trial=1, passed=False,
                   metrics={"tool_calls": 2, "unapproved_writes": 1}),
    ]  # fmt: skip
    m = exceptions_metrics(rs)
    assert m["success_rate"] == 0.5
    assert m["unapproved_writes"] == 1
    assert m["pass^2"] == 0.0
    assert m["tool_calls_per_task"] == 3.0
    sec = security_metrics(
        [
            CaseResult(suite="security", case_id="a", category="x", passed=False, metrics={"attack_succeeded": True}),
            CaseResult(suite="security", case_id="b", category="x", passed=True, metrics={}),
            CaseResult(suite="security", case_id="c", category="ctl", passed=False,
                       metrics={"control": True, "quarantined": True}),
        ]
    )  # fmt: skip
    assert sec["attack_success_rate"] == 0.5
    assert sec["false_quarantine_rate"] == 1.0


def test_runner_stores_results_and_compare_flags_a_broken_playbook(tmp_path: Path) -> None:
    db = open_results_db(f"sqlite:///{tmp_path / 'results.sqlite'}")
    try:
        good = run_eval(
            EvalConfig(suites=("exceptions",), cases=SMALL, workers=1, trials=2), results_db=db, workdir=tmp_path / "w1"
        )
        # Deliberately broken: the congestion playbook "relieves" a node only above 50 days of backlog.
        bad = run_eval(
            EvalConfig(suites=("exceptions",), cases=SMALL, workers=1, congestion_target_days=50.0),
            results_db=db,
            workdir=tmp_path / "w2",
        )
        stored = load_run(db, good.id)
    finally:
        db.dispose()
    assert len(good.results) == len(SMALL) * 2
    assert {r.case_id for r in stored.results} == set(SMALL)
    assert stored.metrics["exceptions"]["trials"] == 2
    assert "pass^2" in stored.metrics["exceptions"]
    assert stored.code_version
    assert stored.policy_version
    assert all(r.error is None for r in good.results), [r.error for r in good.results]
    c = compare_runs(good, bad, threshold=0.02)
    assert any("success_rate" in r for r in c.regressions)
    assert any("congestion-01" in r for r in c.regressions)
    assert not compare_runs(good, good).regressions
    md = render_markdown(bad)
    assert "congestion-01" in md
    assert "expected" in md
    html = render_html(bad)
    assert "<svg" in html
    assert "http://cdn" not in html
    assert "<script" not in html


def test_cli_run_compare_and_list(tmp_path: Path) -> None:
    runner = CliRunner()
    results = f"sqlite:///{tmp_path / 'r.sqlite'}"
    base = ["run", "--suite", "exceptions", "--case", "closure-01", "--workers", "1", "--results-db", results, "--json"]
    a = runner.invoke(eval_app, [*base, "--out", str(tmp_path / "a")])
    assert a.exit_code == 0, a.output
    b = runner.invoke(eval_app, [*base, "--out", str(tmp_path / "b"), "--congestion-target-days", "50"])
    assert b.exit_code == 0, b.output
    assert (tmp_path / "a" / "report.html").exists()
    assert (tmp_path / "a" / "report.md").exists()
    same = runner.invoke(eval_app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--results-db", results])
    assert same.exit_code == 0, same.output  # closure ignores the congestion target: nothing regressed
    listed = runner.invoke(eval_app, ["list", "--results-db", results, "--json"])
    assert listed.exit_code == 0
    assert listed.output.count('"id"') == 2
    bad_suite = runner.invoke(eval_app, ["run", "--suite", "nope", "--results-db", results])
    assert bad_suite.exit_code == 2


def _run(run_id: str, passed: bool) -> EvalRun:
    results = [
        CaseResult(suite="exceptions", case_id="congestion-02", category="congestion", passed=passed),
        CaseResult(suite="exceptions", case_id="closure-01", category="closure", passed=True),
    ]
    return EvalRun(
        id=run_id, started_at=datetime(2026, 11, 23, tzinfo=UTC), suites=["exceptions"], planner="playbook",
        metrics={"exceptions": exceptions_metrics(results)}, results=results,
    )  # fmt: skip


def test_compare_cli_exits_nonzero_on_regression(tmp_path: Path) -> None:
    write_reports(_run("good", True), tmp_path / "good")
    write_reports(_run("bad", False), tmp_path / "bad")
    out = CliRunner().invoke(eval_app, ["compare", str(tmp_path / "good"), str(tmp_path / "bad")])
    assert out.exit_code == 1, out.output
    assert "regressed" in out.output
    back = CliRunner().invoke(eval_app, ["compare", str(tmp_path / "bad"), str(tmp_path / "good")])
    assert back.exit_code == 0, back.output
    assert "improved" in back.output


def test_security_subset_runs_each_kind(tmp_path: Path) -> None:
    ids = ("sec-alert-plain-cancel-text", "sec-goal-base64", "sec-doc-doc-price-csv", "sec-malformed-zip-bomb",
           "sec-control-po-email")  # fmt: skip
    run = run_eval(EvalConfig(suites=("security",), cases=ids, workers=2), workdir=tmp_path)
    assert {r.case_id for r in run.results} == set(ids)
    assert all(r.error is None for r in run.results), [r.error for r in run.results]
    by_id = {r.case_id: r for r in run.results}
    assert by_id["sec-malformed-zip-bomb"].metrics["quarantined"] is True
    assert by_id["sec-control-po-email"].metrics["control"] is True
    assert run.metrics["security"]["attacks"] == 4


def test_case_time_limit_fails_only_that_case(tmp_path: Path) -> None:
    run = run_eval(
        EvalConfig(suites=("exceptions",), cases=("congestion-01",), workers=1, case_timeout_s=0.01),
        workdir=tmp_path,
    )
    assert len(run.results) == 1
    assert run.results[0].error is not None
    assert run.results[0].error.startswith("timeout")


def test_a_run_is_labelled_with_the_code_it_started_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run in a shared checkout sees commits land while it runs; the code recorded is the
    code read before the cases ran (the modules it imported), not the checkout at its end."""
    import evals.runner as runner

    checkout = {"head": "aaa1111"}
    run_cases = runner.run_tasks

    def cases_while_a_commit_lands(*args: Any, **kwargs: Any) -> Any:
        results = run_cases(*args, **kwargs)
        checkout["head"] = "bbb2222"
        return results

    monkeypatch.setattr(runner, "code_version", lambda repo=None: checkout["head"])
    monkeypatch.setattr(runner, "run_tasks", cases_while_a_commit_lands)
    run = run_eval(EvalConfig(suites=("exceptions",), cases=("noop-01",), workers=1), workdir=tmp_path / "w")
    assert run.code_version == "aaa1111"
