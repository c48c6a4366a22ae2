"""An API request is one ``HTTP <method>`` span naming the route template and the status, not the ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import tracing
from tests.api.conftest import Api


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
