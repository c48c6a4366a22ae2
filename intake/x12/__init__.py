"""Our own small X12 reader for purchase orders (850) and the 997 acknowledgment we send back.

Public API::

    doc = parse_x12(data, document="orders.x12")   # never raises on bad input
    doc.purchase_orders, doc.transactions, doc.all_findings()
    generate_997(doc.interchanges[0], interchange_control_number=1, group_control_number=1, now=...)
"""

from __future__ import annotations

from intake.x12.ack997 import generate_997, group_ack_code
from intake.x12.envelope import (
    EnvelopeIds,
    TransactionMapper,
    X12Document,
    X12Group,
    X12Interchange,
    X12Transaction,
    parse_document,
)
from intake.x12.po850 import map_850
from intake.x12.tokenizer import Delimiters, Segment, decode, tokenize

__all__ = [
    "Delimiters",
    "EnvelopeIds",
    "Segment",
    "TransactionMapper",
    "X12Document",
    "X12Group",
    "X12Interchange",
    "X12Transaction",
    "decode",
    "generate_997",
    "group_ack_code",
    "map_850",
    "parse_x12",
    "tokenize",
]


def parse_x12(data: bytes | str, *, document: str | None = None) -> X12Document:
    """Read an X12 file (any number of interchanges); 850 sets become purchase orders."""
    return parse_document(data, mappers={"850": map_850}, document=document)
