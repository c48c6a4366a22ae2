"""Acknowledgment drafts for received purchase orders: X12 997 and 855, EDIFACT ORDRSP, reply e-mail.

Drafts only: they are stored (:class:`AckStore`) with the intake result and sent later, as an
approved action of their own; nothing here talks to a partner. Builders are pure functions of the
validated order, the outcome and explicit control numbers / timestamps (never a clock or counter
read here), so the same input gives the same bytes.

* X12 855: BAK (``AD`` accepted, ``AC`` accepted with changes, ``RJ`` rejected) and per line PO1 +
  ACK with ``IA`` accepted, ``IC`` accepted with changes, ``IR`` rejected.
* EDIFACT ORDRSP (D96A): BGM 231 with function ``29`` accepted, ``4`` changed, ``27`` rejected;
  LIN (action ``5`` accepted, ``3`` changed, ``7`` not accepted) + QTY 21 (+ DTM 2 when a delivery
  date was requested).
* E-mail: a plain-text reply summarising accepted lines, or the questions a reviewer must settle.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import Clock
from core.db.engine import Database
from core.db.tables_intake import IntakeAckRow
from intake.validate import ValidatedLine, ValidatedOrder
from intake.x12 import EnvelopeIds

__all__ = [
    "AckDraft",
    "AckKind",
    "AckStatus",
    "AckStore",
    "ack_key",
    "draft_855",
    "draft_ordrsp",
    "draft_reply_email",
    "line_status",
    "order_ack_key",
]

AckKind = Literal["x12-997", "x12-855", "edifact-ordrsp", "email"]
AckStatus = Literal["accepted", "changed", "rejected", "pending"]
"""``pending``: a person still has to decide (only the e-mail reply is drafted then)."""


class AckDraft(BaseModel):
    id: str = ""
    document_id: str
    po_index: int | None = None
    kind: AckKind
    recipient: str | None = None
    subject: str | None = None
    body: str
    status: str = "draft"
    created_at: datetime | None = None
    key: str | None = None
    """The draft's identity across runs (:func:`ack_key`); ``None``: every save adds a draft."""


def ack_key(document_id: str, po_index: int | None, kind: str, answers: str) -> str:
    """What makes two drafts the same one: the document, the PO in it (or the interchange, for a
    997), the kind and the decision it answers (``intake-pending``, ``review-accepted``...). A
    pending reply and the later confirmation of one PO differ; the same confirmation drafted by
    two workers does not."""
    return f"{document_id}:{'-' if po_index is None else po_index}:{kind}:{answers}"[:200]


def order_ack_key(order_id: str, status: str) -> str:
    """The key of an order's confirmation (``accepted``/``changed``), whatever document or format
    it answers: one PO sent twice at once becomes one order (its create is keyed by the PO), and
    it is confirmed once, as when the copies arrive one after the other (the second is a duplicate,
    not confirmed)."""
    return f"order:{order_id}:{status}"[:200]


class AckStore:
    """Acknowledgment drafts, per document."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def save(self, draft: AckDraft) -> AckDraft:
        """Store ``draft``; returns the stored draft. A keyed draft is stored once: insert-or-ignore
        on the unique key (not check-then-insert, which two workers pass together), then whichever
        draft holds the key is returned, so every caller reports the same one."""
        # Ids start with the wall time in ns: drafts made within one tick of an injected (fixed)
        # clock still list in the order they were made, which "the latest reply" relies on.
        new_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:15]}"
        saved = draft.model_copy(update={"id": draft.id or new_id, "created_at": self.clock.now()})
        values = {"id": saved.id, "document_id": saved.document_id, "po_index": saved.po_index, "kind": saved.kind,
                  "recipient": saved.recipient, "subject": (saved.subject or None) and saved.subject[:998],
                  "body": saved.body, "status": saved.status, "created_at": saved.created_at,
                  "dedup_key": saved.key}  # fmt: skip
        with self.db.begin() as s:
            if saved.key is None:
                s.execute(insert(IntakeAckRow).values(**values))
                return saved
            upsert = pg_insert if self.db.is_postgres else sqlite_insert
            s.execute(upsert(IntakeAckRow).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"]))
            row = s.scalars(select(IntakeAckRow).where(IntakeAckRow.dedup_key == saved.key)).one()
            return saved if row.id == saved.id else _draft(row)

    def list(self, document_id: str) -> list[AckDraft]:
        with self.db.begin() as s:
            rows = s.scalars(
                select(IntakeAckRow)
                .where(IntakeAckRow.document_id == document_id)
                .order_by(IntakeAckRow.created_at, IntakeAckRow.id)
            ).all()
            return [_draft(r) for r in rows]


def _draft(r: IntakeAckRow) -> AckDraft:
    return AckDraft(id=r.id, document_id=r.document_id, po_index=r.po_index, kind=r.kind,  # type: ignore[arg-type]
                    recipient=r.recipient, subject=r.subject, body=r.body, status=r.status, created_at=r.created_at,
                    key=r.dedup_key)  # fmt: skip


# --- per line ---------------------------------------------------------------------------------------


def line_status(ln: ValidatedLine, status: AckStatus, corrected: set[int] | frozenset[int] = frozenset()) -> str:
    """``accepted``/``changed``/``rejected`` for one line of an order whose overall status is ``status``."""
    if status == "rejected":
        return "rejected"
    if ln.sku is None or ln.quantity is None:
        return "rejected"
    stated_price_per_base = (
        ln.stated_price / Decimal(ln.uom_factor or 1) if ln.stated_price is not None and ln.uom_factor else None
    )
    changed = ln.index in corrected or (
        stated_price_per_base is not None
        and ln.unit_price is not None
        and abs(stated_price_per_base - ln.unit_price) >= Decimal("0.005")
    )
    return "changed" if changed else "accepted"


def _num(v: Decimal | int | None) -> str:
    if v is None:
        return ""
    d = Decimal(v)
    return format(d.normalize(), "f") if d == d.to_integral_value() else format(d, "f")


# --- X12 855 ----------------------------------------------------------------------------------------

_X12_LINE = {"accepted": "IA", "changed": "IC", "rejected": "IR"}


def draft_855(
    v: ValidatedOrder,
    status: AckStatus,
    *,
    envelope: EnvelopeIds | None,
    interchange_control_number: int,
    group_control_number: int,
    now: datetime,
    corrected: set[int] | frozenset[int] = frozenset(),
    usage_indicator: str = "P",
) -> str:
    """The 855 interchange for one PO (``~`` segments, ``*`` elements, ``>`` components)."""
    if status == "pending":
        raise ValueError("an 855 is drafted once the PO is decided")
    po = v.purchase_order
    sender_q, sender = (envelope.isa_receiver_qualifier, envelope.isa_receiver_id) if envelope else ("ZZ", "ORDEROPS")
    recv_q, recv = (envelope.isa_sender_qualifier, envelope.isa_sender_id) if envelope else ("ZZ", "PARTNER")
    gs_from = envelope.gs_receiver_id if envelope else sender
    gs_to = envelope.gs_sender_id if envelope else recv

    def seg(*els: str) -> str:
        return "*".join(els) + "~"

    lines = [(ln, line_status(ln, status, corrected)) for ln in v.lines]
    if status == "rejected":
        bak = "RJ"
    elif any(st != "accepted" for _, st in lines):
        bak = "AC"
    else:
        bak = "AD"
    body = [
        seg("ST", "855", "0001"),
        seg(
            "BAK",
            "00",
            bak,
            po.po_number or "",
            (po.po_date or now.date()).strftime("%Y%m%d"),
            "",
            "",
            "",
            "",
            now.strftime("%Y%m%d"),
        ),
    ]
    for ln, st in lines:
        src = po.lines[ln.index] if ln.index < len(po.lines) else None
        line_no = ln.line_number or str(ln.index + 1)
        unit = ln.unit or ln.uom or "EA"
        qty = ln.ordered_quantity
        price = ln.stated_price
        if st == "changed" and ln.quantity is not None and ln.unit_price is not None:
            unit, qty, price = ln.uom or "EA", Decimal(ln.quantity) / Decimal(ln.uom_factor or 1), None
            price = ln.unit_price * Decimal(ln.uom_factor or 1)
        ids: list[str] = []
        if ln.sku:
            ids += ["VN", ln.sku]
        if ln.customer_part and ln.customer_part != ln.sku:
            ids += ["BP", ln.customer_part]
        elif src is not None and src.buyer_part_number and not ln.sku:
            ids += ["BP", src.buyer_part_number]
        body.append(seg("PO1", line_no, _num(qty), unit, _num(price), "", *ids))
        body.append(seg("ACK", _X12_LINE[st], _num(qty if st != "rejected" else ln.ordered_quantity), unit))
    body.append(seg("CTT", str(len(lines))))
    body.append(seg("SE", str(len(body) + 1), "0001"))
    isa = seg("ISA", "00", " " * 10, "00", " " * 10, sender_q[:2].ljust(2), sender[:15].ljust(15), recv_q[:2].ljust(2),
              recv[:15].ljust(15), now.strftime("%y%m%d"), now.strftime("%H%M"), "U", "00401",
              f"{interchange_control_number:09d}", "0", usage_indicator, ">")  # fmt: skip
    gs = seg("GS", "PR", gs_from, gs_to, now.strftime("%Y%m%d"), now.strftime("%H%M"), str(group_control_number), "X",
             "004010")  # fmt: skip
    tail = [seg("GE", "1", str(group_control_number)), seg("IEA", "1", f"{interchange_control_number:09d}")]
    return "".join([isa, gs, *body, *tail])


# --- EDIFACT ORDRSP ---------------------------------------------------------------------------------

_BGM_FUNCTION = {"accepted": "29", "changed": "4", "rejected": "27"}
_LIN_ACTION = {"accepted": "5", "changed": "3", "rejected": "7"}


def _edi_escape(value: str) -> str:
    out = []
    for ch in value:
        if ch in "?:+'":
            out.append("?")
        out.append(ch)
    return "".join(out)


def draft_ordrsp(
    v: ValidatedOrder,
    status: AckStatus,
    *,
    reference: str,
    now: datetime,
    sender_id: str = "ORDEROPS",
    recipient_id: str = "PARTNER",
    corrected: set[int] | frozenset[int] = frozenset(),
) -> str:
    """The ORDRSP interchange answering one ORDERS message (UNA + UNB..UNZ, D96A)."""
    if status == "pending":
        raise ValueError("an ORDRSP is drafted once the PO is decided")
    po = v.purchase_order
    e = _edi_escape
    ref = reference[:14]
    lines = [(ln, line_status(ln, status, corrected)) for ln in v.lines]
    overall = status if status == "rejected" else ("changed" if any(s != "accepted" for _, s in lines) else "accepted")
    msg = [
        "UNH+1+ORDRSP:D:96A:UN",
        f"BGM+231+{e((po.po_number or ref)[:35])}+{_BGM_FUNCTION[overall]}",
        f"DTM+137:{now:%Y%m%d}:102",
        f"RFF+ON:{e((po.po_number or '')[:35])}",
    ]
    if po.po_date is not None:
        msg.append(f"DTM+171:{po.po_date:%Y%m%d}:102")
    for ln, st in lines:
        item = f"+{e(ln.sku)}:SA" if ln.sku else (f"+{e(ln.customer_part)}:IN" if ln.customer_part else "")
        msg.append(f"LIN+{e(ln.line_number or str(ln.index + 1))}+{_LIN_ACTION[st]}{item}")
        qty = ln.ordered_quantity if st != "changed" or ln.quantity is None else Decimal(ln.quantity)
        unit = ln.unit or ln.uom or "EA" if st != "changed" else "EA"
        msg.append(f"QTY+21:{_num(qty)}:{e(unit)}")
        if v.requested_delivery is not None and st != "rejected":
            msg.append(f"DTM+2:{v.requested_delivery:%Y%m%d}:102")
    msg += ["UNS+S", f"CNT+2:{len(lines)}"]
    msg.append(f"UNT+{len(msg) + 1}+1")
    head = ["UNA:+.? '", f"UNB+UNOC:3+{e(sender_id)}+{e(recipient_id)}+{now:%y%m%d}:{now:%H%M}+{e(ref)}'"]
    return head[0] + head[1] + "".join(s + "'" for s in msg) + f"UNZ+1+{e(ref)}'"


# --- reply e-mail -------------------------------------------------------------------------------------


def draft_reply_email(
    v: ValidatedOrder,
    status: AckStatus,
    *,
    recipient: str | None,
    order_id: str | None = None,
    questions: list[str] | None = None,
    corrected: set[int] | frozenset[int] = frozenset(),
) -> tuple[str, str]:
    """``(subject, body)`` of the reply: accepted lines, or the questions a reviewer must settle."""
    po = v.purchase_order
    ref = po.po_number or "your order"
    who = v.customer_name or "there"
    if status == "pending":
        subject = f"Re: PO {ref} - questions before we can confirm"
        text = [f"Hello {who},", "", f"Thank you for purchase order {ref}. Before we can confirm it we need to "
                "check the following:", ""]  # fmt: skip
        text += [f"  - {q}" for q in (questions or ["a colleague is reviewing the order"])]
        text += ["", "We will confirm the order as soon as these points are settled; reply to this message if you "
                 "can clarify any of them.", "", "Order desk"]  # fmt: skip
        return subject, "\n".join(text) + "\n"
    if status == "rejected":
        subject = f"Re: PO {ref} - not accepted"
        text = [f"Hello {who},", "", f"We could not accept purchase order {ref}."]
        text += [f"  - {q}" for q in (questions or [])]
        text += ["", "Please send a corrected order or contact us.", "", "Order desk"]
        return subject, "\n".join(text) + "\n"
    subject = f"Re: PO {ref} - confirmed" + (f" as order {order_id}" if order_id else "")
    text = [f"Hello {who},", "", f"We confirm purchase order {ref}" + (f" (our order {order_id})" if order_id else "")
            + ". Accepted lines:", ""]  # fmt: skip
    for ln in v.lines:
        st = line_status(ln, status, corrected)
        if st == "rejected":
            text.append(
                f"  - line {ln.line_number or ln.index + 1}: {ln.customer_part or ln.description} - not accepted"
            )
            continue
        note = " (changed: please check)" if st == "changed" else ""
        text.append(f"  - line {ln.line_number or ln.index + 1}: {ln.quantity} x {ln.sku} at {ln.unit_price} each"
                    f"{note}")  # fmt: skip
    if questions:
        text += ["", "Notes:"] + [f"  - {q}" for q in questions]
    text += ["", "Thank you for your order.", "", "Order desk"]
    return subject, "\n".join(text) + "\n"
