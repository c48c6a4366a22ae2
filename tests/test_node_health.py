"""Multivariate node health (IsolationForest): an isolated node-day scores high and alarms, ordinary
days do not, and a day's score never depends on later days (the detector is causal)."""

from __future__ import annotations

import numpy as np

from core.anomaly import MIN_HISTORY_DAYS
from core.history import IncidentKind, generate_history
from core.node_health import REFIT_DAYS, SCORE_THRESHOLD, anomaly_scores, node_health


def _ordinary(days: int = 140, nodes: int = 4, features: int = 4) -> np.ndarray:
    return np.random.default_rng(5).normal(0.0, 1.0, size=(days, nodes, features))


def test_an_isolated_node_day_alarms_and_ordinary_days_mostly_do_not() -> None:
    z = _ordinary()
    z[120, 2] = [9.0, -7.0, 6.0, 0.5]
    score = anomaly_scores(z)
    assert score[120, 2] >= SCORE_THRESHOLD
    judged = score[~np.isnan(score)]
    assert (judged >= SCORE_THRESHOLD).sum() <= 0.01 * judged.size + 1


def test_a_days_score_does_not_depend_on_later_days() -> None:
    z = _ordinary()
    later = z.copy()
    later[100:] += 50.0
    a, b = anomaly_scores(z), anomaly_scores(later)
    cut = 100 - (100 - MIN_HISTORY_DAYS) % REFIT_DAYS  # the refit block that day 100 falls in starts here
    np.testing.assert_array_equal(a[:cut], b[:cut])
    assert not np.array_equal(a[100:], b[100:])


def test_findings_on_a_history_carry_their_evidence() -> None:
    h = generate_history(1, 120, incidents=True, risky_orders=False)
    findings = node_health(h)
    assert findings
    for f in findings:
        assert f.method == "isolation_forest"
        assert f.kind in (IncidentKind.NODE_CONGESTION, IncidentKind.SUPPLIER_DELAY)
        assert f.scope.startswith("node:")
        assert f.score >= SCORE_THRESHOLD
        assert f.signal in ("backlog", "pick_ratio", "orders", "inbound_lead_days")
        assert f.first_day <= f.last_day
