"""Liveness, readiness (schema check) and Prometheus metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from core.db.migrate import SCHEMA_HEAD
from tests.api.conftest import Api


def test_healthz_and_readyz_need_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "schema_revision": SCHEMA_HEAD}


def test_readyz_is_503_on_a_schema_from_the_future(api: Api) -> None:
    with api.net.db.engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = 'f00d_from_the_future'"))
    r = api.client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "schema_too_new"
    assert body["status"] == 503
    assert "f00d_from_the_future" in body["detail"]
    assert api.client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_is_503_on_an_unmigrated_database(api: Api) -> None:
    with api.net.db.engine.begin() as conn:
        conn.execute(text("delete from alembic_version"))
    r = api.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["code"] == "configuration_error"


def _sample(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_by_route_and_status_and_pending_approvals(api: Api) -> None:
    api.propose_bulk_reroute()
    for _ in range(3):
        assert api.client.get("/v1/orders", params={"limit": 2}, headers=api.as_("viewer")).status_code == 200
    assert api.client.get("/v1/orders/ORD-NOPE", headers=api.as_("viewer")).status_code == 404
    assert api.client.get("/v1/nodes").status_code == 401
    assert api.client.get("/no/such/route").status_code == 404
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    m = r.text
    assert _sample(m, "orderops_http_requests_total", route="/v1/orders", status="200", method="GET") == 3
    assert _sample(m, "orderops_http_requests_total", route="/v1/orders/{order_id}", status="404") == 1
    assert _sample(m, "orderops_http_requests_total", route="/v1/nodes", status="401") == 1
    assert _sample(m, "orderops_http_requests_total", route="unmatched", status="404") == 1
    assert _sample(m, "orderops_http_request_duration_seconds_count", route="/v1/orders") == 3
    assert _sample(m, "orderops_approvals_pending") == 1


def test_a_route_that_raises_is_counted_as_500(api: Api) -> None:
    def boom() -> None:
        raise RuntimeError("not a problem the app knows")

    api.app.add_api_route("/v1/test-boom/{n}", boom, methods=["GET"])
    client = TestClient(api.app, raise_server_exceptions=False)
    assert client.get("/v1/test-boom/1", headers=api.as_("viewer")).status_code == 500
    assert client.get("/v1/test-boom/2", headers=api.as_("viewer")).status_code == 500
    m = client.get("/metrics").text
    assert _sample(m, "orderops_http_requests_total", route="/v1/test-boom/{n}", status="500", method="GET") == 2
    assert _sample(m, "orderops_http_request_duration_seconds_count", route="/v1/test-boom/{n}") == 2
