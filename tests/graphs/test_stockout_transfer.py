"""A projected stock-out, end to end (issue 18): the forecast warns, the warning is a
``stockout_risk`` alert, the run's playbook proposes ``transfer_inventory``, policy parks it for a
person, and once approved the stock moves exactly once however often the decision is delivered
and the run resumed (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter

from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunResult
from graphs.runs import RunStore
from guardrails.audit import EventType
from services.forecasting import scan_twin, warning_alert
from services.undo import start_undo
from tests.graphs.support import deps_for
from tests.tools.conftest import APPROVER, Net, build_net
from tools.gateway import RunLedger


def _atp(net: Net, node: str, sku: str) -> int:
    found = net.adapters.wms.inventory(node_ids=[node], skus=[sku])
    return found[0].atp if found else 0


def _short_pair(net: Net) -> tuple[str, str, str]:
    """A (node, SKU) with a little stock, and the node holding most of that SKU elsewhere."""
    best: tuple[int, str, str, str] | None = None
    for pos in net.adapters.wms.inventory():
        if pos.atp < 5:
            continue
        others = net.adapters.wms.atp([pos.sku]).get(pos.sku, {})
        donor = max((n for n in others if n != pos.node_id), key=lambda n: others[n], default=None)
        if donor is None or others[donor] < 200:
            continue
        if best is None or others[donor] > best[0]:
            best = (others[donor], pos.node_id, pos.sku, donor)
    assert best is not None, "the generated network should stock some SKU at several nodes"
    return best[1], best[2], best[3]


def _run(net: Net, fn: str, run_id: str, **kw: object) -> RunResult:
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, PlaybookPlanner()), saver)
        return runs.start(run_id=run_id, **kw) if fn == "start" else runs.continue_run(run_id)  # type: ignore[arg-type]


def test_a_stockout_warning_leads_through_approval_to_one_transfer(db: object) -> None:
    net = build_net(db)  # type: ignore[arg-type]
    node, sku, donor = _short_pair(net)
    have, donor_have = _atp(net, node, sku), _atp(net, donor, sku)
    daily = max(have / 3, 2.0)  # about three days of stock left
    series = [daily * (1.2 if d % 7 < 5 else 0.5) for d in range(70)]

    warnings = scan_twin(net.adapters, {(node, sku): series}, lead_time_days=7, z=0.0)
    assert len(warnings) == 1
    warning = warnings[0]
    assert (warning.node_id, warning.sku, warning.available) == (node, sku, have)
    assert 1 <= warning.days_to_stockout <= 7
    units = warning.shortfall
    assert units <= donor_have // 2, "the donor can spare the shortfall in this setup"

    alert = warning_alert(warning, today=net.clock.today())
    started = _run(net, "start", "run-stockout", alert=alert)
    assert started.waiting, started.report
    [card] = started.approvals
    assert card["tool"] == "transfer_inventory"
    assert (_atp(net, node, sku), _atp(net, donor, sku)) == (have, donor_have), "nothing moves before approval"

    approval_id = card["approval_id"]
    net.gateway.decide(approval_id, approver=APPROVER, decision="approve")
    # The decision is delivered twice (a retried click, a second worker) and the run resumed twice.
    first = _run(net, "continue", "run-stockout")
    again = _run(net, "continue", "run-stockout")
    replay = net.gateway.execute_approved(approval_id, actor=APPROVER, run=RunLedger(run_id="run-stockout"))

    assert first.status == "completed", first.report
    assert again.status == "completed"
    assert replay.status == "replayed"
    assert _atp(net, node, sku) == have + units
    assert _atp(net, donor, sku) == donor_have - units
    executed = net.gateway.guard.audit.list(run_id="run-stockout", event_type=EventType.EXECUTED)
    first_runs = Counter(e.call_id for e in executed if e.tool == "transfer_inventory" and not _replayed(e.result))
    assert list(first_runs.values()) == [1]

    # And it can be put back: the undo run's compensating transfer, approved like any write.
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, PlaybookPlanner()), saver)
        undo = start_undo(runs, RunStore(net.db, net.clock), "run-stockout")
        assert undo.waiting
        [back] = undo.approvals
        assert back["tool"] == "transfer_inventory"
        net.gateway.decide(back["approval_id"], approver=APPROVER, decision="approve")
        assert runs.continue_run(undo.run_id).status == "completed"
    assert (_atp(net, node, sku), _atp(net, donor, sku)) == (have, donor_have)


def _replayed(result: object) -> bool:
    return isinstance(result, dict) and bool(result.get("replayed"))


def test_a_shortfall_bigger_than_what_others_can_spare_moves_half_of_theirs_and_says_re_source(db: object) -> None:
    net = build_net(db)  # type: ignore[arg-type]
    node, sku, _ = _short_pair(net)
    warning = scan_twin(net.adapters, {(node, sku): [10_000.0] * 70}, lead_time_days=7, z=0.0)[0]
    triage = triage_alert(warning_alert(warning, today=net.clock.today()), net.gateway.env)
    assert triage.scope.units == warning.shortfall
    plan = PlaybookPlanner().plan(triage, net.gateway.env)
    others = {n: a for n, a in net.adapters.wms.atp([sku])[sku].items() if n != node and a > 0}
    moved = {c.args["from_node_id"]: c.args["units"] for c in plan.steps}
    assert {c.tool for c in plan.steps} == {"transfer_inventory"}
    assert moved == {n: a // 2 for n, a in others.items() if a // 2 > 0}
    assert "re-source" in plan.summary
