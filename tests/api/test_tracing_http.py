"""An API request is one ``HTTP <method>`` span naming the route template and the status, not the ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from api.mcp_server import SUBMIT_DOCUMENT
from core import tracing
from core.domain import CustomerTier
from tests.api.conftest import Api
from tests.api.test_mcp import Mcp, call, env

__all__ = ["env"]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()


def test_a_request_span_names_the_route_not_the_order(api: Api, spans: InMemorySpanExporter) -> None:
    order = api.net.adapters.oms.get_orders([o.id for o in api.net.movable(api.net.busiest_dc())][:1])[0]
    r = api.client.get(f"/v1/orders/{order.id}", headers=api.as_("viewer"))
    assert r.status_code == 200
    missing = api.client.get("/v1/orders/ORD-NOPE", headers=api.as_("viewer"))
    assert missing.status_code == 404
    found = [s for s in spans.get_finished_spans() if s.name == "HTTP GET"]
    assert [(s.attributes or {}).get("http.route") for s in found] == ["/v1/orders/{order_id}"] * 2
    assert [(s.attributes or {}).get("http.response.status_code") for s in found] == [200, 404]
    values = [str(v) for s in spans.get_finished_spans() for v in (s.attributes or {}).values()]
    assert not any(order.id in v or "ORD-NOPE" in v or order.customer_id in v for v in values)


def test_an_intake_document_is_one_span_of_ids_and_counts(env: Mcp, spans: InMemorySpanExporter) -> None:
    from tests.intake.test_pipeline import Line, x12_850

    oms = env.net.adapters.oms
    c = next(c for c in oms.list_customers() if c.tier is CustomerTier.STANDARD and c.edi_id is not None)
    assert c.edi_id is not None
    sku = next(p.sku for p in oms.list_products() if not (p.hazmat or p.cold_chain or p.list_price > 200))
    ship_to = oms.addresses(c.id)[0]
    lines: list[Line] = [(3, "EA", oms.prices(c.id, [sku])[sku], "VN", sku, "")]
    doc = x12_850(c.edi_id, "PO-TRACE-1", ship_to, lines).decode()
    out = call(env.server("operator"), SUBMIT_DOCUMENT, {"filename": "po.x12", "content": doc})
    assert not out.is_error
    assert out.structured_content is not None

    [intake] = [s for s in spans.get_finished_spans() if s.name == "orderops.intake"]
    attrs = dict(intake.attributes or {})
    assert attrs["orderops.document.id"] == out.structured_content["document_id"]
    assert attrs["orderops.intake.orders"] == 1
    assert attrs["orderops.document.channel"] == "mcp"
    created = [s for s in spans.get_finished_spans() if (s.attributes or {}).get("gen_ai.tool.name") == "create_order"]
    assert created, "the order it created went through the gateway, traced"
    values = [str(v).lower() for s in spans.get_finished_spans() for v in (s.attributes or {}).values()]
    for private in (c.name, c.email, ship_to.street, ship_to.name, "PO-TRACE-1"):
        assert not any(private.lower() in v for v in values), private


def test_a_request_that_raises_is_an_error_span_naming_the_type(api: Api, spans: InMemorySpanExporter) -> None:
    def boom() -> None:
        raise RuntimeError("ORD-SECRET is not a problem the app knows")

    api.app.add_api_route("/v1/test-boom", boom, methods=["GET"])
    client = TestClient(api.app, raise_server_exceptions=False)
    assert client.get("/v1/test-boom", headers=api.as_("viewer")).status_code == 500
    [found] = [s for s in spans.get_finished_spans() if s.name == "HTTP GET"]
    assert found.status.status_code is StatusCode.ERROR
    assert (found.attributes or {}).get("error.type") == "RuntimeError"
    assert "ORD-SECRET" not in str(dict(found.attributes or {}))


def test_spans_of_the_work_hang_under_the_request_span(api: Api, spans: InMemorySpanExporter) -> None:
    def traced() -> dict[str, bool]:
        with tracing.span("orderops.test"):
            return {"ok": True}

    api.app.add_api_route("/v1/test-traced", traced, methods=["GET"])
    assert api.client.get("/v1/test-traced").status_code == 200
    inner = next(s for s in spans.get_finished_spans() if s.name == "orderops.test")
    outer = next(s for s in spans.get_finished_spans() if s.name == "HTTP GET")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert (outer.attributes or {}).get("http.route") == "/v1/test-traced"
