"""Forecasts (:mod:`core.forecast`): demand classes, the models beating seasonal-naive where they
should, MASE's edge cases, and projected stock-outs with inbound stock."""

from __future__ import annotations

import numpy as np
import pytest

from core.forecast import (
    DemandClass,
    Forecast,
    backtest,
    classify,
    croston_sba,
    forecast,
    holt_winters,
    mase,
    project_stockout,
    seasonal_naive,
)


def _weekly(rng: np.random.Generator, days: int = 140, base: float = 30.0) -> np.ndarray:
    t = np.arange(days)
    return rng.poisson(base * (1 + 0.4 * np.sin(2 * np.pi * t / 7)) * (1 + 0.003 * t)).astype(float)


def _intermittent(rng: np.random.Generator, days: int = 140) -> np.ndarray:
    return ((rng.random(days) < 0.15) * (1 + rng.poisson(2, days))).astype(float)


def test_classes_follow_how_often_and_how_evenly_an_item_sells() -> None:
    rng = np.random.default_rng(0)
    assert classify(_weekly(rng)) is DemandClass.SMOOTH
    assert classify(_intermittent(rng)) is DemandClass.INTERMITTENT
    lumpy = np.zeros(140)
    lumpy[::10] = [1, 50, 2, 90, 1, 3, 70, 1, 2, 60, 1, 40, 2, 1]
    assert classify(lumpy) is DemandClass.LUMPY
    erratic = rng.choice([1.0, 5.0, 60.0], size=140)
    assert classify(erratic) is DemandClass.ERRATIC
    assert forecast(_intermittent(rng), 7).method == "croston_sba"
    assert forecast(_weekly(rng), 7).method == "holt_winters"


def test_seasonal_naive_repeats_last_week() -> None:
    y = np.arange(21, dtype=float)
    assert seasonal_naive(y, 9).tolist() == [14, 15, 16, 17, 18, 19, 20, 14, 15]


def test_holt_winters_follows_a_weekly_pattern_better_than_the_noise_in_it() -> None:
    rng = np.random.default_rng(1)
    y = _weekly(rng, 161)
    pred, sigma = holt_winters(y[:147], 14)
    truth = 30 * (1 + 0.4 * np.sin(2 * np.pi * np.arange(147, 161) / 7)) * (1 + 0.003 * np.arange(147, 161))
    assert np.mean(np.abs(pred - truth)) < np.mean(np.abs(seasonal_naive(y[:147], 14) - truth))
    assert sigma > 0
    assert (pred >= 0).all()


def test_croston_sba_is_the_rate_of_demand_not_the_size_of_an_order() -> None:
    rng = np.random.default_rng(2)
    y = _intermittent(rng, 2000)
    pred, _ = croston_sba(y, 5)
    assert pred.tolist() == [pred[0]] * 5
    assert y.mean() / 2 < pred[0] < y.mean() * 2  # a local rate (alpha 0.1), near the long-run one
    assert croston_sba(np.zeros(30), 3)[0].tolist() == [0, 0, 0]


def test_mase_has_no_scale_for_a_series_that_never_changes() -> None:
    flat = np.full(30, 4.0)
    assert mase(np.full(7, 5.0), np.full(7, 4.0), flat) is None
    y = np.arange(30, dtype=float)
    assert mase(np.full(7, 8.0), np.full(7, 7.0), y) == pytest.approx(1 / 7)


def test_backtest_scores_each_class_and_the_model_beats_seasonal_naive_on_seasonal_series() -> None:
    rng = np.random.default_rng(3)
    series = {f"s{i}": _weekly(rng, 120, base=float(10 + i)) for i in range(12)}
    series.update({f"i{i}": _intermittent(rng, 120) for i in range(6)})
    series["short"] = np.ones(20)
    result = backtest(series, horizon=14, origins=3)
    assert result.skipped == 1
    assert set(result.classes) >= {"smooth", "intermittent"}
    smooth = result.classes["smooth"]
    assert (smooth.series, smooth.windows) == (12, 36)
    assert smooth.relative < 1.0
    assert result.as_dict()["overall"]["series"] == 18  # type: ignore[index]


def test_a_stockout_is_projected_on_the_first_day_demand_exceeds_stock_and_inbound() -> None:
    fc = Forecast(np.full(7, 10.0), sigma=3.0, method="test", demand_class=DemandClass.SMOOTH)
    p = project_stockout(fc, available=25, lead_time_days=7)
    assert (p.days_to_stockout, p.shortfall, p.demand_over_lead_time) == (3, 45, 70.0)
    covered = project_stockout(fc, available=25, lead_time_days=7, inbound={2: 50})
    assert (covered.days_to_stockout, covered.shortfall) == (None, 0)
    cautious = project_stockout(fc, available=25, lead_time_days=7, z=2.0)
    assert cautious.days_to_stockout == 2
    assert cautious.shortfall > p.shortfall


def test_bad_series_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="finite"):
        forecast([1.0, float("nan")], 3)
    with pytest.raises(ValueError, match="one-dimensional"):
        forecast(np.ones((3, 3)), 3)


def test_forecast_backtest_and_stockouts_print_their_numbers_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from api.cli import run as cli

    assert cli(["forecast", "backtest", "--series", "20", "--days", "90", "--origins", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"]["series"] + out["skipped"] == 20
    assert all(c["seasonal_naive_mase"] > 0 for c in out["classes"].values())
    assert cli(["forecast", "stockouts", "--series", "20", "--days", "90", "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["pairs"] == 20
    assert score["lead_time_days"] == 7
    assert cli(["forecast", "backtest", "--days", "10"]) == 2
    assert cli(["forecast", "stockouts", "--days", "60", "--lead-time", "14"]) == 2
    assert "too short" in capsys.readouterr().err


def test_fitting_many_series_together_gives_the_numbers_of_fitting_each_alone() -> None:
    from core.forecast import forecast_all

    rng = np.random.default_rng(5)
    series = [_weekly(rng, 90, base=float(5 + i)) for i in range(5)] + [_intermittent(rng, 90), _weekly(rng, 60)]
    series.append(np.array([3.0, 4.0, 5.0]))  # too short for a season: seasonal-naive's fallback
    together = forecast_all(series, 10)
    alone = [forecast(y, 10) for y in series]
    assert [f.method for f in together] == [f.method for f in alone]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12)
        assert a.sigma == pytest.approx(b.sigma, rel=1e-12)
