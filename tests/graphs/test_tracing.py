"""OpenTelemetry: a run's trace follows the run, its graph nodes, its tool calls and its model calls,
and no attribute carries personal data (scanned against every customer of the seeded network).

Spans go to the SDK's in-memory exporter; the planner is the LLM planner on a scripted chat model, so
the model call is a real call through ``tools.llm`` with token usage on its reply."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents.llm_planner import LLMPlanner
from agents.playbooks import PlaybookPlanner
from core import tracing
from core.errors import ConfigurationError
from core.settings import Settings
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns
from tests.graphs.support import congestion_alert, deps_for
from tests.tools.conftest import Net


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


def scripted_reroute(ids: list[str], target: str) -> FakeMessagesListChatModel:
    call = AIMessage(
        content="",
        tool_calls=[{"name": "reroute_orders", "args": {"order_ids": ids, "to_node_id": target}, "id": "c1"}],
        usage_metadata={"input_tokens": 812, "output_tokens": 37, "total_tokens": 849},
    )
    return FakeMessagesListChatModel(responses=[call])


def personal_data(net: Net) -> list[str]:
    """What must never reach a span: every customer's name and e-mail, every street line and contact."""
    oms = net.adapters.oms
    out: list[str] = []
    for c in oms.list_customers():
        out += [c.name, c.email]
        for a in oms.addresses(c.id):
            out += [a.name, a.street]
    return [v.lower() for v in out if v and len(v) >= 4]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names: list[str] = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


def test_a_run_traces_its_nodes_tool_calls_and_model_calls_without_personal_data(
    sqlite_congested: tuple[Net, str, str], spans: InMemorySpanExporter
) -> None:
    net, node, target = sqlite_congested
    ids = [o.id for o in net.movable(node)][:3]
    planner = LLMPlanner(
        scripted_reroute(ids, target), fallback=PlaybookPlanner(), model_name="scripted", retry_wait_s=0
    )
    text = "Backlog growing at the DC; customers are calling."
    with open_checkpointer(net.db) as saver:
        result = ExceptionRuns(deps_for(net, planner), saver).start(
            alert=congestion_alert(node, text), run_id="run-traced"
        )

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    [run] = [s for s in finished if s.name == "orderops.run"]
    assert run.attributes is not None
    assert run.attributes["orderops.run.id"] == "run-traced"
    assert run.attributes["orderops.run.status"] == result.status
    assert len({s.context.trace_id for s in finished}) == 1, "one run, one trace"

    nodes = [s for s in finished if s.name == "orderops.node"]
    node_names = [str((s.attributes or {})["orderops.node"]) for s in nodes]
    assert node_names[:3] == ["triage", "gather_facts", "plan"]
    assert all(ancestors(s, by_id)[-1] == "orderops.run" for s in nodes)

    tools = [s for s in finished if s.name == "orderops.tool"]
    assert tools, "the gateway's calls are traced"
    tool_names = {(s.attributes or {}).get("gen_ai.tool.name") for s in tools}
    assert "reroute_orders" in tool_names
    assert {"get_node_load", "search_orders"} & tool_names
    assert all("orderops.node" in ancestors(s, by_id) for s in tools), "tool calls hang under their node"
    reroute = next(s for s in tools if (s.attributes or {}).get("gen_ai.tool.name") == "reroute_orders")
    assert reroute.attributes is not None
    assert reroute.attributes["orderops.tool.affected"] == len(ids)
    assert reroute.attributes["orderops.run.id"] == "run-traced"

    [chat] = [s for s in finished if s.name.startswith("chat ")]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 812
    assert chat.attributes["gen_ai.usage.output_tokens"] == 37
    assert chat.end_time is not None
    assert chat.start_time is not None
    assert chat.end_time >= chat.start_time  # latency is the span's duration
    assert ancestors(chat, by_id)[:2] == ["orderops.node", "orderops.run"]

    private = personal_data(net)
    assert len(private) > 20
    values = [str(v).lower() for s in finished for v in (s.attributes or {}).values()]
    values += [s.name.lower() for s in finished]
    leaks = sorted({p for p in private for v in values if p in v})
    assert leaks == []
    assert not any(text.lower() in v or ("@" in v and "." in v.split("@")[-1]) for v in values)
    for s in finished:  # ids and counts only: every string is id-shaped
        for v in (s.attributes or {}).values():
            assert not isinstance(v, str) or tracing.ID_SHAPE.match(v), (s.name, v)


def test_clean_keeps_ids_and_counts_only() -> None:
    kept = tracing.clean(
        {"id": "ORD-000123", "n": 3, "ok": True, "name": "Acme Hardware Co", "mail": "buyer@acme.example", "x": None}
    )
    assert kept == {"id": "ORD-000123", "n": 3, "ok": True}


def test_third_party_tracing_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigurationError, match="LANGSMITH_TRACING"):
        tracing.configure(Settings(), {"LANGSMITH_TRACING": "true"})
    assert tracing.configure(Settings(allow_third_party_tracing=True), {"LANGSMITH_TRACING": "true"}) is None
    assert tracing.configure(Settings(), {}) is None  # off by default: no provider installed


def test_otlp_without_its_exporter_package_is_a_configuration_error() -> None:
    pytest.importorskip("opentelemetry.sdk")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="opentelemetry-exporter-otlp-proto-http"):
            tracing.configure(Settings(traces_exporter="otlp"), {})
    else:
        pytest.skip("the OTLP exporter is installed here")


def test_a_failing_span_says_the_error_type_and_never_its_message(spans: InMemorySpanExporter) -> None:
    """An exception's message may quote data (an address, a PO line): the span's status and
    attributes carry its type only, and no exception event records the text."""
    with pytest.raises(RuntimeError), tracing.span("orderops.test"):
        raise RuntimeError("ship to 12 Elm Street, jane@example.com")
    (span,) = [s for s in spans.get_finished_spans() if s.name == "orderops.test"]
    assert span.status.description == "RuntimeError"
    assert (span.attributes or {}).get("error.type") == "RuntimeError"
    assert not span.events
    assert "Elm" not in repr(span.to_json())
