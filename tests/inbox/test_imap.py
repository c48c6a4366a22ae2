"""The IMAP poller against a real dovecot on loopback: store -> dispatch -> move, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from imap_tools.mailbox import BaseMailBox
from sqlalchemy import func, select

from api.inbox.imap import ImapConfig, ImapPoller
from api.inbox.ingest import DirectDispatcher, InboxLedger, Ingestor, IngestOutcome, JobDispatcher
from core.db import Database
from core.db.tables import DocumentRow
from core.db.tables_intake import IntakeResultRow
from core.outbox import INTAKE_PROCESS, Outbox
from intake.pipeline import load_result
from tests.inbox.conftest import Shop, build_shop
from tools.adapters.protocols import OrderFilter

PROCESSED = "OrderOps.Processed"  # dovecot's Maildir layout separates levels with '.'


class Crash(RuntimeError):
    pass


def poller(shop: Shop, cfg: ImapConfig, *, direct: bool = True, crash_after: int | None = None) -> ImapPoller:
    dispatch = DirectDispatcher(shop.deps) if direct else JobDispatcher(Outbox(shop.net.db))
    ingestor = Ingestor(shop.store, InboxLedger(shop.net.db, shop.net.clock), dispatch)
    seen: list[str] = []

    def hook(uid: str, out: IngestOutcome) -> None:
        seen.append(uid)
        if crash_after is not None and len(seen) == crash_after:
            raise Crash(f"killed after dispatching uid {uid}, before moving it")

    return ImapPoller(cfg, ingestor, shop.net.db, shop.net.clock, after_dispatch=hook, batch_size=2)


def count(db: Database, model: type) -> int:
    with db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def uids(box: BaseMailBox, folder: str) -> list[str]:
    box.folder.set(folder)
    return list(box.uids())


def orders_for(shop: Shop, po: str) -> list[str]:
    orders = shop.net.adapters.oms.list_orders(OrderFilter(), limit=100_000)
    return [o.id for o in orders if o.external_ref == po]


def assert_one_outcome(shop: Shop, document_id: str, po: str) -> None:
    result = load_result(document_id, shop.deps)
    assert result is not None
    assert result.status == "processed", result
    (out,) = result.outcomes
    assert out.po_number == po
    assert out.status in ("created", "queued", "awaiting_approval")
    assert len(orders_for(shop, po)) == (1 if out.status == "created" else 0)
    if out.status != "created":
        assert out.review_item_id is not None


@pytest.mark.parametrize("attachment", ["pdf", "csv"])
def test_po_email_becomes_one_order_or_review_item(
    db: Database, tmp_path: Path, imap_cfg: ImapConfig, imap_box: BaseMailBox, attachment: str
) -> None:
    shop = build_shop(db, tmp_path)
    raw, po = shop.po_email(1, attachment=attachment)
    imap_box.append(raw, "INBOX")
    report = poller(shop, imap_cfg).poll_once()
    assert (report.fetched, report.new, report.moved, report.errors) == (1, 1, 1, 0)
    out = report.outcomes[0]
    doc = shop.store.get(out.document_id)
    assert (doc.channel, doc.external_id, doc.format) == ("email", out.message_id, "email")
    # Stored exactly as the server holds it (IMAP speaks CRLF; the sender's bytes had bare LF).
    assert shop.store.get_bytes(doc.id) == raw.replace(b"\n", b"\r\n")
    assert_one_outcome(shop, doc.id, po)
    assert uids(imap_box, "INBOX") == []
    assert len(uids(imap_box, PROCESSED)) == 1
    # Polling again finds nothing new and changes nothing.
    again = poller(shop, imap_cfg).poll_once()
    assert again.fetched == 0
    assert count(db, DocumentRow) == 1
    assert count(db, IntakeResultRow) == 1


def test_same_message_id_twice_is_one_document_and_one_outcome(
    shop: Shop, imap_cfg: ImapConfig, imap_box: BaseMailBox
) -> None:
    raw, po = shop.po_email(2, message_id="<same-po-2@customer.example>")
    imap_box.append(raw, "INBOX")
    imap_box.append(raw, "INBOX")
    # A re-delivery through another relay: different bytes, same Message-ID.
    imap_box.append(b"Received: from relay2.example by mx.example; Mon, 23 Nov 2026 09:00:00 +0000\r\n" + raw, "INBOX")
    report = poller(shop, imap_cfg).poll_once()
    assert (report.fetched, report.new, report.known, report.moved) == (3, 1, 2, 3)
    assert len({o.document_id for o in report.outcomes}) == 1
    db = shop.net.db
    assert count(db, DocumentRow) == 1
    assert count(db, IntakeResultRow) == 1
    assert_one_outcome(shop, report.outcomes[0].document_id, po)
    assert uids(imap_box, "INBOX") == []
    assert len(uids(imap_box, PROCESSED)) == 3
    # Moved back into the inbox by a person: it is moved again, nothing else happens.
    imap_box.folder.set(PROCESSED)
    imap_box.move(imap_box.uids()[:1], "INBOX")
    back = poller(shop, imap_cfg).poll_once()
    assert (back.fetched, back.new, back.moved) == (1, 0, 1)
    assert count(db, DocumentRow) == 1
    assert count(db, IntakeResultRow) == 1
    row = InboxLedger(db, shop.net.clock).get("<same-po-2@customer.example>")
    assert row is not None
    assert row.times_seen == 4
    assert row.status == "moved"


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "jobs"])
def test_poller_killed_mid_batch_and_restarted_processes_each_message_once(
    shop: Shop, imap_cfg: ImapConfig, imap_box: BaseMailBox, direct: bool
) -> None:
    pos = []
    for n in range(10, 15):
        raw, po = shop.po_email(n, attachment="csv" if n % 2 else "pdf")
        imap_box.append(raw, "INBOX")
        pos.append(po)
    with pytest.raises(Crash):
        poller(shop, imap_cfg, direct=direct, crash_after=3).poll_once()
    db = shop.net.db
    # Three stored and dispatched, two of them moved; the third still sits in the inbox.
    assert count(db, DocumentRow) == 3
    assert len(uids(imap_box, "INBOX")) == 3
    assert len(uids(imap_box, PROCESSED)) == 2
    report = poller(shop, imap_cfg, direct=direct).poll_once()
    assert (report.fetched, report.new, report.known, report.moved) == (3, 2, 1, 3)
    assert uids(imap_box, "INBOX") == []
    assert len(uids(imap_box, PROCESSED)) == 5
    assert count(db, DocumentRow) == 5
    docs = {o.document_id for o in report.outcomes}
    ledger = InboxLedger(db, shop.net.clock)
    assert ledger.count() == 5
    if direct:
        assert count(db, IntakeResultRow) == 5
        with db.begin() as s:
            ids = list(s.scalars(select(DocumentRow.id)))
        for doc_id in ids:
            result = load_result(doc_id, shop.deps)
            assert result is not None
            assert result.status == "processed"
        for po in pos:
            assert len(orders_for(shop, po)) <= 1
    else:
        jobs = Outbox(db).list(kind=INTAKE_PROCESS, limit=100)
        assert len(jobs) == 5
        assert {j.payload["document_id"] for j in jobs} >= docs
        assert count(db, IntakeResultRow) == 0  # nothing processed in this process: the worker does it


def test_processed_folder_is_created_with_the_servers_separator(
    shop: Shop, imap_cfg: ImapConfig, imap_box: BaseMailBox
) -> None:
    p = poller(shop, imap_cfg)
    assert not imap_box.folder.exists(PROCESSED)
    assert p.poll_once().fetched == 0
    assert imap_box.folder.exists(PROCESSED)


def test_a_new_uidvalidity_starts_a_new_cursor(shop: Shop, imap_cfg: ImapConfig, imap_box: BaseMailBox) -> None:
    p = poller(shop, imap_cfg)
    imap_box.append(shop.po_email(30)[0], "INBOX")
    assert p.poll_once().new == 1
    uidvalidity = int(imap_box.folder.status("INBOX", ["UIDVALIDITY"])["UIDVALIDITY"])
    assert p.last_uid(uidvalidity) == 1
    assert p.last_uid(uidvalidity + 1) == 0
