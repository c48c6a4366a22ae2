"""Scores order intake against the generated corpus (:func:`intake.samples.generate_corpus`).

Field-level precision/recall/F1 (``po_number``, ``customer``, ``ship_to`` and, per line, ``sku``,
``quantity``, ``uom``, ``unit_price``), whole-order exact match, review rate, decision accuracy
and the number that matters most: orders the pipeline created on its own (``auto_create``) with any
field wrong, which must be 0 in deterministic mode.

Two ways in: :func:`score_parsing` scores the parsers' extraction alone (no database work beyond
reading the catalogue), :func:`score_intake` runs the whole pipeline and scores what it decided.
Both print the same table with ``python -m evals.intake_score``. Evals are not unit tests: this
module reports numbers; tests only check that it runs and that the safety number is 0.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from pydantic import BaseModel, Field

from intake.documents import QUARANTINE_CODES, parse_bytes
from intake.model import Party, PurchaseOrder, Severity
from intake.pipeline import IntakeDeps, process_document
from intake.samples import Catalog, CatalogAddress, GeneratedDoc, GoldOrder

__all__ = [
    "DocOutcome",
    "DocScore",
    "FieldScore",
    "IntakeScores",
    "aggregate",
    "format_table",
    "match_ship_to",
    "run_document",
    "score_document",
    "score_intake",
    "score_outcomes",
    "score_parsing",
]

FIELDS = ("po_number", "customer", "ship_to", "sku", "quantity", "uom", "unit_price")


class FieldScore(BaseModel):
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


class DocOutcome(BaseModel):
    """What intake made of one document, in the corpus's terms."""

    doc_id: str
    order: PurchaseOrder | None = None
    customer_id: str | None = None
    ship_to_address_id: str | None = None
    decision: str | None = None
    """``auto_create`` / ``review`` / ``duplicate`` / ``revision`` / ``quarantine`` (None: not decided)."""
    order_id: str | None = None
    """The OMS order created, when one was."""
    finding_codes: list[str] = Field(default_factory=list)
    parked: bool = False
    """Decided ``auto_create`` but the create is parked for an approver (policy): nothing was created."""
    created_wrong: bool | None = None
    """For a created order: whether the OMS order itself (not the extraction) has any field wrong."""


class IntakeScores(BaseModel):
    mode: str
    documents: int
    fields: dict[str, FieldScore]
    exact_match: int
    exact_match_rate: float
    review_rate: float
    decision_accuracy: float | None
    decisions: dict[str, dict[str, int]] = Field(default_factory=dict)
    """expected decision -> {actual decision: count}."""
    auto_created: int = 0
    auto_created_wrong: int = 0
    """Orders created without a person that have any field wrong (must be 0 in deterministic mode)."""
    auto_created_wrong_ids: list[str] = Field(default_factory=list)
    by_format: dict[str, dict[str, int]] = Field(default_factory=dict)
    """format -> {"documents": n, "exact": n}."""


# --- comparing one document ----------------------------------------------------------------------


def _norm(s: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (s or "").lower())


def match_ship_to(party: Party | None, addresses: Iterable[CatalogAddress]) -> str | None:
    """The catalogue address a ship-to party names (by street, else by name and city)."""
    if party is None:
        return None
    lines = {_norm(x) for x in [party.name, *party.address_lines] if x}
    for a in addresses:
        if _norm(a.street) in lines:
            return a.id
    for a in addresses:
        if _norm(a.name) == _norm(party.name) and _norm(a.city) == _norm(party.city):
            return a.id
    return None


def _line_key(sku: str | None) -> str:
    return (sku or "").strip().upper()


def _count(score: FieldScore, gold: object | None, got: object | None) -> bool:
    """Count one scalar field; True when it is right (both empty counts as right, uncounted)."""
    if gold is None and got is None:
        return True
    if gold is not None and got == gold:
        score.tp += 1
        return True
    if got is not None:
        score.fp += 1
    if gold is not None:
        score.fn += 1
    return False


def _compare(gold: GoldOrder, out: DocOutcome, fields: dict[str, FieldScore]) -> bool:
    """Add one document's counts to ``fields``; True when the whole order is right."""
    po = out.order
    ok = _count(fields["po_number"], gold.po_number, po.po_number if po else None)
    ok &= _count(fields["customer"], gold.customer_id, out.customer_id)
    ok &= _count(fields["ship_to"], gold.ship_to_address_id, out.ship_to_address_id)
    got_lines: dict[str, list[tuple[Decimal | None, str | None, Decimal | None]]] = {}
    for ln in po.lines if po else []:
        got_lines.setdefault(_line_key(ln.vendor_part_number or ln.buyer_part_number), []).append(
            (ln.quantity, ln.unit, ln.unit_price)
        )
    n_got = sum(len(v) for v in got_lines.values())
    matched = 0
    for g in gold.lines:
        bucket = got_lines.get(_line_key(g.sku))
        if not bucket:
            fields["sku"].fn += 1
            for f in ("quantity", "uom", "unit_price"):
                fields[f].fn += 1 if (f != "unit_price" or g.unit_price is not None) else 0
            ok = False
            continue
        qty, unit, price = bucket.pop(0)
        matched += 1
        fields["sku"].tp += 1
        ok &= _count(fields["quantity"], Decimal(g.quantity), qty)
        ok &= _count(fields["uom"], g.unit, unit or "EA")
        ok &= _count(fields["unit_price"], g.unit_price, price)
    extra = n_got - matched
    if extra:
        fields["sku"].fp += extra
        ok = False
    return ok and len(gold.lines) == n_got


class DocScore(BaseModel):
    """One document's score: the unit the eval runner records as a case (one per corpus document)."""

    doc_id: str
    format: str
    expected_decision: str
    decision: str | None = None
    scored: bool
    """Whether the fields count (not for documents expected to be quarantined or dropped as duplicates)."""
    exact: bool
    """Every field right (True for an unscored document)."""
    fields: dict[str, FieldScore]
    auto_created: bool = False
    """Decided ``auto_create`` and created (not parked for an approver)."""
    auto_created_wrong: bool = False
    """Created without a person with any field wrong (must never be True in deterministic mode)."""
    parked: bool = False
    injected: bool = False
    """The corpus put instruction-like text in this document."""
    flagged: bool = False
    """Intake reported ``injection_suspected`` on it."""

    @property
    def decision_correct(self) -> bool | None:
        return None if self.decision is None else self.decision == self.expected_decision

    def field_correct(self) -> dict[str, bool]:
        """Per field: no false positive and no false negative on this document."""
        return {name: f.fp == 0 and f.fn == 0 for name, f in self.fields.items()}


def score_document(doc: GeneratedDoc, out: DocOutcome) -> DocScore:
    """Score one outcome against its document's gold."""
    gold = doc.gold
    fields = {f: FieldScore() for f in FIELDS}
    scored = gold.expected_decision not in ("quarantine", "duplicate")
    ok = _compare(gold, out, fields) if scored else True
    auto = out.decision == "auto_create" and not out.parked
    wrong = False
    if auto:
        wrong = out.created_wrong if out.created_wrong is not None else not (scored and ok)
    return DocScore(
        doc_id=doc.doc_id,
        format=gold.format,
        expected_decision=gold.expected_decision,
        decision=out.decision,
        scored=scored,
        exact=ok,
        fields=fields,
        auto_created=auto,
        auto_created_wrong=wrong,
        parked=out.parked,
        injected="injection" in gold.anomalies,
        flagged="injection_suspected" in out.finding_codes,
    )


def aggregate(docs: Sequence[DocScore], *, mode: str = "pipeline") -> IntakeScores:
    """Add per-document scores up to the corpus's numbers (what :func:`score_outcomes` reports)."""
    fields = {f: FieldScore() for f in FIELDS}
    confusion: dict[str, Counter[str]] = {}
    by_format: dict[str, Counter[str]] = {}
    exact = reviewed = decided = right = 0
    wrong_auto: list[str] = []
    for d in docs:
        for name, f in d.fields.items():
            agg = fields.setdefault(name, FieldScore())
            agg.tp, agg.fp, agg.fn = agg.tp + f.tp, agg.fp + f.fp, agg.fn + f.fn
        fmt = by_format.setdefault(d.format, Counter())
        fmt["documents"] += 1
        if d.scored and d.exact:
            exact += 1
            fmt["exact"] += 1
        if d.decision is not None:
            decided += 1
            confusion.setdefault(d.expected_decision, Counter())[d.decision] += 1
            right += d.decision == d.expected_decision
            reviewed += d.decision == "review"
        if d.auto_created_wrong:
            wrong_auto.append(d.doc_id)
    n_scored = sum(d.scored for d in docs)
    return IntakeScores(
        mode=mode,
        documents=len(docs),
        fields=fields,
        exact_match=exact,
        exact_match_rate=exact / n_scored if n_scored else 1.0,
        review_rate=reviewed / decided if decided else 0.0,
        decision_accuracy=right / decided if decided else None,
        decisions={k: dict(v) for k, v in sorted(confusion.items())},
        auto_created=sum(d.auto_created for d in docs),
        auto_created_wrong=len(wrong_auto),
        auto_created_wrong_ids=wrong_auto,
        by_format={k: dict(v) for k, v in sorted(by_format.items())},
    )


def score_outcomes(
    corpus: Sequence[GeneratedDoc], outcomes: Sequence[DocOutcome], *, mode: str = "pipeline"
) -> IntakeScores:
    """Score ``outcomes`` (one per corpus document, same order) against the corpus's gold."""
    return aggregate([score_document(d, o) for d, o in zip(corpus, outcomes, strict=True)], mode=mode)


# --- the parsers alone ---------------------------------------------------------------------------


def parse_outcome(doc: GeneratedDoc, catalog: Catalog) -> DocOutcome:
    """The parsers' reading of one document, with the ship-to matched to the catalogue; no decision."""
    _fmt, orders, findings = parse_bytes(doc.data, filename=doc.filename, media_type=doc.media_type)
    codes = [f.code for f in findings]
    quarantined = any(f.code in QUARANTINE_CODES and f.severity == Severity.ERROR for f in findings)
    po = orders[0] if orders and not quarantined else None
    addresses = [a for c in catalog.customers for a in c.addresses]
    customer = next((c.id for c in catalog.customers if c.email == doc.gold.sender), None) if po else None
    return DocOutcome(
        doc_id=doc.doc_id,
        order=po,
        customer_id=customer,
        ship_to_address_id=match_ship_to(po.ship_to, addresses) if po else None,
        finding_codes=codes,
    )


def score_parsing(corpus: Sequence[GeneratedDoc], catalog: Catalog) -> IntakeScores:
    """Extraction quality of the parsers alone (customer taken from the sender, as the channel says)."""
    return score_outcomes(corpus, [parse_outcome(d, catalog) for d in corpus], mode="parsers")


# --- the whole pipeline --------------------------------------------------------------------------


def _created_wrong(gold: GoldOrder, order_id: str, deps: IntakeDeps) -> bool:
    """Whether the OMS order intake created differs from the gold in any field (prices: contract)."""
    order = deps.gateway.env.adapters.oms.get_order(order_id)
    want = sorted((g.sku, g.quantity, g.expected_price) for g in gold.lines)
    got = sorted((ln.sku, ln.quantity, ln.unit_price) for ln in order.lines)
    return not (
        order.customer_id == gold.customer_id
        and order.ship_to_id == gold.ship_to_address_id
        and (order.external_ref or None) == gold.po_number
        and want == got
    )


def run_document(doc: GeneratedDoc, deps: IntakeDeps, catalog: Catalog) -> DocOutcome:
    """Receive one document, run the pipeline on it and say what it decided, in the corpus's terms.

    The extraction fields are what the parsers read (customer from the pipeline); an ``auto_create``
    carries whether the created OMS order differs from the gold in anything.
    """
    stored = deps.documents.receive(doc.data, channel="eval", filename=doc.filename, media_type=doc.media_type,
                                    sender=doc.gold.sender)  # fmt: skip
    result = process_document(stored.id, deps)
    parsed = parse_outcome(doc, catalog)
    out = parsed.model_copy(update={"customer_id": None})
    if stored.duplicate:
        out.decision = "duplicate"
    elif result.status in ("quarantined", "failed"):
        out.decision = "quarantine"
    elif result.outcomes:
        first = result.outcomes[0]
        out.decision = first.decision
        out.customer_id = first.customer_id
        out.order_id = first.order_id
        if first.decision == "auto_create" and first.order_id:
            out.created_wrong = _created_wrong(doc.gold, first.order_id, deps)
        out.parked = first.decision == "auto_create" and first.order_id is None
    else:
        out.decision = "review"
    return out


def score_intake(corpus: Sequence[GeneratedDoc], deps: IntakeDeps, catalog: Catalog) -> IntakeScores:
    """Receive every corpus document (in order, on one database) and score what the pipeline decided."""
    outcomes = [run_document(doc, deps, catalog) for doc in corpus]
    return score_outcomes(corpus, outcomes, mode="pipeline (deterministic)")


# --- report --------------------------------------------------------------------------------------


def format_table(scores: IntakeScores) -> str:
    rows = [f"intake scores ({scores.mode}, {scores.documents} documents)", ""]
    rows.append(f"{'field':<12}{'precision':>10}{'recall':>10}{'f1':>8}{'tp':>7}{'fp':>6}{'fn':>6}")
    for name, f in scores.fields.items():
        rows.append(f"{name:<12}{f.precision:>10.3f}{f.recall:>10.3f}{f.f1:>8.3f}{f.tp:>7}{f.fp:>6}{f.fn:>6}")
    rows.append("")
    rows.append(f"order exact match    {scores.exact_match} ({scores.exact_match_rate:.1%})")
    rows.append(f"review rate          {scores.review_rate:.1%}")
    acc = "n/a" if scores.decision_accuracy is None else f"{scores.decision_accuracy:.1%}"
    rows.append(f"decision accuracy    {acc}")
    rows.append(f"auto-created         {scores.auto_created}, with any wrong field: {scores.auto_created_wrong}")
    for expected, got in scores.decisions.items():
        rows.append(f"  expected {expected:<12} -> " + ", ".join(f"{k}: {v}" for k, v in sorted(got.items())))
    rows.append(
        "by format: " + ", ".join(f"{k} {v.get('exact', 0)}/{v['documents']}" for k, v in scores.by_format.items())
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None, *, run: Callable[..., IntakeScores] | None = None) -> None:  # pragma: no cover
    import tempfile
    from pathlib import Path

    from core.db import make_database, migrate
    from core.netgen import NetworkSpec, generate_network
    from intake.samples import generate_corpus, load_catalog

    p = argparse.ArgumentParser(description="Score order intake on the generated corpus.")
    p.add_argument("--count", type=int, default=210)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--mode", choices=("parsers", "pipeline"), default="pipeline")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(url=f"sqlite:///{Path(tmp) / 'intake-eval.db'}")
        try:
            migrate(db)
            generate_network(db, NetworkSpec(seed=args.seed, nodes=3, skus=120, customers=8, orders=0))
            catalog = load_catalog(db)
            corpus = generate_corpus(catalog, seed=args.seed, count=args.count)
            scores = score_parsing(corpus, catalog)
        finally:
            db.dispose()
    print(format_table(scores))


if __name__ == "__main__":  # pragma: no cover
    main()
