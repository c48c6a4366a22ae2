"""Parse one untrusted document in a child process with a memory cap and a hard wall-time kill.

The parsers bound their own work (header, page, glyph, segment and inflate limits), but a parser
is third-party code on attacker-chosen bytes: the only limit that holds whatever the bytes do is
one the operating system enforces. So :func:`parse_isolated` forks a child (``forkserver``: a
small warm server forks it, never the caller with its threads and database connections), caps
its address space (``RLIMIT_AS``), and kills it (SIGKILL) when the wall-time budget runs out. A
child that runs out of memory or time, or dies, becomes an ERROR finding - ``parse_memory_limit``,
``parse_timeout``, ``parser_crashed`` - and the document store quarantines the document with it.

A language model never runs in the child and its latency never counts against the budget: the
child asks the parent to run the free-text extractor (:class:`_RemoteExtractor`), and the
parent's clock is stopped while it does.

This is a resource boundary, not a security one: the child runs as the same user, and the parent
reads its answers with pickle. It must never run a parser in the calling process when isolation
is on, never let a child outlive its budget, and never raise on what a child does.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from intake.classify import DocFormat
from intake.model import Finding, PurchaseOrder, Severity, Source

if TYPE_CHECKING:
    from core.settings import Settings
    from intake.extract import CustomerTemplate, SpanSource, TemplateRegistry, TextExtraction
    from intake.llm_extract import TextExtractor
    from intake.parsing import DocumentLimits

__all__ = ["SANDBOX_CODES", "SandboxLimits", "SandboxOutcome", "parse_isolated", "preload_for", "warm_up"]

SANDBOX_CODES = frozenset({"parse_timeout", "parse_memory_limit", "parser_crashed"})
"""The findings a child's fate gives; each quarantines the document."""

_PRELOAD = [
    "intake.parsing",
    "intake.pdf",
    "intake.sheets",
    "intake.edifact",
    "intake.x12",
    "pdfplumber",
    "openpyxl",
]
"""Imported once by the fork server, so a child starts warm (milliseconds, not an interpreter start)."""

_LIBRARIES = {"pdfplumber": frozenset({DocFormat.PDF}), "openpyxl": frozenset({DocFormat.XLSX})}
"""The preloaded third-party parsers and the formats that need them (e-mail, zip and unknown
documents may carry either, so they keep the full preload)."""

_SELF_CONTAINED = frozenset({DocFormat.X12, DocFormat.EDIFACT, DocFormat.PDF, DocFormat.XLSX, DocFormat.CSV,
                             DocFormat.HTML, DocFormat.TEXT})  # fmt: skip
"""Formats whose parse needs at most their own library (not e-mail, zip or unknown documents)."""

_preload: list[str] = list(_PRELOAD)


def preload_for(formats: Iterable[DocFormat]) -> bool:
    """Preload only the parsers ``formats`` need, if the fork server has not started yet.

    A one-shot command that knows its documents (``orderops intake ONE.x12``) need not wait for
    the fork server to import the PDF and spreadsheet libraries (most of its start). A document of
    another format still parses in a child, which imports its parser itself: slower, never less
    isolated. Returns False (and changes nothing) once the server runs."""
    if _context is not None:
        return False
    wanted = set(formats)
    if not wanted <= _SELF_CONTAINED:
        _preload[:] = _PRELOAD
        return True
    _preload[:] = [m for m in _PRELOAD if m not in _LIBRARIES or not wanted.isdisjoint(_LIBRARIES[m])]
    return True


MAX_EXTRACT_CALLS = 64
"""Free-text extractions one document may ask the parent for (body and attachments: at most ~51);
the model's time is not parse time, so this is what bounds it."""

_KINDS = frozenset({"extract", "done", "memory", "error"})

_start_lock = threading.Lock()


@contextmanager
def _without_main() -> Iterator[None]:
    """Hide the caller's ``__main__`` while a child is started.

    multiprocessing re-imports the parent's main script in every child it starts (the ``orderops``
    CLI: the whole application, seconds of imports per document). The child runs intake code
    only, so it is given an empty main module instead."""
    with _start_lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


@dataclass(frozen=True)
class SandboxLimits:
    """What a parse child may use. ``enabled=False`` parses in the calling process (tests of the
    parsers' own limits, platforms without ``fork``)."""

    memory_bytes: int = 1 << 30
    wall_seconds: float = 30.0
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxLimits:
        return cls(memory_bytes=settings.intake_parse_memory_mb * 1024 * 1024,
                   wall_seconds=settings.intake_parse_seconds, enabled=settings.intake_parse_isolated)  # fmt: skip


@dataclass(frozen=True)
class SandboxOutcome:
    fmt: DocFormat
    purchase_orders: list[PurchaseOrder]
    findings: list[Finding]
    parse_seconds: float
    """Time the child computed, not counting the extractor calls the parent ran for it."""
    child_max_rss_kb: int = 0
    """The child's peak resident memory (0 when it did not report one)."""


_context: Any = None


def _forget_inherited_fork_server() -> None:
    """A process forked (not spawned) from one that runs the fork server inherits its bookkeeping:
    ``ensure_running`` would then ``waitpid`` a process that is not its child and raise
    ChildProcessError (seen with the eval runner's forked workers). The child starts its own."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is not None:
        server._forkserver_address = None
        server._forkserver_alive_fd = None
        server._forkserver_pid = None
        server._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_fork_server)


def _mp_context() -> Any:
    """The forkserver context (preloaded), or spawn where there is no forkserver."""
    global _context
    if _context is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            server = multiprocessing.get_context("forkserver")
            server.set_forkserver_preload(list(_preload))
            _context = server
        else:  # pragma: no cover - Windows
            _context = multiprocessing.get_context("spawn")
    return _context


def warm_up() -> None:
    """Start the fork server now (it imports the parsers in the background), so the first
    document does not wait for it. Idempotent; does nothing where there is no fork server."""
    ctx = _mp_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


# --- the child --------------------------------------------------------------------------------------


class _RemoteExtractor:
    """The free-text extractor as the child sees it: each call runs in the parent."""

    def __init__(self, conn: Connection, name: str) -> None:
        self._conn = conn
        self.name = name

    def extract(
        self,
        text: str,
        *,
        source: SpanSource | None = None,
        document_type: str = "text",
        template: CustomerTemplate | None = None,
    ) -> TextExtraction:
        self._conn.send(("extract", text, source, document_type, template))
        reply: TextExtraction = self._conn.recv()
        return reply


def _limit_memory(memory_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: the wall-time kill still holds
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _max_rss_kb() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss // 1024 if sys.platform == "darwin" else rss)


def _child(conn: Connection, memory_bytes: int, request: dict[str, Any], remote_extractor: str | None) -> None:
    """Runs in the child: cap memory, parse, send ("done", ...) or ("memory"/"error", message)."""
    try:
        _limit_memory(memory_bytes)
        # Named, not imported: intake.parsing is what the fork server preloaded (not intake.documents,
        # the store, which imports this module and SQLAlchemy), and the child only needs the function.
        parse_bytes = importlib.import_module("intake.parsing").parse_bytes

        if remote_extractor is not None:
            request["extractor"] = _RemoteExtractor(conn, remote_extractor)
        fmt, orders, findings = parse_bytes(**request)
        conn.send(("done", fmt, orders, findings, _max_rss_kb()))
    except MemoryError:
        request.clear()  # let go of what we can so the message fits
        conn.send(("memory", "the parser ran out of memory", _max_rss_kb()))
    except BaseException as exc:  # the parent turns anything into a finding
        conn.send(("error", f"{type(exc).__name__}: {exc}"[:500], _max_rss_kb()))
    finally:
        conn.close()


# --- the parent -------------------------------------------------------------------------------------


def _finding(code: str, message: str, document: str | None) -> Finding:
    return Finding(severity=Severity.ERROR, code=code, message=message, source=Source(kind="manual", document=document))


def _is_local(extractor: TextExtractor | None) -> bool:
    if extractor is None:  # the common case decided without importing the LLM client (CLI start-up)
        return True
    from intake.llm_extract import DeterministicExtractor

    return type(extractor) is DeterministicExtractor


def parse_isolated(
    data: bytes,
    *,
    fmt: DocFormat,
    filename: str | None = None,
    media_type: str | None = None,
    document: str | None = None,
    limits: DocumentLimits,
    templates: TemplateRegistry | None = None,
    sender: str | None = None,
    extractor: TextExtractor | None = None,
    sandbox: SandboxLimits | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> SandboxOutcome:
    """:func:`intake.documents.parse_bytes` in a capped child; never raises on what the child does.

    ``timer`` measures the budget (the real clock; tests inject one to blow it); the hard kill
    also holds on the real clock, whatever ``timer`` says."""
    sandbox = sandbox or SandboxLimits()
    request: dict[str, Any] = {"data": data, "fmt": fmt, "filename": filename, "media_type": media_type,
                               "document": document, "limits": limits, "templates": templates, "sender": sender,
                               "extractor": extractor if _is_local(extractor) else None}  # fmt: skip
    remote = None if _is_local(extractor) else str(getattr(extractor, "name", "extractor"))
    ctx = _mp_context()
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child, args=(child_conn, sandbox.memory_bytes, request, remote), daemon=True)
    used = 0.0
    extract_calls = 0
    budget = sandbox.wall_seconds
    try:
        with _without_main():
            proc.start()  # returns once the child exists (the fork server's first start is not parse time)
        real_deadline = time.monotonic() + budget
        child_conn.close()
        while True:
            remaining = min(budget - used, real_deadline - time.monotonic())
            if remaining <= 0:
                return _killed(proc, fmt, used, document, budget)
            t0 = timer()
            ready = parent_conn.poll(min(remaining, 1.0))
            used += timer() - t0
            if used > budget:  # an answer that came in late is still over the limit
                return _killed(proc, fmt, used, document, budget)
            if not ready:
                continue
            try:
                msg = parent_conn.recv()
            except (EOFError, OSError):
                return _died(proc, fmt, used, document)
            if not _usable(msg):
                proc.kill()
                return SandboxOutcome(fmt, [], [_finding("parser_crashed", "the parser sent no usable answer",
                                                         document)], used)  # fmt: skip
            if msg[0] == "extract":
                extract_calls += 1
                if extractor is None or extract_calls > MAX_EXTRACT_CALLS:
                    proc.kill()
                    f = _finding(
                        "parser_crashed", f"the parser asked for over {MAX_EXTRACT_CALLS} extractions", document
                    )
                    return SandboxOutcome(fmt, [], [f], used)
                real_deadline += _serve_extract(extractor, msg, parent_conn)  # the model's time is not the parser's
                continue
            proc.join(5)
            return _answer(msg, fmt, used, document, sandbox)
    finally:
        _reap(proc, parent_conn)


def _usable(msg: Any) -> bool:
    """A message of the child's protocol (anything else: the child is not to be trusted further)."""
    return isinstance(msg, tuple) and len(msg) >= 3 and msg[0] in _KINDS


def _serve_extract(extractor: TextExtractor, msg: tuple[Any, ...], conn: Any) -> float:
    """Run an extraction the child asked for here (the model is reached from the parent only) and
    send the answer back; returns the seconds it took."""
    paused = time.monotonic()
    reply = extractor.extract(msg[1], source=msg[2], document_type=msg[3], template=msg[4])
    took = time.monotonic() - paused
    conn.send(reply)
    return took


def _answer(
    msg: tuple[Any, ...], fmt: DocFormat, used: float, document: str | None, sandbox: SandboxLimits
) -> SandboxOutcome:
    """The outcome of the child's last message: its parse, or why it stopped (memory, a failure)."""
    if msg[0] == "done":
        return SandboxOutcome(msg[1], msg[2], msg[3], used, msg[4])
    if msg[0] == "memory":
        mb = sandbox.memory_bytes // (1024 * 1024)
        f = _finding("parse_memory_limit", f"the parser needed more than the {mb} MiB memory limit", document)
        return SandboxOutcome(fmt, [], [f], used, msg[2])
    f = _finding("parser_crashed", f"the parser failed: {msg[1]}", document)
    return SandboxOutcome(fmt, [], [f], used, msg[2])


def _reap(proc: Any, conn: Any) -> None:
    """Close the pipe and make sure no child outlives the call."""
    conn.close()
    if proc.is_alive():
        proc.kill()
    if proc.pid is not None:
        proc.join(5)


def _killed(proc: Any, fmt: DocFormat, used: float, document: str | None, budget: float) -> SandboxOutcome:
    proc.kill()
    proc.join(5)
    f = _finding("parse_timeout", f"parsing was stopped at the {budget:g}s limit", document)
    return SandboxOutcome(fmt, [], [f], used)


def _died(proc: Any, fmt: DocFormat, used: float, document: str | None) -> SandboxOutcome:
    proc.join(5)
    code = proc.exitcode
    if code is not None and code < 0:
        why = f"killed by signal {-code}"
        # SIGKILL/SIGSEGV/SIGABRT under an address-space cap is almost always memory.
        if -code in (6, 9, 11):
            why += " (most likely the memory limit)"
    else:
        why = f"exit code {code}"
    return SandboxOutcome(fmt, [], [_finding("parser_crashed", f"the parser process died: {why}", document)], used)
