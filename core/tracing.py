"""OpenTelemetry spans of what OrderOps does: runs, graph nodes, tool calls, model calls, HTTP requests.

Spans say *which* (ids, tool and node names, the model's name) and *how much* (counts, tokens,
durations, statuses) and nothing else: never arguments, prompts, replies, addresses or names. The
audit trail is where what was done is kept, redacted; a trace is for following a run across
processes and finding where time went, and it leaves the installation. So every attribute passes
:func:`clean`, which keeps numbers, booleans and id-shaped strings and drops anything else, and
callers only hand it ids and counts to begin with.

Off by default: without :func:`configure` the OpenTelemetry API is a no-op and a span costs nothing.
``traces_exporter`` picks ``console`` or ``otlp`` (the standard ``OTEL_EXPORTER_OTLP_*`` variables
configure the latter). Tests install an SDK provider with the in-memory exporter.

What this module must never do: put free text on a span, or start when a third-party tracer that
bypasses redaction (LangSmith through LangChain's environment switches) is on without an explicit
``allow_third_party_tracing``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from core.errors import ConfigurationError
from core.settings import Settings

TRACER = "orderops"
ID_SHAPE = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9_.:@/+{}-]{0,127}$")
"""What a string attribute may look like: an id, a tool or node name, a status, a model name.
Customer names and addresses have spaces; e-mail addresses are refused by :data:`_EMAIL`."""
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
THIRD_PARTY = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING")
"""Environment switches that make LangChain send every prompt and reply to LangSmith."""

AttrValue = str | bool | int | float
_OFF = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
"""The process-wide provider before anyone configured one: tracing is off."""
T = TypeVar("T")


_provider: trace.TracerProvider | None = None
_installed: Any = None
"""The provider :func:`configure` installed in this process (OpenTelemetry allows one)."""
"""A provider set by :func:`use_provider` (tests, benches): wins over the process-wide one, which
OpenTelemetry lets a process set only once (and a library such as DBOS may have set)."""


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send OrderOps' spans to ``provider`` (None: back to the process-wide provider)."""
    global _provider
    _provider = provider


def tracer() -> trace.Tracer:
    """OrderOps' tracer from the current provider (a no-op one until :func:`configure` or a test sets one)."""
    if _provider is not None:
        return _provider.get_tracer(TRACER)
    return trace.get_tracer(TRACER)


def clean(attributes: Mapping[str, Any]) -> dict[str, AttrValue]:
    """The attributes a span may carry: numbers, booleans and id-shaped strings; None and anything else dropped."""
    return {key: value for key, value in attributes.items() if _allowed(value)}


def _allowed(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and bool(ID_SHAPE.match(value)) and not _EMAIL.search(value)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span]:
    """A span named ``name`` (a fixed string: ``orderops.run``, ``orderops.tool`` ...) around the block;
    an exception marks it as an error by its type only (messages may quote data)."""
    if _provider is None and isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    ):
        yield trace.INVALID_SPAN  # tracing is off: nothing to record, so nothing to pay for
        return
    with tracer().start_as_current_span(
        name, attributes=clean(attributes), record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            current.set_attribute("error.type", type(exc).__name__)
            raise


def annotate(current: Span, **attributes: Any) -> None:
    """Add attributes known only at the end (counts, statuses), through :func:`clean`."""
    if not current.is_recording():
        return
    found = clean(attributes)
    if found:
        current.set_attributes(found)


def model_call(invoke: Callable[[T], Any], messages: T, *, model: str | None, mode: str) -> Any:
    """``invoke(messages)`` in a GenAI ``chat`` span (model, tokens; latency is the span's duration)."""
    with span(
        f"chat {model or 'model'}",
        **{"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "orderops.llm.mode": mode},
    ) as current:
        reply = invoke(messages)
        usage = getattr(reply, "usage_metadata", None) or {}
        annotate(
            current,
            **{
                "gen_ai.usage.input_tokens": int(usage.get("input_tokens") or 0),
                "gen_ai.usage.output_tokens": int(usage.get("output_tokens") or 0),
                "gen_ai.response.model": (getattr(reply, "response_metadata", None) or {}).get("model_name"),
            },
        )
        return reply


def refuse_third_party(settings: Settings, environ: Mapping[str, str]) -> None:
    """Refuse to start when LangSmith tracing is switched on and the installation has not allowed it:
    it would send prompts and personal data to a hosted service, past the audit trail's redaction."""
    on = [k for k in THIRD_PARTY if environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")]
    if on and not settings.allow_third_party_tracing:
        raise ConfigurationError(
            f"{', '.join(on)} is on: LangChain would send prompts and personal data to LangSmith, bypassing the "
            "audit trail's redaction. Unset it, or set ORDEROPS_ALLOW_THIRD_PARTY_TRACING=true to accept that",
            variables=on,
        )


def configure(settings: Settings, environ: Mapping[str, str]) -> Any:
    """Install the span exporter ``settings.traces_exporter`` names, once per process (start-up).

    Returns the SDK provider (None for ``none``: the API stays a no-op). Checks third-party tracing first."""
    global _installed
    refuse_third_party(settings, environ)
    if settings.traces_exporter == "none" or _installed is not None:
        return _installed
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if settings.traces_exporter == "console":
        exporter = ConsoleSpanExporter(out=sys.stderr)  # stdout may be a protocol (orderops mcp) or --json
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigurationError(
                "traces_exporter=otlp needs the package opentelemetry-exporter-otlp-proto-http "
                "(pip install opentelemetry-exporter-otlp-proto-http), or set ORDEROPS_TRACES_EXPORTER=console|none"
            ) from exc
        exporter = OTLPSpanExporter()  # endpoint, headers, timeout: the standard OTEL_EXPORTER_OTLP_* variables
    provider = TracerProvider(resource=Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "orderops")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _installed = provider
    return provider
