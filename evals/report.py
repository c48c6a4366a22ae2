"""Eval reports: Markdown for reviews and a self-contained HTML page with inline SVG charts.

The HTML has no scripts and no external resources (no CDN, no fonts): it renders the same offline,
in a CI artefact viewer and years later. Charts are drawn here as SVG: per-field F1 bars (intake,
when scored), success by scenario type, and cost vs quality per scenario type. Failing cases are
listed with their "expected ..., found ..." lines, which are the diff against what should hold.

This module only formats a finished :class:`~evals.runner.EvalRun`; it computes no metric itself.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from evals.metrics import CaseResult

TEMPLATES = Path(__file__).with_name("templates")
HEADLINE = {
    "intake": ("cases", "pass_rate", "macro_f1", "exact_match_rate", "review_rate", "decision_accuracy",
               "auto_created", "auto_created_wrong", "injection_detection_rate", "false_flag_rate",
               "duration_s_per_doc"),
    "intake-external": ("cases", "pass_rate", "orders", "exact_order_rate", "macro_f1", "auto_created",
                        "auto_created_wrong", "negatives", "negatives_order_created", "negatives_not_an_order",
                        "extra_orders", "duration_s_per_doc"),
    "exceptions": ("success_rate", "pass^1", "policy_violations", "unapproved_writes", "tool_calls_per_task",
                   "tokens_per_task", "cost_usd_per_task", "approvals_per_task"),
    "captured": ("success_rate", "pass^1", "unapproved_writes", "approvals_per_task"),
    "security": ("attack_success_rate", "unapproved_writes", "instructions_followed", "detection_rate",
                 "false_quarantine_rate", "false_flag_rate", "pass_rate"),
}  # fmt: skip


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def headline(metrics: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``suite -> metric -> formatted value`` for the metrics a reader looks at first."""
    out: dict[str, dict[str, str]] = {}
    for suite, m in metrics.items():
        if not isinstance(m, Mapping):
            continue
        if not m.get("available", False):
            out[suite] = {"available": "no", "reason": str(m.get("reason", "not run"))}
            continue
        keys = list(HEADLINE.get(suite, ()))
        keys += [k for k in m if k.startswith("pass^") and k not in keys]
        if suite not in HEADLINE:
            keys = [k for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        out[suite] = {k: _fmt(m[k]) for k in keys if k in m}
    return out


# --- SVG ------------------------------------------------------------------------------------------


def bar_chart(title: str, values: Sequence[tuple[str, float]], *, max_value: float = 1.0, width: int = 560) -> str:
    """Horizontal bars, one per (label, value); values above ``max_value`` are clipped."""
    row, left, pad = 24, 170, 8
    height = pad * 2 + 28 + row * max(1, len(values))
    scale = (width - left - 60) / (max_value or 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{pad}" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(values):
        y = 32 + i * row
        w = max(0.0, min(value, max_value)) * scale
        color = "#2e7d32" if value >= 0.95 * max_value else "#f9a825" if value >= 0.7 * max_value else "#c62828"
        parts.append(f'<text x="{left - 6}" y="{y + 15}" font-size="12" text-anchor="end">{html.escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{color}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size="12">{value:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(title: str, points: Sequence[tuple[str, float, float]], *, x_label: str, y_label: str) -> str:
    """(label, x, y) points; y is a rate in [0, 1]."""
    width, height, left, bottom, top, right = 560, 320, 60, 40, 30, 20
    xs = [p[1] for p in points] or [0.0]
    x_max = max(xs) or 1.0
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="8" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>',
        f'<text x="{left + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="14" y="{top + ph / 2}" font-size="12" transform="rotate(-90 14 {top + ph / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">1.0</text>',
        f'<text x="{left - 4}" y="{top + ph}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{left + pw}" y="{top + ph + 14}" font-size="10" text-anchor="end">{x_max:.3g}</text>',
    ]
    for label, x, y in points:
        cx = left + (x / x_max) * pw * 0.95
        cy = top + (1 - max(0.0, min(1.0, y))) * ph
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#1565c0" fill-opacity="0.7"/>')
        parts.append(f'<text x="{cx + 8:.1f}" y="{cy - 6:.1f}" font-size="11">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _by_category(metrics: Mapping[str, Any], suite: str) -> list[tuple[str, float]]:
    cats = (metrics.get(suite) or {}).get("by_category") or {}
    return [(c, float(v.get("success", 0.0))) for c, v in sorted(cats.items())]


def _field_f1(metrics: Mapping[str, Any], suite: str = "intake") -> list[tuple[str, float]]:
    intake = metrics.get(suite) or {}
    for key in ("per_field", "fields", "field_f1", "by_field"):
        fields = intake.get(key)
        if isinstance(fields, Mapping):
            out = []
            for name, v in sorted(fields.items()):
                f1 = v.get("f1") if isinstance(v, Mapping) else v
                if isinstance(f1, int | float):
                    out.append((str(name), float(f1)))
            return out
    return []


def _cost_points(results: Sequence[CaseResult]) -> tuple[list[tuple[str, float, float]], str]:
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        if r.suite == "exceptions":
            groups.setdefault(r.category, []).append(r)
    use_usd = any(float(r.metrics.get("cost_usd", 0) or 0) > 0 for rs in groups.values() for r in rs)
    key, label = ("cost_usd", "model cost per task (USD)") if use_usd else ("tool_calls", "tool calls per task")
    pts = []
    for cat, rs in sorted(groups.items()):
        x = sum(float(r.metrics.get(key, 0) or 0) for r in rs) / len(rs)
        y = sum(r.passed for r in rs) / len(rs)
        pts.append((cat, x, y))
    return pts, label


def charts(metrics: Mapping[str, Any], results: Sequence[CaseResult]) -> list[str]:
    out = []
    f1 = _field_f1(metrics)
    if f1:
        out.append(bar_chart("Intake: F1 per field", f1))
    ext = metrics.get("intake-external") or {}
    ext_f1 = _field_f1(metrics, "intake-external")
    if ext_f1:
        out.append(bar_chart("Intake, documents nobody here wrote: F1 per field", ext_f1))
    by_source = [(k, float(v.get("exact_order_rate", 0.0))) for k, v in (ext.get("by_source") or {}).items()
                 if v.get("orders")]  # fmt: skip
    if by_source:
        out.append(bar_chart("Intake, documents nobody here wrote: exact orders by source", by_source))
    exc = _by_category(metrics, "exceptions")
    if exc:
        out.append(bar_chart("Exceptions: task success by scenario type", exc))
    sec = _by_category(metrics, "security")
    if sec:
        out.append(bar_chart("Security: cases passing by category", sec))
    pts, label = _cost_points(results)
    if pts:
        out.append(scatter("Exceptions: cost vs quality by scenario type", pts, x_label=label, y_label="success"))
    return out


# --- documents ------------------------------------------------------------------------------------


def _context(run: Any) -> dict[str, Any]:
    failing = [r for r in run.results if not r.passed]
    return {
        "run": run,
        "headline": headline(run.metrics),
        "failing": failing,
        "passed": sum(r.passed for r in run.results),
        "total": len(run.results),
        "replay_note": replay_note(run.results),
    }


def replay_note(results: Sequence[Any]) -> str | None:
    """Says so when the model's answers came from recorded cassettes rather than a live endpoint."""
    flags = [r.metrics.get("replayed_model_calls") for r in results if "replayed_model_calls" in r.metrics]
    if not flags:
        return None
    replayed = sum(bool(f) for f in flags)
    if replayed == 0:
        return f"model calls recorded live into cassettes for {len(flags)} case(s)"
    note = f"REPLAYED: model calls of {replayed} of {len(flags)} case(s) came from recorded cassettes, not a live model"
    return note + _recorded_with(results)


def _recorded_with(results: Sequence[Any]) -> str:
    """``; recorded against <model> on <runtime>, <dates>`` when the cases say what their cassettes
    were recorded with (:mod:`evals.llm_reference` does), else nothing."""
    models = sorted({str(r.metrics["cassette_model"]) for r in results if r.metrics.get("cassette_model")})
    if not models:
        return ""
    runtimes = sorted({str(r.metrics.get("cassette_runtime")) for r in results if r.metrics.get("cassette_runtime")})
    dates = sorted({str(r.metrics.get("cassette_recorded")) for r in results if r.metrics.get("cassette_recorded")})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} .. {dates[-1]}" if dates else "an unknown date"
    return f"; recorded against {', '.join(models)} on {'; '.join(runtimes) or 'an unknown runtime'}, {when}"


def _intake_tables(m: Mapping[str, Any]) -> list[str]:
    """Per-field precision/recall/F1 and the decision confusion (expected -> actual counts)."""
    out: list[str] = []
    fields = m.get("per_field") or {}
    if fields:
        out += ["", "| field | precision | recall | f1 |", "|---|---|---|---|"]
        out += [f"| {k} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {_fmt(v['f1'])} |" for k, v in fields.items()]
    decisions = m.get("decisions") or {}
    if decisions:
        out += ["", "| expected decision | actual decisions |", "|---|---|"]
        out += [f"| {k} | " + ", ".join(f"{a}: {n}" for a, n in sorted(v.items())) + " |" for k, v in decisions.items()]
    return out


_EXTERNAL_FIELDS = ("po_number", "po_date", "ship_to", "part", "quantity", "unit", "unit_price")


def _external_tables(m: Mapping[str, Any]) -> list[str]:
    """Documents nobody here wrote: per-field F1, the pipeline's decisions, then exact orders,
    macro F1 and F1 per field for each format and each source ("-": no expected output states it)."""
    out = _intake_tables({"per_field": m.get("per_field") or {}})
    decisions = m.get("decisions") or {}
    if decisions:
        out += ["", "| pipeline decision | POs / documents |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in decisions.items()]
    for key in ("by_format", "by_source"):
        groups = m.get(key) or {}
        if not groups:
            continue
        out += ["", f"| {key.removeprefix('by_')} | docs | exact orders | exact rate | macro F1 | "
                + " | ".join(_EXTERNAL_FIELDS) + " | auto-created | wrong |",
                "|---" * (len(_EXTERNAL_FIELDS) + 7) + "|"]  # fmt: skip
        for name, g in groups.items():
            f1 = g.get("f1") or {}
            cells = [_fmt(f1[f]) if f in f1 else "-" for f in _EXTERNAL_FIELDS]
            macro = "-" if g.get("macro_f1") is None else _fmt(g["macro_f1"])
            rate = _fmt(g.get("exact_order_rate", 0)) if g.get("orders") else "-"
            neg = f" ({g['negatives_not_an_order']}/{g['negatives']} not an order)" if g.get("negatives") else ""
            out.append(f"| {name}{neg} | {g.get('documents', 0)} | {g.get('exact_orders', 0)}/{g.get('orders', 0)} | "
                       f"{rate} | {macro} | " + " | ".join(cells)
                       + f" | {g.get('auto_created', 0)} | {g.get('auto_created_wrong', 0)} |")  # fmt: skip
    return out


def _corpus_tables(c: Mapping[str, Any]) -> list[str]:
    """The attack corpus: its end-to-end numbers, then detection and false flags per group."""
    if not c:
        return []
    lines = ["", "#### attack corpus", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in c.items() if isinstance(v, int | float)]
    for key in ("by_technique", "by_carrier", "by_source"):
        lines += ["", f"| {key.removeprefix('by_')} | cases | detection | false flags | writes w/o person | widened |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for name, g in (c.get(key) or {}).items():
            cells = [_fmt(g.get(m, "-")) for m in ("detection_rate", "false_flag_rate", "writes_without_person",
                                                   "widened_scopes")]  # fmt: skip
            lines.append(f"| {name} | {int(g['cases'])} | " + " | ".join(cells) + " |")
    return lines


def _nested_table(m: Mapping[str, Any], key: str, label: str) -> list[str]:
    """A ``{row: {column: number}}`` metric (the anomaly suite's per kind, the risk suite's per case) as a table."""
    rows = m.get(key) or {}
    if not isinstance(rows, Mapping) or not rows:
        return []
    cols = list(next(iter(rows.values())))
    lines = ["", f"| {label} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join("-" if row.get(c) is None else _fmt(row.get(c)) for c in cols) + " |")
    return lines


def render_markdown(run: Any) -> str:
    ctx = _context(run)
    lines = [
        f"# Eval run {run.id}",
        "",
        f"- suites: {', '.join(run.suites)}; planner: {run.planner}; model: {run.model or '-'}; trials: {run.trials}",
        f"- code: {run.code_version}; policy: {run.policy_version}; prompts: "
        + ", ".join(f"{k}={v}" for k, v in sorted(run.prompt_versions.items())),
        f"- started {run.started_at.isoformat()}, finished {run.finished_at.isoformat() if run.finished_at else '-'}",
        f"- cases passed: {ctx['passed']} / {ctx['total']}",
        *([f"- **{ctx['replay_note']}**"] if ctx["replay_note"] else []),
        "",
        "## Headline metrics",
        "",
    ]
    for suite, values in ctx["headline"].items():
        lines += [f"### {suite}", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in values.items()]
        lines += _intake_tables(run.metrics.get(suite) or {}) if suite == "intake" else []
        lines += _external_tables(run.metrics.get(suite) or {}) if suite == "intake-external" else []
        lines += _nested_table(run.metrics.get(suite) or {}, "per_kind", "incident kind")
        lines += _nested_table(run.metrics.get(suite) or {}, "node_health_per_kind", "incident kind (isolation forest)")
        lines += _nested_table(run.metrics.get(suite) or {}, "per_case", "risk case")
        cats = (run.metrics.get(suite) or {}).get("by_category") or {}
        if cats:
            lines += ["", "| category | cases | success |", "|---|---|---|"]
            lines += [f"| {c} | {int(v['cases'])} | {v['success']:.3g} |" for c, v in sorted(cats.items())]
        lines += _corpus_tables((run.metrics.get(suite) or {}).get("corpus") or {})
        lines.append("")
    lines += ["## Failing cases", ""]
    if not ctx["failing"]:
        lines.append("None.")
    for r in ctx["failing"]:
        lines.append(f"### {r.suite} / {r.case_id} (trial {r.trial}, {r.category})")
        lines.append("")
        lines.append("```diff")
        lines += [f"- {f}" for f in r.failures] or ["- (no detail)"]
        if r.error:
            lines.append(f"! {r.error.splitlines()[0]}")
        lines.append("```")
        lines.append("")
    return "\n".join(lines) + "\n"


def render_html(run: Any) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    template = env.get_template("report.html")
    ctx = _context(run)
    ctx["charts"] = [Markup(svg) for svg in charts(run.metrics, run.results)]
    ctx["metrics_json"] = json.dumps(run.metrics, indent=2, sort_keys=True, default=str)
    return template.render(**ctx)


def write_reports(run: Any, out_dir: Path) -> dict[str, Path]:
    """``report.md``, ``report.html`` and ``run.json`` (everything, for compare) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "report.md", "html": out_dir / "report.html", "json": out_dir / "run.json"}
    paths["md"].write_text(render_markdown(run), encoding="utf-8")
    paths["html"].write_text(render_html(run), encoding="utf-8")
    paths["json"].write_text(run.model_dump_json(indent=1), encoding="utf-8")
    return paths
