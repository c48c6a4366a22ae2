"""The anomaly and risk suites run through the eval runner and add up (their scores are the reference's)."""

from __future__ import annotations

from pathlib import Path

from core.anomaly import Finding
from core.history import Incident, IncidentKind
from evals.compare import compare_runs
from evals.runner import EvalConfig, load_run, open_results_db, run_eval, select_tasks
from evals.signals import GRACE_DAYS, match


def _finding(kind: IncidentKind, scope: str, first: int, last: int) -> Finding:
    return Finding(kind, scope, first, last, "s", "robust_z", 1.0, 0.0, 0.5, 5.0)


def test_a_finding_matches_only_its_kind_scope_and_days() -> None:
    inc = [Incident(IncidentKind.NODE_CONGESTION, 40, 44, 0.5, node="DC-A")]
    grace = GRACE_DAYS[IncidentKind.NODE_CONGESTION]
    found = [
        _finding(IncidentKind.NODE_CONGESTION, "node:DC-A", 42, 46),  # match, 2 days late
        _finding(IncidentKind.NODE_CONGESTION, "node:DC-A", 44 + grace + 1, 60),  # after the grace: false
        _finding(IncidentKind.NODE_CONGESTION, "node:DC-B", 41, 41),  # other node: false
        _finding(IncidentKind.SUPPLIER_DELAY, "node:DC-A", 41, 41),  # other kind: false
        _finding(IncidentKind.NODE_CONGESTION, "node:DC-A", 40, 40),  # match, on time
    ]
    owner, delays = match(found, inc)
    assert owner == [0, None, None, None, 0]
    assert delays == {0: 0}


def test_suites_run_through_the_runner_with_one_trial_and_store_their_metrics(tmp_path: Path) -> None:
    config = EvalConfig(suites=("anomaly", "risk"), cases=("history-21", "clean-121", "orders-31"), workers=1, trials=3)
    tasks = select_tasks(config)
    assert [(t.suite, t.case_id, t.trial) for t in tasks] == [
        ("anomaly", "history-21", 0), ("anomaly", "clean-121", 0), ("risk", "orders-31", 0),
    ]  # fmt: skip
    db = open_results_db(f"sqlite:///{tmp_path / 'results.sqlite'}")
    try:
        run = run_eval(config, results_db=db, workdir=tmp_path / "w")
        stored = load_run(db, run.id)
    finally:
        db.dispose()
    assert all(r.error is None for r in run.results), [r.error for r in run.results]
    a, r = stored.metrics["anomaly"], stored.metrics["risk"]
    assert a["histories"] == 1
    assert a["clean_histories"] == 1
    assert a["incidents"] == sum(k["incidents"] for k in a["per_kind"].values()) > 0
    assert set(a["per_kind"]) == {k.value for k in IncidentKind}
    assert 0.0 <= a["recall"] <= 1.0
    assert set(a["node_health_per_kind"]) == {"node_congestion", "supplier_delay"}
    assert 0.0 <= a["node_health_recall"] <= 1.0
    assert r["injected_orders"] > 0
    assert 0.0 <= r["precision"] <= 1.0
    assert not compare_runs(run, run).regressions


def test_the_committed_reference_holds_both_suites_per_kind() -> None:
    import json

    ref = json.loads((Path(__file__).parents[2] / "evals" / "reference" / "signals.json").read_text())
    assert set(ref["metrics"]) == {"anomaly", "risk"}
    assert set(ref["metrics"]["anomaly"]["per_kind"]) == {k.value for k in IncidentKind}
    assert ref["metrics"]["anomaly"]["histories"] >= 3
