"""Build the 997 functional acknowledgment for one received X12 interchange.

One outgoing interchange per received interchange, one FA group inside it, and one 997 per
functional group received (as bots and most translators do). Sender and receiver are swapped and
the received delimiters are reused. Control numbers and the timestamp are parameters, never read
from a clock or a counter here, so the output is deterministic and the caller owns numbering.
"""

from __future__ import annotations

from datetime import datetime

from intake.x12.envelope import X12Group, X12Interchange
from intake.x12.tokenizer import Delimiters


def group_ack_code(group: X12Group) -> str:
    """AK9-01: ``A`` all accepted, ``E`` accepted with errors, ``P`` partially, ``R`` rejected."""
    codes = [t.ack_code for t in group.transactions]
    accepted = sum(1 for c in codes if c in ("A", "E"))
    if not codes or accepted == 0:
        return "R"
    if accepted < len(codes):
        return "P"
    if "E" in codes or group.errors:
        return "E"
    return "A"


def _isa_field(value: str, width: int) -> str:
    return value[:width].ljust(width)


def generate_997(
    interchange: X12Interchange,
    *,
    interchange_control_number: int,
    group_control_number: int,
    first_set_control_number: int = 1,
    now: datetime,
    version: str = "004010",
    delimiters: Delimiters | None = None,
) -> str:
    """The 997 interchange acknowledging every functional group of ``interchange``, as text."""
    d = delimiters or interchange.delimiters
    e = d.element
    comp = d.component or ">"
    term = d.segment if d.segment in ("\r", "\n") else d.segment + d.segment_suffix

    def seg(*elements: str) -> str:
        return e.join(elements) + term

    isa_version = interchange.version or "00401"
    rep = interchange.repetition_or_standards or "U"
    out: list[str] = [
        seg(
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            _isa_field(interchange.receiver_qualifier or "ZZ", 2),
            _isa_field(interchange.receiver_id, 15),
            _isa_field(interchange.sender_qualifier or "ZZ", 2),
            _isa_field(interchange.sender_id, 15),
            now.strftime("%y%m%d"),
            now.strftime("%H%M"),
            rep[:1],
            isa_version[:5].rjust(5, "0"),
            f"{interchange_control_number:09d}",
            "0",
            interchange.usage_indicator or "P",
            comp,
        )
    ]
    groups = [g for g in interchange.groups if g.functional_id]
    gs_sender = groups[0].receiver_id if groups else interchange.receiver_id
    gs_receiver = groups[0].sender_id if groups else interchange.sender_id
    out.append(
        seg(
            "GS",
            "FA",
            gs_sender,
            gs_receiver,
            now.strftime("%Y%m%d"),
            now.strftime("%H%M"),
            str(group_control_number),
            "X",
            version,
        )
    )
    set_no = first_set_control_number
    for group in groups:
        control = f"{set_no:04d}"
        body = [seg("ST", "997", control), seg("AK1", group.functional_id, group.control_number)]
        for tx in group.transactions:
            body.append(seg("AK2", tx.set_id, tx.control_number))
            code = tx.ack_code
            errs = tx.syntax_errors[:5] if code == "R" else (["5"] if code == "E" else [])
            body.append(seg("AK5", code, *errs))
        received = len(group.transactions)
        accepted = sum(1 for t in group.transactions if t.ack_code in ("A", "E"))
        declared = group.declared_count if group.declared_count is not None else received
        body.append(seg("AK9", group_ack_code(group), str(declared), str(received), str(accepted), *group.errors[:5]))
        body.append(seg("SE", str(len(body) + 1), control))
        out.extend(body)
        set_no += 1
    out.append(seg("GE", str(len(groups)), str(group_control_number)))
    out.append(seg("IEA", "1", f"{interchange_control_number:09d}"))
    return "".join(out)
