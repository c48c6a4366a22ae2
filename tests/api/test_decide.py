"""``POST /v1/decide/route`` over HTTP: answered from the snapshot, logged with profile and arm (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agents.sourcing import SourcingWeights
from api import problems
from api.routes import decide as decide_routes
from core import changes
from core.db import Database
from core.domain import NodeStatus, OrderStatus
from services.decisions import DecisionService, decisions_since
from services.experiments import ExperimentStore, arm_for
from services.profiles import BUILTIN_DEFAULT, ProfileStore
from tests.api.conftest import Api, build_api
from tests.tools.conftest import AGENT, APPROVER
from tools.adapters.protocols import OrderFilter


def created(api: Api, n: int) -> list[str]:
    found = api.net.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=n)
    return [o.id for o in found]


def fresh_service(api: Api) -> DecisionService:
    """The app's decision service, checked against the database on every request (bound 0 s) and
    logging each decision before answering: what these tests need to see changes at once."""
    svc = DecisionService.build(api.net.db, api.net.adapters, api.net.clock, max_staleness_s=0.0, batch=1)
    api.app.state.decisions = svc
    return svc


def decide(api: Api, order_id: str) -> dict[str, object]:
    r = api.client.post("/v1/decide/route", json={"order_id": order_id}, headers=api.as_("viewer"))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_the_default_service_answers_and_logs_each_decision(api: Api) -> None:
    ids = created(api, 5)
    bodies = [decide(api, i) for i in ids]
    assert {b["profile_name"] for b in bodies} == {"default"}
    assert all(b["arm"] is None for b in bodies)
    assert len({b["decision_id"] for b in bodies}) == len(ids)
    svc: DecisionService = api.app.state.decisions
    assert svc.cache.loads == 1  # one snapshot for all five
    svc.log.flush()  # the API writes its log in batches
    logged = {r["id"]: r for r in decisions_since(api.net.db)}
    for b in bodies:
        row = logged[str(b["decision_id"])]
        assert row["order_id"] == b["order_id"]
        assert row["inputs_hash"] == b["inputs_hash"]
        assert row["node_id"] == b["node_id"]


@pytest.fixture
def either_api(db: Database, tmp_path: Path) -> Iterator[Api]:
    """The API on SQLite (decisions on the event loop) and PostgreSQL (in the thread pool)."""
    built = build_api(db, tmp_path / "home")
    with built.client:
        yield built


def test_a_closed_node_and_an_experiment_reach_the_next_request(either_api: Api) -> None:
    api = either_api
    svc = fresh_service(api)
    assert svc.local_reads == api.net.db.is_sqlite
    order_id = created(api, 1)[0]
    first = decide(api, order_id)
    assert first["node_id"] is not None
    api.net.adapters.wms.set_node_status(str(first["node_id"]), NodeStatus.CLOSED)
    after = decide(api, order_id)
    assert after["node_id"] != first["node_id"]
    assert after["inputs_hash"] != first["inputs_hash"]

    carbon = ProfileStore(api.net.db, api.net.clock).create("carbon", SourcingWeights(carbon_per_kg=25.0), by="ada")
    exp = ExperimentStore(api.net.db, api.net.clock).start("live", BUILTIN_DEFAULT, carbon, by="ada")
    arms = {}
    for i in created(api, 30):
        body = decide(api, i)
        assert body["experiment_id"] == exp.id
        assert body["arm"] == arm_for(exp.id, i, exp.share_b)
        assert body["profile_name"] == ("carbon" if body["arm"] == "B" else "default")
        arms[i] = body["arm"]
    assert set(arms.values()) == {"A", "B"}
    rows = [r for r in decisions_since(api.net.db) if r["experiment_id"] == exp.id]
    assert {r["order_id"]: r["arm"] for r in rows} == arms
    assert svc.cache.loads >= 3


def test_unknown_orders_and_callers_without_a_key_are_refused(api: Api) -> None:
    fresh_service(api)
    assert (
        api.client.post("/v1/decide/route", json={"order_id": "ORD-NOPE"}, headers=api.as_("viewer")).status_code == 404
    )
    assert api.client.post("/v1/decide/route", json={"order_id": "ORD-1"}).status_code == 401
    bad = api.client.post("/v1/decide/route", json={"order_id": "x y"}, headers=api.as_("viewer"))
    assert bad.status_code == 422
    assert decisions_since(api.net.db) == []


def test_the_last_batch_of_the_log_is_written_when_the_app_stops(sqlite_db: Database, tmp_path: Path) -> None:
    built = build_api(sqlite_db, tmp_path / "home")
    svc = DecisionService.build(built.net.db, built.net.adapters, built.net.clock, batch=64)
    svc.log.max_delay_s = 3600.0  # nothing but a full batch or the app's shutdown writes it
    built.app.state.decisions = svc
    ids = created(built, 3)
    with built.client:
        for i in ids:
            decide(built, i)
        assert decisions_since(sqlite_db) == []
        assert svc.log.pending == len(ids)
    assert sorted(r["order_id"] for r in decisions_since(sqlite_db)) == sorted(ids)


def test_the_route_checks_the_key_itself_behind_the_guard(api: Api) -> None:
    """The route's own key check (async, not api.deps.Viewer) refuses what the guard would: an app
    without the guard answers 401 problems for a missing or unknown key, and a viewer's X-API-Key works."""
    fresh_service(api)
    bare = FastAPI()
    bare.state.actx, bare.state.keys, bare.state.decisions = api.actx, api.keys, api.app.state.decisions
    problems.install(bare)
    bare.include_router(decide_routes.router)
    client = TestClient(bare)
    order_id = created(api, 1)[0]
    missing = client.post("/v1/decide/route", json={"order_id": order_id})
    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthenticated"
    unknown = client.post("/v1/decide/route", json={"order_id": order_id}, headers={"X-API-Key": "oo_x_y"})
    assert unknown.status_code == 401
    ok = client.post("/v1/decide/route", json={"order_id": order_id}, headers={"X-API-Key": api.key["viewer"]})
    assert ok.status_code == 200
    assert ok.json()["order_id"] == order_id
    assert len(decisions_since(api.net.db)) == 1


def _close_through_the_gateway(api: Api, node_id: str) -> None:
    """Close ``node_id`` the way an agent's plan does: proposed, approved, executed by the gateway."""
    gw = api.net.gateway
    out = gw.propose(
        "set_node_status",
        {"node_id": node_id, "status": "closed", "reason": "flood"},
        actor=AGENT,
        run=api.net.run(),
        idempotency_key=f"close-{node_id}",
    )
    if out.status == "awaiting_approval":
        assert out.approval_id is not None
        gw.decide(out.approval_id, approver=APPROVER, decision="approve")
        out = gw.execute_approved(out.approval_id, actor=APPROVER, run=api.net.run())
    assert out.status == "executed", out.reasons


@pytest.mark.parametrize("hook", [True, False], ids=["published", "silenced"])
def test_a_gateway_write_reaches_the_next_decision_at_once(
    api: Api, monkeypatch: pytest.MonkeyPatch, hook: bool
) -> None:
    """With an hour's staleness bound, only the in-process change notice makes the next decision see
    a node closed through the gateway (silenced, the snapshot still routes to the closed node)."""
    if not hook:
        monkeypatch.setattr(changes, "publish", lambda _topic: None)
    svc = DecisionService.build(api.net.db, api.net.adapters, api.net.clock, max_staleness_s=3600.0, batch=1)
    api.app.state.decisions = svc
    order_id = created(api, 1)[0]
    first = decide(api, order_id)
    assert first["node_id"] is not None
    _close_through_the_gateway(api, str(first["node_id"]))
    after = decide(api, order_id)
    assert (after["node_id"] != first["node_id"]) is hook
    assert svc.cache.loads == (2 if hook else 1)


def test_a_profile_activation_reaches_the_next_decision_at_once(api: Api) -> None:
    svc = DecisionService.build(api.net.db, api.net.adapters, api.net.clock, max_staleness_s=3600.0, batch=1)
    api.app.state.decisions = svc
    order_id = created(api, 1)[0]
    assert decide(api, order_id)["profile_name"] == "default"
    profiles = ProfileStore(api.net.db, api.net.clock)
    profiles.create("carbon", SourcingWeights(carbon_per_kg=25.0), by="ada")
    profiles.activate("carbon", by="ada")
    assert decide(api, order_id)["profile_name"] == "carbon"


def test_the_fast_path_answers_as_the_route_does_and_hands_on_the_rest(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain request (Bearer viewer key, JSON body) is answered by FastRoute without FastAPI's
    routing; the same decision asked the normal way (X-API-Key) gives the same answer and headers.
    Refusals (unknown order, unknown key, bad body) reach the route and are its problems, and
    only the answered decisions are logged."""
    fresh_service(api)
    fast: list[bool] = []
    real = decide_routes._fast_answer

    def spy(*args: Any) -> Any:
        answer = real(*args)
        fast.append(answer is not None)
        return answer

    monkeypatch.setattr(decide_routes, "_fast_answer", spy)
    order_id = created(api, 1)[0]
    viewer = api.key["viewer"]
    quick = api.client.post("/v1/decide/route", json={"order_id": order_id}, headers=api.as_("viewer"))
    assert fast == [True]
    slow = api.client.post("/v1/decide/route", json={"order_id": order_id}, headers={"X-API-Key": viewer})
    assert fast == [True]  # an X-API-Key goes the normal way
    assert quick.status_code == slow.status_code == 200
    assert quick.headers["content-type"] == slow.headers["content-type"] == "application/json"
    a, b = quick.json(), slow.json()
    assert a["decision_id"] != b["decision_id"]
    for body in (a, b):
        del body["decision_id"], body["snapshot_age_ms"]
    assert a == b
    assert list(quick.json()) == list(slow.json())  # same fields, same order

    nope = api.client.post("/v1/decide/route", json={"order_id": "ORD-NOPE"}, headers=api.as_("viewer"))
    assert (nope.status_code, nope.json()["code"]) == (404, "not_found")
    stranger = api.client.post(
        "/v1/decide/route", json={"order_id": order_id}, headers={"Authorization": "Bearer oo_x_y"}
    )
    assert (stranger.status_code, stranger.json()["code"]) == (401, "unauthenticated")
    for bad in ({"order_id": "x y"}, {"order_id": order_id, "extra": 1}, [order_id]):
        r = api.client.post("/v1/decide/route", json=bad, headers=api.as_("viewer"))
        assert r.status_code == 422, r.text
    assert fast == [True, False, False, False, False]  # the unknown key: refused by the guard first
    charset = {**api.as_("viewer"), "content-type": "application/json; charset=utf-8"}
    assert api.client.post("/v1/decide/route", content=f'{{"order_id": "{order_id}"}}', headers=charset).is_success
    assert len(fast) == 5  # not the plain content type: the normal way
    assert [r["order_id"] for r in decisions_since(api.net.db)] == [order_id] * 3
