"""Detectors find the incidents injected into a small history and stay quiet on a clean one."""

from __future__ import annotations

import numpy as np

from core.anomaly import (
    LANE_ON_TIME,
    RobustParams,
    binomial_alarms,
    cusum_alarms,
    detect,
    episodes,
    robust_alarms,
)
from core.history import IncidentKind, generate_history
from core.netgen import NetworkSpec

SMALL = NetworkSpec(seed=7, nodes=4, skus=40, customers=5, orders=300)


def _found(seed: int) -> tuple[int, int, int]:
    h = generate_history(seed, 120, SMALL)
    found = detect(h)
    hits = [
        any(f.kind is i.kind and f.scope == i.scope and i.start_day <= f.first_day <= i.end_day + 10 for f in found)
        for i in h.incidents
    ]
    return len(h.incidents), sum(hits), len(found)


def test_injected_incidents_are_found_with_few_extra_alarms() -> None:
    incidents, hit, found = _found(1)
    assert incidents == 15
    assert hit >= 13
    assert found - hit <= 3


def test_clean_history_raises_nothing() -> None:
    h = generate_history(1, 120, SMALL, incidents=False)
    assert detect(h) == []


def test_each_kind_names_the_scope_of_its_incident() -> None:
    h = generate_history(5, 120, SMALL)
    found = detect(h)
    for inc in h.incidents:
        mine = [
            f
            for f in found
            if f.kind is inc.kind and f.scope == inc.scope and inc.start_day <= f.first_day <= inc.end_day + 10
        ]
        assert mine, inc
        assert mine[0].signal
        assert not np.isnan(mine[0].baseline)


def test_robust_z_is_causal_and_ignores_a_single_past_outlier() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 5.0, (80, 1))
    x[40, 0] = 400.0  # one wild day: alarms on that day only, and does not move the baseline after it
    alarm, _z, center, _s = robust_alarms(x, RobustParams(z=5.0, floor=1.0))
    assert list(np.nonzero(alarm[:, 0])[0]) == [40]
    assert abs(center[41, 0] - 100.0) < 5.0
    y = x.copy()
    y[60:, 0] += 1000.0  # the future cannot change earlier verdicts
    assert np.array_equal(robust_alarms(y, RobustParams(z=5.0, floor=1.0))[0][:60], alarm[:60])


def test_binomial_scale_forgives_a_small_day() -> None:
    rate = np.full((60, 1), 0.95)
    trials = np.full((60, 1), 1000.0)
    rate[50, 0], trials[50, 0] = 0.80, 20.0  # 16 of 20 on time: within what 20 parcels do
    rate[55, 0] = 0.80  # 800 of 1000: an outage
    alarm = binomial_alarms(rate, trials, LANE_ON_TIME)[0]
    assert list(np.nonzero(alarm[:, 0])[0]) == [55]


def test_cusum_catches_a_slow_ramp_a_z_score_misses() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0.003, 0.002, (120, 1))
    x[70:90, 0] += np.linspace(0.0005, 0.01, 20)
    assert not robust_alarms(x[:80], RobustParams(z=5.0, floor=0.0005))[0].any()
    first = int(np.nonzero(cusum_alarms(x, h=8.0, floor=0.0005)[0][:, 0])[0][0])
    assert 70 <= first < 90


def test_episodes_merge_short_gaps() -> None:
    alarm = np.zeros((20, 1), dtype=np.bool_)
    alarm[[3, 4, 7, 15], 0] = True
    assert episodes(alarm, gap=2) == [(0, 3, 7), (0, 15, 15)]
    assert {k.value for k in IncidentKind} >= {"node_congestion", "stock_drift"}
