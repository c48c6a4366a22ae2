"""Multivariate node health: scikit-learn's IsolationForest over per-node daily features.

The single-signal detectors (:mod:`core.anomaly`) each watch one series; a node can also be unwell in
a way no one series shows past its threshold (backlog somewhat up, picks somewhat down, inbound lead
time somewhat long). This detector judges each node-day by four features together:

* backlog (log), robust z against the node's same weekday;
* picks / capacity, robust z against the node's trailing days;
* orders received (log), robust z against the same weekday;
* inbound lead time (days, carried forward over days without receipts), robust z.

Every feature is the node's own z-score (so nodes of different sizes pool), and one forest is fit on
all nodes' trailing :data:`FIT_DAYS` days, refit every :data:`REFIT_DAYS` days and used for the days
until the next refit: causal, like the other detectors. A node-day whose anomaly score (the forest's
``-score_samples``: 0.5 ordinary, towards 1 isolated early) reaches :data:`SCORE_THRESHOLD` alarms;
an episode's kind is that of the feature furthest from its baseline on its first day (backlog,
picks, intake -> ``node_congestion``; lead time -> ``supplier_delay``), and its evidence is that
feature's value, baseline and threshold.

It is off by default (:data:`ENABLED`): on the held-out histories it finds fewer incidents, and
raises more false alarms, than the single-signal detectors (numbers in evals/signals.py's suite).

What this module must never do: act (findings are data), or look at a day when scoring that day.
"""

from __future__ import annotations

import numpy as np

from core.anomaly import MIN_HISTORY_DAYS, BoolArray, Finding, FloatArray, episodes, trailing_baseline
from core.history import History, IncidentKind

ENABLED = False
FIT_DAYS = 56
REFIT_DAYS = 7
SCORE_THRESHOLD = 0.65
Z_CLIP = 20.0
TREES = 100
FEATURES: tuple[tuple[str, IncidentKind, bool], ...] = (
    ("backlog", IncidentKind.NODE_CONGESTION, True),
    ("pick_ratio", IncidentKind.NODE_CONGESTION, False),
    ("orders", IncidentKind.NODE_CONGESTION, True),
    ("inbound_lead_days", IncidentKind.SUPPLIER_DELAY, False),
)
"""(name, the kind an episode led by it names, whether its baseline is by weekday)."""


def _ffill(x: FloatArray) -> FloatArray:
    """NaNs replaced by the last value before them in the column (leading NaNs stay)."""
    out = x.copy()
    for t in range(1, out.shape[0]):
        gap = np.isnan(out[t])
        out[t, gap] = out[t - 1, gap]
    return out


def features(h: History) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``[day, node, feature]`` raw values, their robust z-scores, baselines and scales."""
    cap = np.maximum(h.node_capacity.astype(np.float64), 1.0)
    raw = np.stack(
        [
            np.log1p(h.node_backlog.astype(np.float64)),
            h.node_picked.astype(np.float64) / cap,
            np.log1p(h.node_orders.astype(np.float64)),
            _ffill(h.inbound_lead_days.astype(np.float64)),
        ],
        axis=2,
    )
    z = np.zeros_like(raw)
    center = np.full_like(raw, np.nan)
    scale = np.full_like(raw, np.nan)
    for i, (_name, _kind, weekly) in enumerate(FEATURES):
        c, s = trailing_baseline(raw[:, :, i], weekly=weekly)
        s = np.maximum(np.nan_to_num(s, nan=np.inf), 0.05 + 0.02 * np.abs(np.nan_to_num(c)))
        z[:, :, i] = np.clip(np.nan_to_num((raw[:, :, i] - c) / s, nan=0.0, posinf=0.0, neginf=0.0), -Z_CLIP, Z_CLIP)
        center[:, :, i], scale[:, :, i] = c, s
    return raw, z, center, scale


def anomaly_scores(z: FloatArray, *, seed: int = 0) -> FloatArray:
    """``[day, node]``: the forest's anomaly score of each node-day (NaN before the warm-up)."""
    from sklearn.ensemble import IsolationForest  # a heavy import, paid only when the detector runs

    days, nodes, _f = z.shape
    out = np.full((days, nodes), np.nan)
    start = MIN_HISTORY_DAYS
    for r in range(start, days, REFIT_DAYS):
        # The first fit also sees the last warm-up week, whose features are 0 (at baseline).
        train = z[max(start - 7, r - FIT_DAYS) : r].reshape(-1, z.shape[2])
        forest = IsolationForest(n_estimators=TREES, random_state=seed).fit(train)
        block = z[r : r + REFIT_DAYS]
        out[r : r + REFIT_DAYS] = -forest.score_samples(block.reshape(-1, z.shape[2])).reshape(block.shape[:2])
    return out


def node_health(h: History, *, threshold: float = SCORE_THRESHOLD) -> list[Finding]:
    """Node-days the forest isolates, as episodes with the evidence of their leading feature."""
    raw, z, center, scale = features(h)
    score = anomaly_scores(z, seed=h.seed)
    alarm: BoolArray = np.nan_to_num(score, nan=0.0) >= threshold
    out: list[Finding] = []
    for col, a, b in episodes(alarm):
        lead = int(np.argmax(np.abs(z[a, col])))
        name, kind, _weekly = FEATURES[lead]
        sign = 1.0 if z[a, col, lead] >= 0 else -1.0
        out.append(
            Finding(
                kind=kind, scope=f"node:{h.nodes[col]}", first_day=a, last_day=b, signal=name,
                method="isolation_forest", value=round(float(raw[a, col, lead]), 4),
                baseline=round(float(center[a, col, lead]), 4),
                threshold=round(float(center[a, col, lead] + sign * 3.0 * scale[a, col, lead]), 4),
                score=round(float(score[a, col]), 3),
            )
        )  # fmt: skip
    return sorted(out, key=lambda f: (f.first_day, f.kind.value, f.scope))
