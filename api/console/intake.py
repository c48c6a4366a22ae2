"""The intake review queue in the console: the original document beside the extracted order.

The document is shown as a person reads it — a PDF page as an image (rendered by pdfplumber) with
each extracted value's bounding box as an overlay, EDI one segment per line with element positions,
other text line by line — and every field of the validated order carries its confidence, findings
and a button that highlights where the value came from. Corrections, approval and rejection go
through :class:`intake.review.ReviewQueue`, which creates orders only through the tool gateway.

What this module must never do: create or change an order itself.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.auth import Principal, Role
from api.bootstrap import AppContext, make_document_store
from api.console.pages import one, post_form, render, user_of
from core.errors import NotFound, OrderOpsError, PolicyDenied, ValidationFailed
from intake.documents import StoredDocument
from intake.model import Source
from intake.pipeline import IntakeDeps
from intake.review import ReviewItem

router = APIRouter(prefix="/console/intake", include_in_schema=False)

IntakeFactory = Callable[[AppContext], IntakeDeps]
"""How the console reaches the intake pipeline's stores (documents, review queue)."""


def default_intake(actx: AppContext) -> IntakeDeps:
    """Documents under ``<home>/documents``, the context's gateway."""
    store = make_document_store(actx)
    return IntakeDeps(db=actx.db, clock=actx.clock, documents=store, gateway=actx.gateway,
                      risk_hold=actx.settings.order_risk_hold)  # fmt: skip


def can_review(user: Principal) -> bool:
    return user.has(Role.OPERATOR) or user.has(Role.APPROVER)


# --- what the page shows ----------------------------------------------------------------------------


@dataclass
class FieldView:
    key: str
    """``f<n>``: the token that ties the field's button to its highlighted sources."""
    path: str
    label: str
    value: str
    confidence: float | None
    findings: list[str]
    blocking: bool
    correctable: bool
    sources: list[Source] = field(default_factory=list)


@dataclass
class Piece:
    """A run of document text (an EDI element, a text line) and the fields sourced from it."""

    text: str
    start: int
    end: int
    fields: list[str] = field(default_factory=list)
    label: str = ""


@dataclass
class Line:
    label: str
    pieces: list[Piece]


@dataclass
class DocView:
    doc: StoredDocument
    kind: str
    """``pdf``, ``edi`` or ``text``."""
    lines: list[Line] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    """PDF: ``{number, width, height, boxes: [(key, x, y, w, h)]}``."""
    error: str | None = None


_SOURCE_OF = [
    (re.compile(r"^lines\[(\d+)\]\.sku$"), "lines[{0}].product_ids"),
    (re.compile(r"^lines\[(\d+)\]\.uom$"), "lines[{0}].unit"),
    (re.compile(r"^lines\[(\d+)\]\.price$"), "lines[{0}].unit_price"),
    (re.compile(r"^lines\[(\d+)\]\.unit_price$"), "lines[{0}].unit_price"),
]


def fields_of(item: ReviewItem) -> list[FieldView]:
    v = item.validated
    sources = item.extracted.sources
    out: list[FieldView] = []

    def add(path: str, label: str, value: Any, *, conf: str | None = None, correctable: bool = True) -> None:
        found = [f for f in v.findings if f.field in (path, conf)]
        srcs = [f.source for f in found if f.source is not None]
        prefix = path
        for rx, template in _SOURCE_OF:
            m = rx.match(path)
            if m:
                prefix = template.format(m.group(1))
        srcs += [
            s for k, s in sources.items() if k == prefix or k.startswith(prefix + "[") or k.startswith(prefix + ".")
        ]
        if path in ("customer", "ship_to"):
            srcs += [s for k, s in sources.items() if k.startswith("parties[")]
        out.append(
            FieldView(
                key=f"f{len(out)}",
                path=path,
                label=label,
                value="" if value is None else str(value),
                confidence=v.confidence.get(conf or path),
                findings=[f"{f.severity}: {f.message}" for f in found],
                blocking=any(f.blocking for f in found),
                correctable=correctable,
                sources=srcs,
            )
        )

    add("customer", "Customer", v.customer_id)
    add("ship_to", "Ship to", v.ship_to_id)
    add("po_number", "PO number", v.po_number)
    add("po_date", "PO date", item.extracted.po_date)
    for ln in v.lines:
        i = ln.index
        add(f"lines[{i}].sku", f"Line {i + 1} SKU (part {ln.customer_part or '?'})", ln.sku)
        add(f"lines[{i}].quantity", f"Line {i + 1} quantity", ln.ordered_quantity, conf=f"lines[{i}].quantity")
        add(f"lines[{i}].uom", f"Line {i + 1} unit", ln.uom or ln.unit)
        add(f"lines[{i}].unit_price", f"Line {i + 1} unit price", ln.stated_price, conf=f"lines[{i}].price")
    return out


def document_view(deps: IntakeDeps, item: ReviewItem, fields: list[FieldView]) -> DocView:
    doc = deps.documents.get(item.document_id)
    try:
        data = deps.documents.get_bytes(item.document_id)
    except OrderOpsError as exc:
        return DocView(doc=doc, kind="text", error=exc.message)
    fmt = doc.format.value
    if fmt == "pdf":
        return DocView(doc=doc, kind="pdf", pages=_pdf_pages(data, fields))
    text = _decode(data, fmt)
    spans = [(f.key, s.span) for f in fields for s in f.sources if s.span is not None]
    if fmt in ("x12", "edifact"):
        return DocView(doc=doc, kind="edi", lines=_edi_lines(text, fmt, spans))
    return DocView(doc=doc, kind="text", lines=_text_lines(text, spans))


def _decode(data: bytes, fmt: str) -> str:
    if fmt == "email":
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        head = "".join(f"{k}: {msg[k]}\n" for k in ("From", "To", "Subject", "Date") if msg[k])
        return head + "\n" + (body.get_content() if body is not None else "")
    return data.decode("utf-8", errors="replace")


def _tag(piece: Piece, spans: list[tuple[str, tuple[int, int]]]) -> Piece:
    piece.fields = sorted({k for k, (a, b) in spans if a < piece.end and b > piece.start})
    return piece


def _edi_lines(text: str, fmt: str, spans: list[tuple[str, tuple[int, int]]]) -> list[Line]:
    """One segment per line; each element labelled with its position (``PO1-02``)."""
    if fmt == "x12" and len(text) > 106 and text.startswith("ISA"):
        seg_t, elem_t = text[105], text[3]
    else:
        seg_t, elem_t = "'", "+"
    lines: list[Line] = []
    pos = 0
    for raw in text.split(seg_t):
        start = pos
        pos += len(raw) + 1
        stripped = raw.lstrip("\r\n")
        offset = start + len(raw) - len(stripped)
        if not stripped.strip():
            continue
        parts = stripped.rstrip("\r\n").split(elem_t)
        seg_id = parts[0]
        pieces = [_tag(Piece(text=seg_id, start=offset, end=offset + len(seg_id)), spans)]
        cur = offset + len(seg_id) + 1
        for n, value in enumerate(parts[1:], start=1):
            pieces.append(_tag(Piece(text=value, start=cur, end=cur + len(value), label=f"{n:02d}"), spans))
            cur += len(value) + 1
        lines.append(Line(label=seg_id, pieces=pieces))
    return lines


def _text_lines(text: str, spans: list[tuple[str, tuple[int, int]]]) -> list[Line]:
    lines: list[Line] = []
    pos = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        lines.append(Line(label="", pieces=[_tag(Piece(text=body, start=pos, end=pos + len(body)), spans)]))
        pos += len(raw)
    return lines


def _pdf_pages(data: bytes, fields: list[FieldView]) -> list[dict[str, Any]]:
    import pdfplumber

    pages = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages[:10], start=1):
            boxes = [
                (f.key, s.bbox[0], s.bbox[1], s.bbox[2] - s.bbox[0], s.bbox[3] - s.bbox[1])
                for f in fields
                for s in f.sources
                if s.bbox is not None and (s.page or 1) == number
            ]
            pages.append({"number": number, "width": float(page.width), "height": float(page.height), "boxes": boxes})
    return pages


def render_pdf_page(data: bytes, number: int) -> bytes:
    """One page as a PNG (pdfplumber's renderer, headless)."""
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        if not 1 <= number <= min(len(pdf.pages), 10):
            raise NotFound("page", str(number))
        out = io.BytesIO()
        pdf.pages[number - 1].to_image(resolution=110).save(out, format="PNG")
        return out.getvalue()


# --- routes -----------------------------------------------------------------------------------------


def _deps(request: Request) -> IntakeDeps:
    factory: IntakeFactory = request.app.state.console_intake
    return factory(request.app.state.actx)


@router.get("", response_class=HTMLResponse)
def intake_list(request: Request, status: str = "open") -> HTMLResponse:
    user = user_of(request)
    queue = _deps(request).review_queue()
    wanted = status if status in ("open", "awaiting_approval", "approved", "rejected") else None
    items = queue.list(wanted, limit=200)  # type: ignore[arg-type]
    return render(request, "intake_list.html", {"user": user, "items": items, "status": wanted or ""})


@router.get("/{item_id}", response_class=HTMLResponse)
def intake_item(request: Request, item_id: str) -> HTMLResponse:
    user = user_of(request)
    deps = _deps(request)
    try:
        item = deps.review_queue().get(item_id)
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    return render(request, "intake_item.html", _item_ctx(user, deps, item, "", False))


def _item_ctx(user: Principal, deps: IntakeDeps, item: ReviewItem, message: str, ok: bool) -> dict[str, Any]:
    fields = fields_of(item)
    return {
        "user": user,
        "item": item,
        "fields": fields,
        "docview": document_view(deps, item, fields),
        "message": message,
        "ok": ok,
        "can_review": can_review(user),
    }


@router.get("/{item_id}/page/{number}.png")
def intake_page_image(request: Request, item_id: str, number: int) -> Response:
    user_of(request)
    deps = _deps(request)
    try:
        item = deps.review_queue().get(item_id)
        png = render_pdf_page(deps.documents.get_bytes(item.document_id), number)
    except NotFound:
        return Response(status_code=404)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.post("/{item_id}", response_class=HTMLResponse)
async def intake_decide(request: Request, item_id: str) -> HTMLResponse:
    """Save corrections, then (``action``) approve or reject; answers the page with the outcome."""
    user = user_of(request)
    deps = _deps(request)
    queue = deps.review_queue()
    message, ok = "", False
    try:
        item = queue.get(item_id)
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    try:
        form = await post_form(request)
        if not can_review(user):
            raise PolicyDenied(f"{user.id} needs the operator or approver role to review intake")
        action = one(form, "action")
        if action == "reject":
            reason = one(form, "reason")
            if not reason:
                raise ValidationFailed("a rejection needs a reason")
            item = queue.reject(item_id, user.actor(), reason)
            message, ok = "rejected; the sender is told", True
        elif action in ("correct", "approve"):
            current = {f.path: f.value for f in fields_of(item) if f.correctable}
            changes = {
                path: one(form, f"c_{path}")
                for path in current
                if f"c_{path}" in form and one(form, f"c_{path}") and one(form, f"c_{path}") != current[path]
            }
            if changes:
                item = queue.correct(item_id, user.actor(), changes)
            if action == "approve":
                item = queue.approve(item_id, user.actor())
                if item.order_id:
                    message = f"approved: order {item.order_id} created"
                else:
                    message = f"approved; the order waits for another approver ({item.status})"
            else:
                message = f"saved {len(changes)} correction(s)" if changes else "nothing to correct"
            ok = True
        else:
            raise ValidationFailed("unknown action")
    except OrderOpsError as exc:
        message = exc.message
        item = queue.get(item_id)
    return render(request, "intake_item.html", _item_ctx(user, deps, item, message, ok))
