"""The embedded inbox: a Maildir (new/ -> cur/) or a folder of .eml files (-> processed/), no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.inbox.ingest import DirectDispatcher, InboxLedger, Ingestor, IngestOutcome
from api.inbox.maildir import MaildirWatcher
from intake.pipeline import load_result
from tests.inbox.conftest import Shop


class Crash(RuntimeError):
    pass


def watcher(shop: Shop, path: Path, *, crash_after: int | None = None) -> MaildirWatcher:
    ingestor = Ingestor(shop.store, InboxLedger(shop.net.db, shop.net.clock), DirectDispatcher(shop.deps))
    seen: list[str] = []

    def hook(name: str, out: IngestOutcome) -> None:
        seen.append(name)
        if crash_after is not None and len(seen) == crash_after:
            raise Crash(name)

    return MaildirWatcher(path, ingestor, after_dispatch=hook)


def make_maildir(root: Path) -> Path:
    for d in ("new", "cur", "tmp"):
        (root / d).mkdir(parents=True)
    return root


def test_maildir_po_is_processed_once_and_moved_to_cur(shop: Shop, tmp_path: Path) -> None:
    md = make_maildir(tmp_path / "Maildir")
    raw, po = shop.po_email(1)
    (md / "new" / "1700000000.1.host").write_bytes(raw)
    (md / "new" / "1700000001.2.host").write_bytes(raw)  # delivered twice
    (md / "tmp" / "1700000002.3.host").write_bytes(b"half-written")  # still being delivered
    w = watcher(shop, md)
    assert w.layout == "maildir"
    report = w.poll_once()
    assert (report.fetched, report.new, report.known, report.moved) == (2, 1, 1, 2)
    assert sorted(p.name for p in (md / "cur").iterdir()) == ["1700000000.1.host:2,S", "1700000001.2.host:2,S"]
    assert list((md / "new").iterdir()) == []
    assert len(list((md / "tmp").iterdir())) == 1
    result = load_result(report.outcomes[0].document_id, shop.deps)
    assert result is not None
    assert result.status == "processed"
    assert result.outcomes[0].po_number == po
    assert len(shop.store.list()) == 1
    assert w.poll_once().fetched == 0


def test_folder_of_eml_files_survives_a_crash_mid_batch(shop: Shop, tmp_path: Path) -> None:
    inbox = tmp_path / "drop"
    inbox.mkdir()
    for n in range(3):
        (inbox / f"po-{n}.eml").write_bytes(shop.po_email(20 + n, attachment="csv")[0])
    (inbox / ".po-9.eml").write_bytes(b"being written")
    (inbox / "notes.txt").write_text("not mail")
    with pytest.raises(Crash):
        watcher(shop, inbox, crash_after=2).poll_once()
    assert [p.name for p in (inbox / "processed").iterdir()] == ["po-0.eml"]
    report = watcher(shop, inbox).poll_once()
    assert (report.fetched, report.new, report.known, report.moved) == (2, 1, 1, 2)
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["po-0.eml", "po-1.eml", "po-2.eml"]
    docs = shop.store.list()
    assert len(docs) == 3
    for d in docs:
        result = load_result(d.id, shop.deps)
        assert result is not None
        assert result.status == "processed"
    # The same file name dropped again (same Message-ID) is moved aside without overwriting.
    (inbox / "po-0.eml").write_bytes((inbox / "processed" / "po-0.eml").read_bytes())
    again = watcher(shop, inbox).poll_once()
    assert (again.new, again.moved) == (0, 1)
    assert (inbox / "processed" / "po-0.1.eml").exists()
    assert len(shop.store.list()) == 3


def test_an_empty_file_is_stored_and_quarantined_not_stuck(shop: Shop, tmp_path: Path) -> None:
    inbox = tmp_path / "drop"
    inbox.mkdir()
    (inbox / "empty.eml").write_bytes(b"")
    report = watcher(shop, inbox).poll_once()
    assert report.moved == 1
    result = load_result(report.outcomes[0].document_id, shop.deps)
    assert result is not None
    assert result.status == "quarantined"


def test_links_in_the_mailbox_are_never_followed(shop: Shop, tmp_path: Path) -> None:
    """A symlink dropped into the mailbox must not get a local file read into the document store."""
    secret = tmp_path / "secret.eml"
    raw, _ = shop.po_email(3)
    secret.write_bytes(raw)
    md = make_maildir(tmp_path / "Maildir")
    (md / "new" / "1700000000.9.host").symlink_to(secret)
    inbox = tmp_path / "drop"
    inbox.mkdir()
    (inbox / "linked.eml").symlink_to(secret)
    for path in (md, inbox):
        report = watcher(shop, path).poll_once()
        assert report.fetched == 0
    assert shop.store.list() == []
    assert (md / "new" / "1700000000.9.host").is_symlink()  # left where it was, not moved
