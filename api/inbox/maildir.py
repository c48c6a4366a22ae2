"""The embedded inbox: watch a local Maildir (``new/`` -> ``cur/``) or a plain folder of ``.eml``
files (``*.eml`` -> ``processed/``), with the IMAP poller's store-then-dispatch-then-move steps.

Any mail delivery agent (fetchmail, getmail, Postfix's ``local``, ``mbsync``) can fill a Maildir;
a person or a script can drop ``.eml`` files into a folder. Writers of a plain folder should write
under a dot-name or a ``.tmp`` suffix and rename when done (Maildir's ``tmp/`` does this for a
Maildir); such files are ignored until renamed.

What this module must never do: move or delete a file whose bytes are not stored and recorded.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from api.folder_watch import read_regular
from api.inbox.ingest import Hook, Ingestor, PollReport
from core.errors import ConfigurationError

__all__ = ["MaildirWatcher"]

log = logging.getLogger("orderops.inbox.maildir")

PROCESSED_DIR = "processed"
MAX_MESSAGE_BYTES = 64 << 20
"""Largest message read from the folder (the intake limits then apply to what it holds)."""


def _regular(path: Path) -> bool:
    """A regular file in its own right: not a link (to a file or anything else), FIFO or device."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


class MaildirWatcher:
    """Watches one directory; ``layout`` is detected: ``maildir`` when it has new/ and cur/."""

    def __init__(self, path: Path, ingestor: Ingestor, *, after_dispatch: Hook | None = None) -> None:
        self.path = Path(path)
        self.ingestor = ingestor
        self.after_dispatch = after_dispatch
        if not self.path.is_dir():
            raise ConfigurationError(f"inbox folder {self.path} does not exist", path=str(self.path))

    @property
    def layout(self) -> Literal["maildir", "folder"]:
        return "maildir" if (self.path / "new").is_dir() and (self.path / "cur").is_dir() else "folder"

    @property
    def mailbox_key(self) -> str:
        return f"{self.layout}://{self.path.resolve()}"

    def pending(self) -> list[Path]:
        """Regular files waiting, oldest name first (Maildir names start with the delivery time).

        Links are never followed: a symlink dropped into the mailbox could otherwise have any
        local file read into the document store (and mailed on as an acknowledgment's quote)."""
        if self.layout == "maildir":
            files = [p for p in (self.path / "new").iterdir() if _regular(p) and not p.name.startswith(".")]
        else:
            files = [p for p in self.path.iterdir()
                     if _regular(p) and p.suffix.lower() == ".eml" and not p.name.startswith(".")]  # fmt: skip
        return sorted(files, key=lambda p: p.name)

    def _target(self, src: Path) -> Path:
        if self.layout == "maildir":
            name = src.name if ":2," in src.name else f"{src.name}:2,S"
            dest = self.path / "cur" / name
        else:
            (self.path / PROCESSED_DIR).mkdir(exist_ok=True)
            dest = self.path / PROCESSED_DIR / src.name
        n = 1
        while dest.exists():  # never overwrite: a same-named file that was handled before stays
            dest = dest.with_name(f"{src.stem}.{n}{src.suffix}" if self.layout == "folder" else f"{name}.{n}")
            n += 1
        return dest

    def poll_once(self) -> PollReport:
        report = PollReport()
        for src in self.pending():
            try:
                raw = read_regular(src, os.lstat(src), MAX_MESSAGE_BYTES)
            except FileNotFoundError:  # taken by another watcher meanwhile
                continue
            except OSError as exc:  # swapped for a link, grew past the limit: left where it is, said once
                log.warning("inbox: %s not read: %s", src.name, exc.strerror or exc)
                continue
            out = self.ingestor.ingest(raw, source=self.layout, mailbox=self.mailbox_key, locator=src.name)
            report.add(out)
            if self.after_dispatch is not None:
                self.after_dispatch(src.name, out)
            try:
                os.replace(src, self._target(src))
            except FileNotFoundError:
                continue
            self.ingestor.mark_moved(out.message_id)
            report.moved += 1
        return report

    def run(self, *, interval_s: float = 5.0, stop: threading.Event | None = None,
            on_report: Callable[[PollReport], Any] | None = None) -> None:  # fmt: skip
        """Poll until ``stop`` is set (polling, not inotify: it works the same on every platform and
        on network file systems)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                report = self.poll_once()
                if on_report is not None:
                    on_report(report)
            except Exception:
                log.exception("watching %s failed; retrying in %.0fs", self.path, interval_s)
            stop.wait(interval_s)
