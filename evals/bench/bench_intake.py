"""Benchmark: order intake throughput per document format, on SQLite.

Two measurements on the generated intake corpus (:func:`intake.samples.generate_corpus`):

* parsing alone (``intake.documents.parse_bytes``): documents per second per format (X12, EDIFACT,
  CSV, XLSX, e-mail with and without attachment, PDF, and PDF pages per second);
* the full deterministic pipeline (store -> parse -> validate -> decide -> create or queue ->
  acknowledge, :func:`intake.pipeline.process_document`): documents per second and the end-to-end
  milliseconds per document (median, p95), including storing the document.

Numbers are printed, never asserted. Run: ``.venv/bin/python -m evals.bench.bench_intake [--count N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from core.db import make_database, migrate
from core.netgen import NetworkSpec, generate_network
from intake.documents import parse_bytes
from intake.samples import GeneratedDoc, generate_corpus, load_catalog

FORMAT_LABEL = {
    "x12": "X12 850",
    "edifact": "EDIFACT ORDERS",
    "csv": "CSV",
    "xlsx": "XLSX",
    "email": "e-mail (body)",
    "email_attachment": "e-mail + attachment",
    "pdf": "PDF",
}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def bench_parsing(docs: list[GeneratedDoc], repeat: int) -> None:
    by_fmt: dict[str, list[GeneratedDoc]] = defaultdict(list)
    for d in docs:
        if d.gold.format in FORMAT_LABEL:
            by_fmt[d.gold.format].append(d)
    print(f"parsing alone ({repeat} passes, best of)")
    print(f"  {'format':<22}{'docs':>6}{'docs/s':>10}{'ms/doc':>9}")
    pdf_pages = 0
    pdf_best = 0.0
    for fmt, group in by_fmt.items():
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for d in group:
                parse_bytes(d.data, filename=d.filename, media_type=d.media_type)
            best = min(best, time.perf_counter() - t0)
        print(f"  {FORMAT_LABEL[fmt]:<22}{len(group):>6}{len(group) / best:>10.1f}{1000 * best / len(group):>9.2f}")
        if fmt == "pdf":
            pdf_pages, pdf_best = sum(d.data.count(b"/Type /Page ") for d in group), best
    if pdf_pages:
        print(f"  {'PDF pages':<22}{pdf_pages:>6}{pdf_pages / pdf_best:>10.1f}{1000 * pdf_best / pdf_pages:>9.2f}")


Processor = Callable[[GeneratedDoc], None]


def _pipeline_processor(db_path: Path, home: Path) -> tuple[Processor, Callable[[], None]]:
    """Store + :func:`intake.pipeline.process_document` on a fresh network (the graph's stages, run inline)."""
    from api.bootstrap import open_context
    from core.settings import Settings
    from intake.documents import DocumentStore
    from intake.pipeline import IntakeDeps, process_document

    actx = open_context(Settings(home=home, database_url=f"sqlite:///{db_path}"))
    deps = IntakeDeps(db=actx.db, clock=actx.clock, gateway=actx.gateway,
                      documents=DocumentStore(actx.db, actx.clock, home / "documents"))  # fmt: skip

    def process(doc: GeneratedDoc) -> None:
        stored = deps.documents.receive(doc.data, channel="bench", filename=doc.filename, media_type=doc.media_type,
                                        sender=doc.gold.sender)  # fmt: skip
        process_document(stored.id, deps)

    return process, actx.close


def bench_pipeline(docs: list[GeneratedDoc], seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench-intake.db"
        db = make_database(url=f"sqlite:///{db_path}")
        migrate(db)
        generate_network(db, NetworkSpec(seed=seed, nodes=3, skus=120, customers=8, orders=0))
        db.dispose()
        process, close = _pipeline_processor(db_path, Path(tmp))
        per_fmt: dict[str, list[float]] = defaultdict(list)
        try:
            t_all = time.perf_counter()
            for d in docs:
                t0 = time.perf_counter()
                process(d)
                per_fmt[d.gold.format if d.gold.format in FORMAT_LABEL else "corrupt"].append(time.perf_counter() - t0)
            total = time.perf_counter() - t_all
        finally:
            close()
    every = [t for ts in per_fmt.values() for t in ts]
    print(f"full pipeline, deterministic, SQLite ({len(docs)} documents, one pass, fresh database)")
    print(f"  {'format':<22}{'docs':>6}{'docs/s':>10}{'median ms':>11}{'p95 ms':>9}")
    for fmt, ts in per_fmt.items():
        label = FORMAT_LABEL.get(fmt, "corrupt (quarantine)")
        med, p95 = 1000 * statistics.median(ts), 1000 * _p95(ts)
        print(f"  {label:<22}{len(ts):>6}{len(ts) / sum(ts):>10.1f}{med:>11.1f}{p95:>9.1f}")
    med, p95 = 1000 * statistics.median(every), 1000 * _p95(every)
    print(f"  {'all':<22}{len(every):>6}{len(every) / total:>10.1f}{med:>11.1f}{p95:>9.1f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Order intake throughput per format (SQLite).")
    p.add_argument("--count", type=int, default=210)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-pipeline", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{Path(tmp) / 'catalog.db'}")
        migrate(db)
        generate_network(db, NetworkSpec(seed=args.seed, nodes=3, skus=120, customers=8, orders=0))
        catalog = load_catalog(db)
        db.dispose()
    docs = generate_corpus(catalog, seed=args.seed, count=args.count)
    bench_parsing(docs, args.repeat)
    if not args.no_pipeline:
        bench_pipeline(docs, args.seed)


if __name__ == "__main__":
    main()
