"""The ``anomaly`` and ``risk`` eval suites: detectors and order-risk scores on generated history.

Neither needs a network database: each case draws one history (:func:`core.history.generate_history`)
and scores what the product code finds in it against what was injected.

``anomaly``: one case per seed of history with incidents (``history-S``), and one per seed of
incident-free history (``clean-S``). A finding matches an incident of the same kind and scope when
its episode overlaps the incident's days (up to :data:`GRACE_DAYS` after its end: a backlog or an
overdue purchase order outlives its cause). Per kind: precision (matched findings / findings),
recall (incidents found / incidents), median detection delay (days from the incident's first day
to the first matching finding), and false alarms per 100 days on the clean histories (per kind and
over all scopes together). Days before the detectors' warm-up are not counted.

``risk``: one case per seed (``orders-S``): every order of the history's stream is scored in time
order; legitimate orders are then accepted (as a reviewer would release a held one), injected ones
never are. Precision and recall per order, and per injected case (a burst of velocity orders is one
case, caught if any of its orders is held); false holds per 1,000 legitimate orders.

The seeds here were never used to set a threshold (those were set on seeds 1-3, 11-13, 101-103 and
111-113), so the numbers are held-out numbers.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.anomaly import MIN_HISTORY_DAYS, Finding, detect
from core.history import INCIDENT_KINDS, MIN_DAYS, History, Incident, IncidentKind, generate_history
from core.node_health import FEATURES as NODE_HEALTH_FEATURES
from core.node_health import node_health
from core.risk import OrderFacts, RiskScorer
from evals.forecasting import forecast_case, forecast_case_ids, forecast_metrics
from evals.metrics import CaseResult, Suite

HISTORY_DAYS = 180
ANOMALY_SEEDS = (21, 22, 23, 24, 25)
CLEAN_SEEDS = (121, 122, 123)
RISK_SEEDS = (31, 32, 33)
GRACE_DAYS: dict[IncidentKind, int] = {
    IncidentKind.NODE_CONGESTION: 3,
    IncidentKind.CARRIER_OUTAGE: 3,
    IncidentKind.DEMAND_SPIKE: 2,
    IncidentKind.SUPPLIER_DELAY: 10,
    IncidentKind.STOCK_DRIFT: 10,
}
MIN_RECALL_TO_PASS = 0.8
MAX_CLEAN_FALSE_ALARMS_PER_100_DAYS = 2.0


def anomaly_case_ids() -> list[str]:
    return [f"history-{s}" for s in ANOMALY_SEEDS] + [f"clean-{s}" for s in CLEAN_SEEDS]


def risk_case_ids() -> list[str]:
    return [f"orders-{s}" for s in RISK_SEEDS]


def _seed(case_id: str) -> int:
    return int(case_id.rsplit("-", 1)[1])


# --- anomaly ------------------------------------------------------------------------------------


def match(findings: Sequence[Finding], incidents: Sequence[Incident]) -> tuple[list[int | None], dict[int, int]]:
    """For each finding the index of the incident it matches (None: a false alarm), and for each
    found incident its detection delay in days."""
    owner: list[int | None] = []
    delays: dict[int, int] = {}
    for f in findings:
        hit = next(
            (
                i
                for i, inc in enumerate(incidents)
                if inc.kind is f.kind
                and inc.scope == f.scope
                and f.first_day <= inc.end_day + GRACE_DAYS[inc.kind]
                and f.last_day >= inc.start_day
            ),
            None,
        )
        owner.append(hit)
        if hit is not None:
            delay = max(0, f.first_day - incidents[hit].start_day)
            delays[hit] = min(delays.get(hit, delay), delay)
    return owner, delays


def score_history(h: History, findings: Sequence[Finding]) -> dict[str, Any]:
    """Per kind: findings, matched findings, incidents, found incidents, delays."""
    owner, delays = match(findings, h.incidents)
    per: dict[str, dict[str, Any]] = {
        k.value: {"findings": 0, "matched": 0, "incidents": 0, "found": 0, "delays": []} for k in INCIDENT_KINDS
    }
    for f, hit in zip(findings, owner, strict=True):
        per[f.kind.value]["findings"] += 1
        per[f.kind.value]["matched"] += hit is not None
    for i, inc in enumerate(h.incidents):
        p = per[inc.kind.value]
        p["incidents"] += 1
        if i in delays:
            p["found"] += 1
            p["delays"].append(delays[i])
    return per


def anomaly_case(case_id: str, trial: int = 0) -> CaseResult:
    """One history: run every detector and score it (a clean one: count its alarms)."""
    started = time.perf_counter()
    clean = case_id.startswith("clean-")
    h = generate_history(_seed(case_id), HISTORY_DAYS, incidents=not clean, risky_orders=False)
    findings = detect(h)
    per = score_history(h, findings)
    # The multivariate detector (off in the product by default) is scored beside the others, alone.
    health = node_health(h)
    health_per = score_history(h, health)
    judged_days = h.days - MIN_HISTORY_DAYS
    failures: list[str] = []
    if clean:
        rate = 100.0 * len(findings) / judged_days
        if rate > MAX_CLEAN_FALSE_ALARMS_PER_100_DAYS:
            failures.append(f"{len(findings)} alarms on a clean history ({rate:.2f} per 100 days)")
    else:
        found = sum(p["found"] for p in per.values())
        total = sum(p["incidents"] for p in per.values())
        if total and found / total < MIN_RECALL_TO_PASS:
            failures.append(f"found {found} of {total} incidents")
    return CaseResult(
        suite="anomaly", case_id=case_id, category="clean" if clean else "incidents", trial=trial,
        passed=not failures, failures=failures, duration_s=round(time.perf_counter() - started, 3),
        metrics={"per_kind": per, "judged_days": judged_days, "findings": len(findings),
                 "node_health_per_kind": health_per},
    )  # fmt: skip


def _ratio(n: float, d: float) -> float | None:
    return round(n / d, 4) if d else None


def anomaly_metrics(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Precision, recall and median delay per kind over the incident histories; false alarms per
    100 days per kind over the clean ones; the same over all kinds together."""
    inc = [r for r in results if r.category == "incidents" and not r.error]
    clean = [r for r in results if r.category == "clean" and not r.error]
    clean_days = sum(int(r.metrics.get("judged_days", 0)) for r in clean)
    per_kind, tot, all_delays = _per_kind(inc, clean, clean_days, "per_kind", INCIDENT_KINDS)
    health_kinds = tuple(dict.fromkeys(kind for _n, kind, _w in NODE_HEALTH_FEATURES))
    if all("node_health_per_kind" in r.metrics for r in [*inc, *clean]):
        rows, htot, _d = _per_kind(inc, clean, clean_days, "node_health_per_kind", health_kinds)
        node_health_metrics: dict[str, Any] = {
            "node_health_precision": _ratio(htot["matched"], htot["findings"]),
            "node_health_recall": _ratio(htot["found"], htot["incidents"]),
            "node_health_false_alarms_per_100_days": _ratio(100.0 * htot["false_clean"], clean_days),
            "node_health_per_kind": rows,
        }
    else:
        node_health_metrics = {}
    return {
        "available": True,
        "histories": len(inc),
        "clean_histories": len(clean),
        "days_per_history": HISTORY_DAYS,
        "incidents": int(tot["incidents"]),
        "precision": _ratio(tot["matched"], tot["findings"]),
        "recall": _ratio(tot["found"], tot["incidents"]),
        "median_delay_days": statistics.median(all_delays) if all_delays else None,
        "false_alarms_per_100_days": _ratio(100.0 * tot["false_clean"], clean_days),
        "errors": sum(1 for r in results if r.error),
        **node_health_metrics,
        "per_kind": per_kind,
    }


def _per_kind(
    inc: Sequence[CaseResult], clean: Sequence[CaseResult], clean_days: int, key: str, kinds: Sequence[IncidentKind]
) -> tuple[dict[str, dict[str, Any]], dict[str, float], list[int]]:
    """Per kind of ``kinds``: the scores of the findings kept under ``key``; and the totals."""
    per_kind: dict[str, dict[str, Any]] = {}
    tot: dict[str, float] = defaultdict(float)
    all_delays: list[int] = []
    for k in kinds:
        rows = [r.metrics[key][k.value] for r in inc]
        f, m = sum(x["findings"] for x in rows), sum(x["matched"] for x in rows)
        n, found = sum(x["incidents"] for x in rows), sum(x["found"] for x in rows)
        delays = [d for x in rows for d in x["delays"]]
        false_clean = sum(r.metrics[key][k.value]["findings"] for r in clean)
        per_kind[k.value] = {
            "incidents": n,
            "precision": _ratio(m, f),
            "recall": _ratio(found, n),
            "median_delay_days": statistics.median(delays) if delays else None,
            "false_alarms_per_100_days": _ratio(100.0 * false_clean, clean_days),
        }
        tot["findings"] += f
        tot["matched"] += m
        tot["incidents"] += n
        tot["found"] += found
        tot["false_clean"] += false_clean
        all_delays += delays
    return per_kind, tot, all_delays


# --- risk ---------------------------------------------------------------------------------------


def risk_case(case_id: str, trial: int = 0) -> CaseResult:
    """One order stream: score every order, accept the legitimate ones, count holds."""
    started = time.perf_counter()
    h = generate_history(_seed(case_id), HISTORY_DAYS)
    sc = RiskScorer()
    for c, states in h.customer_states.items():
        sc.know(c, ship_tos=set(h.customer_sites[c]), states=set(states), domains={h.customer_domains[c]})
    tp = fp = fn = legit = 0
    by_case: dict[str, dict[str, int]] = defaultdict(lambda: {"orders": 0, "held": 0})
    groups: dict[tuple[int, str, str], bool] = {}
    for o in h.orders:
        f = OrderFacts(o.customer, o.ship_to_key, o.ship_to_state, o.email_domain, o.value, o.day * 24 + o.hour)
        s = sc.score(f)
        if o.risk_case is None:
            sc.observe(f)
        if o.day < MIN_DAYS:  # the scorer's warm-up: profiles are still being learnt
            continue
        if o.risk_case is None:
            legit += 1
            fp += s.hold
            continue
        tp += s.hold
        fn += not s.hold
        tally = by_case[o.risk_case.value]
        tally["orders"] += 1
        tally["held"] += s.hold
        key = (o.day, o.customer, o.risk_case.value)
        groups[key] = groups.get(key, False) or s.hold
    cases: dict[str, dict[str, int]] = defaultdict(lambda: {"cases": 0, "caught": 0})
    for (_d, _c, kind), caught in groups.items():
        cases[kind]["cases"] += 1
        cases[kind]["caught"] += caught
    return CaseResult(
        suite="risk", case_id=case_id, category="orders", trial=trial, passed=tp > 0,
        failures=[] if tp else ["no injected order held"], duration_s=round(time.perf_counter() - started, 3),
        metrics={"tp": tp, "fp": fp, "fn": fn, "legit": legit, "by_case": dict(by_case), "cases": dict(cases)},
    )  # fmt: skip


def risk_metrics(results: Sequence[CaseResult]) -> dict[str, Any]:
    ok = [r for r in results if not r.error]
    tp, fp, fn = (sum(int(r.metrics[k]) for r in ok) for k in ("tp", "fp", "fn"))
    legit = sum(int(r.metrics["legit"]) for r in ok)
    per: dict[str, dict[str, Any]] = {}
    for r in ok:
        for kind, c in r.metrics["by_case"].items():
            p = per.setdefault(kind, {"orders": 0, "held": 0, "cases": 0, "caught": 0})
            p["orders"] += c["orders"]
            p["held"] += c["held"]
        for kind, c in r.metrics["cases"].items():
            p = per.setdefault(kind, {"orders": 0, "held": 0, "cases": 0, "caught": 0})
            p["cases"] += c["cases"]
            p["caught"] += c["caught"]
    cases = sum(p["cases"] for p in per.values())
    caught = sum(p["caught"] for p in per.values())
    return {
        "available": True,
        "streams": len(ok),
        "orders_scored": tp + fp + fn + (legit - fp),
        "injected_orders": tp + fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "case_recall": _ratio(caught, cases),
        "false_holds_per_1000": _ratio(1000.0 * fp, legit),
        "errors": sum(1 for r in results if r.error),
        "per_case": {
            k: {"order_recall": _ratio(p["held"], p["orders"]), "case_recall": _ratio(p["caught"], p["cases"]), **p}
            for k, p in sorted(per.items())
        },
    }


# --- registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PureSuite:
    """A suite whose cases need no network database: its case ids, how to run one, its metrics."""

    case_ids: Callable[[], list[str]]
    run: Callable[[str, int], CaseResult]
    metrics: Callable[[Sequence[CaseResult]], dict[str, Any]]


PURE_SUITES: dict[Suite, PureSuite] = {
    "anomaly": PureSuite(anomaly_case_ids, anomaly_case, anomaly_metrics),
    "risk": PureSuite(risk_case_ids, risk_case, risk_metrics),
    "forecast": PureSuite(forecast_case_ids, forecast_case, forecast_metrics),
}
