"""Benchmark of tracing's cost per span: what every gateway call, graph node and model call pays.

Times one span shaped like the gateway's (start, four attributes through the id/count filter, end)
with tracing off (the default: OpenTelemetry's no-op provider) and with the SDK recording into the
in-memory exporter (an upper bound of a configured exporter's in-process cost; export is batched
off the request path).

    python -m evals.bench.bench_tracing --spans 20000
"""

from __future__ import annotations

import argparse
import timeit

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import tracing


def one_span() -> None:
    with tracing.span("orderops.tool", **{"orderops.run.id": "run-1", "gen_ai.operation.name": "execute_tool"}) as s:
        tracing.annotate(s, **{"gen_ai.tool.name": "reroute_orders", "orderops.tool.affected": 40})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    n = parser.parse_args().spans
    off = timeit.timeit(one_span, number=n) / n
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        on = timeit.timeit(one_span, number=n) / n
    finally:
        tracing.use_provider(None)
        provider.shutdown()
    print(f"spans: {n}")
    print(f"tracing off (no-op provider): {off * 1e6:.1f} us per span")
    print(f"tracing on (SDK, in-memory exporter): {on * 1e6:.1f} us per span")


if __name__ == "__main__":
    main()
