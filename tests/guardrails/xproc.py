"""One side of a cross-process approval, run as its own Python process by
``test_hash_across_processes``: ``propose`` parks a bulk reroute and prints the approval id;
``approve ID`` decides it and executes it in a *different* process (another hash seed), printing the
outcome as JSON. Separate processes are the point: a hash that depends on the process's string-hash
seed passes every in-process test and fails here."""

from __future__ import annotations

import json
import sys

from api.bootstrap import open_context
from core.domain import REROUTABLE_STATUSES
from core.settings import Settings
from guardrails.calls import Actor
from tools.adapters.protocols import OrderFilter
from tools.gateway import RunLedger

AGENT = Actor(kind="agent", id="run-x", roles=frozenset(), on_behalf_of="olivia")
APPROVER = Actor(kind="user", id="amir", roles=frozenset({"approver"}))


def propose(settings: Settings) -> str:
    actx = open_context(settings)
    try:
        wms, oms = actx.adapters.wms, actx.adapters.oms
        dcs = [ld for ld in wms.node_load() if ld.node_id.startswith("DC-")]
        src = max(dcs, key=lambda ld: ld.unreleased_orders).node_id
        dst = next(ld.node_id for ld in dcs if ld.node_id != src)
        orders = oms.list_orders(OrderFilter(node_ids=[src], statuses=sorted(REROUTABLE_STATUSES)), limit=200)
        out = actx.gateway.propose(
            "reroute_orders",
            {"order_ids": [o.id for o in orders], "to_node_id": dst, "reason": "congestion"},
            actor=AGENT,
            run=RunLedger(run_id="run-x"),
            idempotency_key="xproc-reroute",
        )
        assert out.status == "awaiting_approval", (out.status, out.reasons)
        assert out.approval_id is not None
        return out.approval_id
    finally:
        actx.close()


def approve(settings: Settings, approval_id: str) -> dict[str, object]:
    actx = open_context(settings)
    try:
        gw = actx.gateway
        gw.decide(approval_id, approver=APPROVER, decision="approve")
        out = gw.execute_approved(approval_id, actor=AGENT, run=RunLedger(run_id="run-x"))
        return {"status": out.status, "reasons": list(out.reasons)}
    finally:
        actx.close()


if __name__ == "__main__":
    s = Settings()
    if sys.argv[1] == "propose":
        print(propose(s))
    else:
        print(json.dumps(approve(s, sys.argv[2])))
