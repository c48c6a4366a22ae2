"""The forecast eval suite runs and pools its seeds (what it scores is the reference's business)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.forecasting import main, run_suite


def test_the_suite_pools_mase_per_class_and_warnings_over_seeds() -> None:
    one = run_suite((1,), days=90, series=8)
    two = run_suite((1, 2), days=90, series=8)
    assert two["forecast_mase"]["all"]["series"] == 2 * one["forecast_mase"]["all"]["series"]
    for out in (one, two):
        assert set(out["stockout_warnings"]) == {"z=0", "z=0.5", "z=1"}
        for w in out["stockout_warnings"].values():
            assert w["pairs"] == 8 * len(out["seeds"])
            assert w["precision"] is None or 0.0 <= w["precision"] <= 1.0


def test_the_command_writes_its_json_and_refuses_bad_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.json"
    assert main(["--seeds", "3", "--series", "5", "--days", "90", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["seeds"] == [3]
    with pytest.raises(SystemExit) as exc:
        main(["--seeds", "one"])
    assert exc.value.code == 2
    assert "--seeds" in capsys.readouterr().err


def test_the_committed_reference_is_the_suites_shape() -> None:
    ref = json.loads((Path(__file__).parents[2] / "evals" / "reference" / "forecast.json").read_text())
    assert ref["suite"] == "forecast/1"
    assert {"smooth", "all"} <= set(ref["forecast_mase"])


def test_the_forecast_suite_runs_through_the_runner_and_stores_its_headline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evals.forecasting as suite
    from evals.compare import compare_runs
    from evals.runner import EvalConfig, load_run, open_results_db, run_eval

    monkeypatch.setattr(suite, "SUITE_SERIES", 12)  # a quick run; the reference scores every stocked pair
    config = EvalConfig(suites=("forecast",), cases=("history-1",), workers=1, trials=3)
    db = open_results_db(f"sqlite:///{tmp_path / 'results.sqlite'}")
    try:
        run = run_eval(config, results_db=db, workdir=tmp_path / "w")
        stored = load_run(db, run.id)
    finally:
        db.dispose()
    assert [(r.case_id, r.trial, r.error) for r in run.results] == [("history-1", 0, None)]
    m = stored.metrics["forecast"]
    assert m["available"] is True
    assert m["forecast_mase"]["all"]["series"] == 12
    assert m["mase_relative"] == m["forecast_mase"]["all"]["relative"]
    assert {"stockout_precision", "stockout_z0_recall", "stockout_z1_lead_time_median_days"} <= set(m)
    assert not compare_runs(run, run).regressions
