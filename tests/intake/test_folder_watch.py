"""The watched folder: links are never followed, and one bad file never blocks the others.

Runs the real intake session (seeded SQLite network, the intake graph) through
:func:`api.cli_intake.watch_once`, the function ``orderops intake watch`` calls on every pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from api.cli import run
from api.cli_intake import IntakeSession, intake_session, watch_once
from api.folder_watch import MAX_NAME_BYTES, REASON_SUFFIX, WatchState, scan_folder
from core.db.tables import DocumentRow
from core.settings import Settings
from tests.intake.test_cli_intake import CORRUPT, cli_env, samples

__all__ = ["cli_env"]  # the fixture, imported for pytest


@pytest.fixture
def sess(cli_env: Path) -> Iterator[IntakeSession]:
    with intake_session(Settings()) as s:
        yield s


def _stored_shas(sess: IntakeSession) -> set[str]:
    with sess.actx.db.sessions() as s:
        return set(s.scalars(select(DocumentRow.sha256)))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.is_dir() or p.is_symlink())


def test_symlinks_and_fifos_are_quarantined_unread(sess: IntakeSession, cli_env: Path) -> None:
    docs, _csv = samples(cli_env)
    inbox = cli_env / "inbox"
    inbox.mkdir()
    secret = cli_env / "secret.txt"
    secret.write_bytes(b"PO Number,PO-SECRET\nroot:x:0:0 not for the document store\n")
    outside_dir = cli_env / "elsewhere"
    outside_dir.mkdir()
    (inbox / "link.csv").symlink_to(secret)
    (inbox / "dirlink").symlink_to(outside_dir)
    (inbox / "dangling.x12").symlink_to(cli_env / "nothing-here")
    os.mkfifo(inbox / "pipe.csv")  # reading it would block the watcher forever
    (inbox / "po.x12").write_bytes(docs[0].data)

    reports = {r["file"]: r for r in watch_once(sess, inbox)}

    assert set(reports) == {"link.csv", "dirlink", "dangling.x12", "pipe.csv", "po.x12"}
    assert reports["po.x12"]["status"] == "processed"
    for name in ("link.csv", "dirlink", "dangling.x12"):
        assert reports[name]["status"] == "skipped"
        assert reports[name]["reason"].startswith("symlink:")
        moved = inbox / "quarantine" / name
        assert moved.is_symlink()  # the link itself was moved, its target left alone
        assert (inbox / "quarantine" / f"{name}.reason.txt").read_text().startswith("skipped: symlink:")
    assert reports["pipe.csv"]["reason"].startswith("not_a_regular_file:")
    assert secret.exists()
    assert outside_dir.is_dir()
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in _stored_shas(sess)
    assert _files(inbox) == []
    assert watch_once(sess, inbox) == []


def test_a_249_character_name_is_handled_once_and_does_not_block_the_others(sess: IntakeSession, cli_env: Path) -> None:
    docs, _csv = samples(cli_env)
    inbox = cli_env / "inbox"
    inbox.mkdir()
    long_name = "a" * 245 + ".pdf"
    assert len(long_name) == 249
    (inbox / long_name).write_bytes(CORRUPT)  # quarantined: its reason file would need 260 characters
    (inbox / "po.x12").write_bytes(docs[0].data)
    (inbox / "zz.pdf").write_bytes(CORRUPT + b" other")

    reports = {r["file"]: r for r in watch_once(sess, inbox)}

    assert set(reports) == {long_name, "po.x12", "zz.pdf"}
    assert all(r["moved_to"] for r in reports.values()), reports
    moved = Path(reports[long_name]["moved_to"])
    assert moved.parent == inbox / "quarantine"
    assert len(moved.name.encode()) <= MAX_NAME_BYTES
    assert len((moved.name + REASON_SUFFIX).encode()) <= 255
    assert moved.name.endswith(".pdf")
    assert moved.read_bytes() == CORRUPT
    assert (moved.parent / (moved.name + ".reason.txt")).exists()
    assert (inbox / "processed" / "po.x12").exists()
    assert (inbox / "quarantine" / "zz.pdf").exists()
    assert _files(inbox) == []
    # Dropped again: a second, distinct short name; nothing left behind.
    (inbox / long_name).write_bytes(CORRUPT)
    (again,) = watch_once(sess, inbox)
    assert again["moved_to"] != str(moved)
    assert len((Path(again["moved_to"]).name + REASON_SUFFIX).encode()) <= 255
    assert _files(inbox) == []


def test_a_file_that_cannot_be_moved_is_reported_once_and_the_rest_go_on(sess: IntakeSession, cli_env: Path) -> None:
    docs, _csv = samples(cli_env)
    inbox = cli_env / "inbox"
    inbox.mkdir()
    (inbox / "processed").write_text("a file where the processed/ folder should be")
    (inbox / "po.x12").write_bytes(docs[0].data)
    (inbox / "broken.pdf").write_bytes(CORRUPT)
    state = WatchState()

    first = {r["file"]: r for r in watch_once(sess, inbox, state)}

    assert first["po.x12"]["status"] == "processed"
    assert first["po.x12"]["moved_to"] is None
    assert first["po.x12"]["stuck"] is True
    assert "could not move" in first["po.x12"]["move_error"]
    assert first["broken.pdf"]["moved_to"] == str(inbox / "quarantine" / "broken.pdf")
    # The next passes neither re-ingest nor re-report the stuck file...
    assert watch_once(sess, inbox, state) == []
    assert watch_once(sess, inbox, state) == []
    # ...and once the obstacle is gone, the move is done without taking the file in again.
    (inbox / "processed").unlink()
    (later,) = watch_once(sess, inbox, state)
    assert later["file"] == "po.x12"
    assert later["moved_to"] == str(inbox / "processed" / "po.x12")
    assert state.stuck == {}
    with sess.actx.db.sessions() as s:
        counts = list(s.scalars(select(DocumentRow.times_received).where(DocumentRow.filename == "po.x12")))
    assert counts == [1]  # taken in once, however many passes saw it


def test_intake_errors_and_oversized_files_are_quarantined_per_file(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_bytes(b"fine")
    (inbox / "b.csv").write_bytes(b"this one breaks the intake")
    (inbox / "c.csv").write_bytes(b"x" * 101)
    bad_name = os.path.join(os.fsencode(inbox), b"d\xff.csv")  # not UTF-8
    with open(bad_name, "wb") as fh:
        fh.write(b"odd name")
    seen: list[str] = []

    def ingest(data: bytes, name: str) -> dict[str, object]:
        seen.append(name)
        if name == "b.csv":
            raise RuntimeError("database went away")
        return {"file": name, "status": "processed", "reason": None}

    reports = {r["file"]: r for r in scan_folder(inbox, ingest, max_bytes=100)}

    assert seen == ["a.csv", "b.csv", "d\ufffd.csv"]  # the oversized file was never read
    assert os.path.exists(os.path.join(os.fsencode(inbox), b"processed", b"d\xff.csv"))
    assert reports["b.csv"]["status"] == "failed"
    assert "database went away" in (inbox / "quarantine" / "b.csv.reason.txt").read_text()
    assert reports["c.csv"]["reason"].startswith("oversized: 101 bytes")
    assert (inbox / "processed" / "a.csv").read_bytes() == b"fine"
    assert _files(inbox) == []


def test_the_cli_watch_survives_a_link_and_a_long_name(cli_env: Path) -> None:
    docs, _csv = samples(cli_env)
    inbox = cli_env / "inbox"
    inbox.mkdir()
    (inbox / "link.x12").symlink_to(cli_env / "orderops.db")
    (inbox / ("b" * 249)).write_bytes(docs[0].data)
    assert run(["intake", "watch", str(inbox), "--once"]) == 0
    assert _files(inbox) == []
    assert (inbox / "quarantine" / "link.x12").is_symlink()
