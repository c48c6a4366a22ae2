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
        assert set(out["stockout_warnings"]) == {"z=0", "z=1"}
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
