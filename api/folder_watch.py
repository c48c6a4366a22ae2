"""One pass over a watched folder: each regular file is ingested, then moved out of the way.

Files go to ``processed/`` or, with a ``<name>.reason.txt`` beside them, to ``quarantine/``. What
this module must never do:

* follow a symbolic link, or read anything that is not a regular file: a link dropped into the
  folder (to ``/etc/shadow``, to the document store, to a FIFO that blocks forever) is moved to
  ``quarantine/`` as a link, with a reason, unread. Files are opened with ``O_NOFOLLOW`` and
  checked again after opening, so swapping a file for a link between the listing and the read
  does not get around it;
* let one file stop the others: whatever goes wrong with one file (its name is too long for a
  ``.reason.txt`` beside it, it cannot be read, ingesting it raised, it cannot be moved) is caught
  and reported for that file, and the pass goes on. A file that could not be moved away is
  remembered in :class:`WatchState`: reported once, never ingested again while unchanged; later
  passes only retry the move, quietly.

A file larger than ``max_bytes`` is not read at all: it is moved to quarantine as oversized.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MAX_NAME_BYTES", "PROCESSED", "QUARANTINE", "REASON_SUFFIX", "WatchState", "scan_folder"]

PROCESSED = "processed"
QUARANTINE = "quarantine"
REASON_SUFFIX = ".reason.txt"
MAX_NAME_BYTES = 200
"""Names kept below the usual 255-byte limit with room for ``.<n>`` and ``.reason.txt``."""

Ingest = Callable[[bytes, str], dict[str, Any]]
"""``ingest(data, filename)`` -> the document's report (with ``status`` and ``reason``)."""


@dataclass
class WatchState:
    """What a watcher remembers between passes (in memory: a restarted watcher reports again)."""

    stuck: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = field(default_factory=dict)
    """Name -> ((inode, size, mtime), report) of files that could not be moved away: reported once,
    not ingested again; each pass only tries the move again, quietly, and reports it if it works."""


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _printable(name: str) -> str:
    """The name as text a database and a terminal accept (undecodable bytes become U+FFFD)."""
    return os.fsencode(name).decode("utf-8", "replace")


def _short_name(name: str) -> str:
    """``name``, or a shortened one with a hash of the full name when it is too long to move
    beside a ``.reason.txt`` (``<start>~<hash8><suffix>``). Byte lengths: that is what the file
    system limits, and a name may hold bytes that are not UTF-8."""
    raw = os.fsencode(name)
    if len(raw) <= MAX_NAME_BYTES:
        return name
    suffix = os.fsencode(Path(name).suffix)
    if len(suffix) > 16:
        suffix = b""
    digest = hashlib.sha256(raw).hexdigest()[:8].encode()
    return os.fsdecode(raw[: MAX_NAME_BYTES - 9 - len(suffix)] + b"~" + digest + suffix)


def _free_name(target_dir: Path, name: str) -> Path:
    name = _short_name(name)
    target = target_dir / name
    n = 1
    while os.path.lexists(target):
        target = target_dir / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target


def _subdir(folder: Path, name: str) -> Path:
    """``folder/name`` as a real directory (made if missing); a link or a file there is an error."""
    path = folder / name
    try:
        path.mkdir()
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{path} must be a directory, not a link or a file") from None
    return path


def read_regular(path: Path, expected: os.stat_result, max_bytes: int) -> bytes:
    """The file's bytes, never through a link (``O_NOFOLLOW``) and only if it is still the
    regular file that was listed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
            raise OSError(errno.EINVAL, "the file was replaced while being read")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise OSError(errno.EFBIG, f"the file grew past {max_bytes} bytes while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _move(folder: Path, path: Path, report: dict[str, Any]) -> None:
    """Move ``path`` (a file or a link, never followed) to processed/ or quarantine/ + reason."""
    quarantined = report["status"] != "processed"
    target_dir = _subdir(folder, QUARANTINE if quarantined else PROCESSED)
    target = _free_name(target_dir, path.name)
    os.rename(path, target)  # renames a link itself, not what it points to
    report["moved_to"] = str(target)
    if quarantined:
        reason = report.get("reason") or report["status"]
        try:
            target.with_name(target.name + REASON_SUFFIX).write_text(f"{report['status']}: {reason}\n",
                                                                      encoding="utf-8", errors="replace")  # fmt: skip
        except OSError as exc:  # the file is out of the way; the reason is still in the report
            report["reason_file_error"] = exc.strerror or str(exc)


def _not_read(name: str, reason: str) -> dict[str, Any]:
    return {"file": name, "status": "skipped", "reason": reason, "moved_to": None}


def _one(folder: Path, path: Path, st: os.stat_result, ingest: Ingest, max_bytes: int) -> dict[str, Any]:
    name = _printable(path.name)
    if stat.S_ISLNK(st.st_mode):
        return _not_read(name, "symlink: links in the watched folder are never followed; copy the file in instead")
    if not stat.S_ISREG(st.st_mode):
        return _not_read(name, "not_a_regular_file: only regular files are read (not FIFOs, sockets or devices)")
    if st.st_size > max_bytes:
        return _not_read(name, f"oversized: {st.st_size} bytes, limit {max_bytes}; not read")
    try:
        data = read_regular(path, st, max_bytes)
    except OSError as exc:
        return _not_read(name, f"unreadable: {exc.strerror or exc}")
    try:
        return ingest(data, name)
    except Exception as exc:  # one bad document must not stop the folder; the reason goes with it
        return {"file": name, "status": "failed", "reason": f"intake failed: {type(exc).__name__}: {exc}"[:2000],
                "moved_to": None}  # fmt: skip


def scan_folder(
    folder: Path, ingest: Ingest, *, max_bytes: int, state: WatchState | None = None
) -> list[dict[str, Any]]:
    """Ingest and move every file in ``folder`` (not its subfolders, not dot-files); one report per
    file handled. A file that cannot be moved away is reported with ``moved_to: None`` and
    ``stuck: True``, once per ``state``."""
    state = state if state is not None else WatchState()
    reports: list[dict[str, Any]] = []
    with os.scandir(folder) as it:
        # processed/ and quarantine/ are the watcher's own, whatever they are (a link there is refused
        # when moving, never taken in as a document).
        own = (PROCESSED, QUARANTINE)
        entries = sorted((e for e in it if not e.name.startswith(".") and e.name not in own), key=lambda e: e.name)
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # gone since the listing
        if stat.S_ISDIR(st.st_mode):
            continue
        sig, path = _signature(st), Path(entry.path)
        known = state.stuck.get(entry.name)
        if known is not None and known[0] == sig:  # handled before: only try the move again
            report = dict(known[1])
            try:
                _move(folder, path, report)
            except (OSError, ValueError):
                continue
            del state.stuck[entry.name]
            report.update(stuck=False, move_error=None)
            reports.append(report)
            continue
        report = _one(folder, path, st, ingest, max_bytes)
        try:
            _move(folder, path, report)
            state.stuck.pop(entry.name, None)
        except (OSError, ValueError) as exc:  # ValueError: a name the platform cannot encode
            report["moved_to"] = None
            report["stuck"] = True
            report["move_error"] = f"could not move it out of the folder: {getattr(exc, 'strerror', None) or exc}"
            state.stuck[entry.name] = (sig, report)
        reports.append(report)
    return reports
