"""Signed checkpoints of the audit trail, kept outside the database.

The hash chain of :mod:`guardrails.audit` catches a row edited, deleted, inserted or moved, but not
someone who rewrites the rows *and* the chain-head row together: truncating the tail and moving the
head back, re-hashing every row, or deleting everything. A :class:`Checkpoint` closes that gap: an
Ed25519 signature over (trail, sequence number, head hash, time, installation id), made with a key
that never enters the database, appended to an :class:`AnchorSink` that lives elsewhere (by default
a JSON-lines file under ``home`` opened with ``O_APPEND``). :meth:`AuditAnchor.check` then holds
the chain to every checkpoint ever written: an anchored row that is gone is a truncation or a
wholesale deletion, an anchored row with another hash is a rewrite, a checkpoint whose signature
does not verify is a forgery of the anchor log itself.

What this module must never do: read the signing key from the database, write the key anywhere but
its own 0600 file, or rewrite or shorten a sink (a sink is only ever appended to). What it cannot do:
see a forged row appended after the last checkpoint (until the next checkpoint, a forger who can
write the database can extend the chain), nor protect anchors from someone who can also write the
sink file and read the key file; point the sink at another host or an append-only file
(``chattr +a``) for that.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.clock import Clock, SystemClock
from core.errors import ConfigurationError
from guardrails._store import as_utc, canonical_json

if TYPE_CHECKING:
    # cryptography is imported where a key is loaded or a signature made or checked (a third of its
    # cost was every command's start-up; most commands append no audit event).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from core.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "audit-signing.key"
INSTALLATION_FILE = "installation.id"
ANCHOR_FILE = "audit-anchors.jsonl"

AnchorKind = Literal["truncated", "rewritten", "wiped", "anchor_forged", "unanchored"]


class Checkpoint(BaseModel):
    """One signed statement: "trail ``trail`` had row ``seq`` with hash ``head_hash`` at ``at``"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    trail: str
    seq: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: datetime
    installation_id: str
    key_id: str
    """First 16 hex digits of the sha256 of the raw public key: which key to check it with."""
    signature: str = ""
    """Base64 Ed25519 signature over :meth:`signed_bytes`."""

    def signed_bytes(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"signature"})
        body["at"] = as_utc(self.at).isoformat()
        return canonical_json(body).encode("utf-8")

    def to_line(self) -> str:
        data = self.model_dump(mode="json")
        data["at"] = as_utc(self.at).isoformat()
        return canonical_json(data)


class AnchorLine(NamedTuple):
    """One stored entry as read back, unparsed: ``where`` names it in reports (``file:line``)."""

    where: str
    text: str


class AnchorSink(Protocol):
    """Somewhere outside the database that checkpoints are appended to and never removed from."""

    @property
    def name(self) -> str:
        """Where the anchors are, in words (reports show it)."""
        ...

    def append(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` durably; raise ``OSError`` if it could not be stored."""
        ...

    def read(self) -> Iterator[AnchorLine]:
        """Every entry ever appended, oldest first."""
        ...


class FileAnchorSink:
    """JSON lines in a local file, opened with ``O_APPEND`` for every write and fsynced.

    One ``write`` per line: appends from several processes interleave whole lines, never bytes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return str(self.path)

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (checkpoint.to_line() + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> Iterator[AnchorLine]:
        try:
            handle = self.path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        with handle:
            for number, text in enumerate(handle, 1):
                if text.strip():
                    yield AnchorLine(f"{self.path}:{number}", text)


class MemoryAnchorSink:
    """The reference sink: a list in memory (tests, evals). ``lines`` may be edited to simulate tampering."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @property
    def name(self) -> str:
        return "memory"

    def append(self, checkpoint: Checkpoint) -> None:
        self.lines.append(checkpoint.to_line())

    def read(self) -> Iterator[AnchorLine]:
        for number, text in enumerate(list(self.lines), 1):
            yield AnchorLine(f"memory:{number}", text)


# --- keys ---------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_signing_key(text: str) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or its 32-byte seed as 64 hex digits or base64."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"the audit signing key is not a readable PEM key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError("the audit signing key must be an Ed25519 key")
        return key
    seed: bytes | None = None
    if len(text) == 64:
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            seed = None
    if seed is None:
        try:
            alt = b"-_" if "-" in text or "_" in text else None
            seed = base64.b64decode(text + "=" * (-len(text) % 4), altchars=alt, validate=True)
        except (binascii.Error, ValueError):
            seed = None
    if seed is None or len(seed) != 32:
        raise ConfigurationError(
            "the audit signing key must be a PEM Ed25519 private key or a 32-byte seed (64 hex digits or base64)"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def _create_exclusively(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` (0600) unless it exists. Concurrent first uses agree on one
    file: each writes a private temporary file and links it into place; the losers' links fail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``; a new one, written 0600, on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _create_exclusively(path, pem)
    return parse_signing_key(path.read_text(encoding="utf-8"))


def load_or_create_installation_id(path: Path) -> str:
    if not path.exists():
        _create_exclusively(path, (str(uuid.uuid4()) + "\n").encode())
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigurationError(f"{path} is empty; delete it to make a new installation id")
    return value


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 key and checks them against that key (and older ones)."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        installation_id: str,
        *,
        trusted: tuple[Ed25519PublicKey, ...] = (),
    ) -> None:
        self._key = private_key
        self.installation_id = installation_id
        public = private_key.public_key()
        self.key_id = key_id(public)
        self._public = {key_id(k): k for k in (*trusted, public)}

    @classmethod
    def generate(cls, installation_id: str | None = None) -> CheckpointSigner:
        """A signer with a fresh key (tests, evals)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate(), installation_id or str(uuid.uuid4()))

    def sign(self, *, trail: str, seq: int, head_hash: str, at: datetime) -> Checkpoint:
        unsigned = Checkpoint(
            trail=trail,
            seq=seq,
            head_hash=head_hash,
            at=as_utc(at),
            installation_id=self.installation_id,
            key_id=self.key_id,
        )
        signature = self._key.sign(unsigned.signed_bytes())
        return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """Why ``checkpoint`` is not one of ours, or None when its signature holds."""
        from cryptography.exceptions import InvalidSignature

        public = self._public.get(checkpoint.key_id)
        if public is None:
            return f"signed with key {checkpoint.key_id}, which this installation does not hold"
        try:
            public.verify(base64.b64decode(checkpoint.signature, validate=True), checkpoint.signed_bytes())
        except (InvalidSignature, binascii.Error, ValueError):
            return "its signature does not verify"
        return None


# --- checking a chain against its anchors -------------------------------------------------------


class AnchorFinding(NamedTuple):
    kind: AnchorKind
    seq: int | None
    problem: str


class AnchorCheck(NamedTuple):
    """What :meth:`AuditAnchor.check` found. ``forged`` concerns the anchor log itself and comes
    before any chain problem; ``mismatch`` (chain vs. anchors) only matters once the chain holds."""

    anchors: int
    last_seq: int | None
    forged: AnchorFinding | None
    mismatch: AnchorFinding | None


class AuditAnchor:
    """When and where to checkpoint one installation's trails, and how to check them.

    Checkpoints are cheap (one signature, one appended line) but not free (an fsync), so an
    appender checkpoints its first append, then every ``every`` appends or ``interval_s`` seconds,
    whichever comes first; ``orderops audit anchor`` (or a schedule calling
    :meth:`guardrails.audit.AuditTrail.checkpoint`) anchors the head on demand.
    """

    def __init__(
        self,
        signer: CheckpointSigner | None,
        sink: AnchorSink,
        *,
        every: int = 100,
        interval_s: float | None = 300.0,
        clock: Clock | None = None,
        key_loader: Callable[[], CheckpointSigner] | None = None,
    ) -> None:
        if every < 1:
            raise ConfigurationError("audit_anchor_every must be at least 1")
        if signer is None and key_loader is None:
            raise ConfigurationError("an AuditAnchor needs a signer or a way to load one")
        self._signer = signer
        self._key_loader = key_loader
        self.sink = sink
        self.every = every
        self.interval_s = interval_s if interval_s else None
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        # Per trail: appends since this process's last checkpoint, and when that was (monotonic).
        self._since: dict[str, int] = {}
        self._last_at: dict[str, float] = {}
        self._last: dict[str, tuple[int, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditAnchor:
        """The installation's anchor: key from ``audit_signing_key`` or ``<home>/audit-signing.key``,
        sink ``audit_anchor_path`` or ``<home>/audit-anchors.jsonl``. Files are made on first use."""
        home = Path(settings.home)

        def load() -> CheckpointSigner:
            secret = settings.audit_signing_key
            key = (
                parse_signing_key(secret.get_secret_value())
                if secret is not None
                else load_or_create_signing_key(home / KEY_FILE)
            )
            installation = settings.installation_id or load_or_create_installation_id(home / INSTALLATION_FILE)
            return CheckpointSigner(key, installation)

        return cls(
            None,
            FileAnchorSink(settings.audit_anchor_path or home / ANCHOR_FILE),
            every=settings.audit_anchor_every,
            interval_s=settings.audit_anchor_interval_s,
            key_loader=load,
        )

    @property
    def signer(self) -> CheckpointSigner:
        with self._lock:
            if self._signer is None:
                assert self._key_loader is not None
                self._signer = self._key_loader()
            return self._signer

    # --- writing ---------------------------------------------------------------------------------

    def checkpoint(self, trail: str, seq: int, head_hash: str) -> Checkpoint:
        """Sign (trail, seq, head_hash, now) and append it to the sink. The caller vouches that the
        row ``seq`` with ``head_hash`` is committed (anchoring a rolled-back row would later read as
        a rewrite)."""
        cp = self.signer.sign(trail=trail, seq=seq, head_hash=head_hash, at=self.clock.now())
        self.sink.append(cp)
        with self._lock:
            self._since[trail] = 0
            self._last_at[trail] = time.monotonic()
            self._last[trail] = (seq, head_hash)
        return cp

    def note_append(self, trail: str, seq: int, row_hash: str) -> Checkpoint | None:
        """Called after each committed append: checkpoint it when one is due. Never raises: the row
        is already stored, and a sink that is down must not turn a done tool call into a failure;
        the next append tries again."""
        with self._lock:
            since = self._since.get(trail, self.every - 1) + 1
            self._since[trail] = since
            last_at = self._last_at.get(trail)
            due = since >= self.every or (
                self.interval_s is not None and last_at is not None and time.monotonic() - last_at >= self.interval_s
            )
        if not due:
            return None
        try:
            return self.checkpoint(trail, seq, row_hash)
        except (OSError, ConfigurationError) as exc:
            log.warning("could not anchor audit trail %s at seq %s in %s: %s", trail, seq, self.sink.name, exc)
            return None

    def last_checkpointed(self, trail: str) -> tuple[int, str] | None:
        """(seq, hash) of this process's last checkpoint of ``trail``, if any."""
        with self._lock:
            return self._last.get(trail)

    # --- checking --------------------------------------------------------------------------------

    def checkpoints(self, trail: str) -> tuple[list[Checkpoint], AnchorFinding | None]:
        """This installation's checkpoints of ``trail`` (valid signatures only), and the first
        forged or unreadable entry found, if any. Entries of other installations sharing the sink
        are skipped; entries of other trails are checked for readability only."""
        signer = self.signer
        found: list[Checkpoint] = []
        forged: AnchorFinding | None = None
        for where, text in self.sink.read():
            try:
                cp = Checkpoint.model_validate_json(text)
            except ValidationError:
                forged = forged or AnchorFinding("anchor_forged", None, f"anchor entry {where} is not a checkpoint")
                continue
            if cp.installation_id != signer.installation_id or cp.trail != trail:
                continue
            why = signer.problem(cp)
            if why is not None:
                forged = forged or AnchorFinding(
                    "anchor_forged", cp.seq, f"checkpoint {where} (seq {cp.seq}) is forged: {why}"
                )
                continue
            found.append(cp)
        return found, forged

    def check(self, trail: str, chain: Mapping[int, str], head_seq: int) -> AnchorCheck:
        """Hold the chain (seq -> row hash, as stored; head at ``head_seq``) to every checkpoint."""
        found, forged = self.checkpoints(trail)
        last = max((cp.seq for cp in found), default=None)
        return AnchorCheck(len(found), last, forged, self._mismatch(trail, found, chain, head_seq))

    def _mismatch(
        self, trail: str, found: list[Checkpoint], chain: Mapping[int, str], head_seq: int
    ) -> AnchorFinding | None:
        if not found:
            if head_seq > 0 or chain:
                return AnchorFinding(
                    "unanchored",
                    None,
                    f"no checkpoint of trail {trail!r} in {self.sink.name}: the anchor log was removed, "
                    "or anchoring was only just enabled (then run `orderops audit anchor`)",
                )
            return None
        good = 0  # the highest seq known to match its checkpoint
        for cp in sorted(found, key=lambda c: (c.seq, c.at)):
            if cp.seq == 0:
                continue  # an empty trail was anchored; any chain extends it
            stored = chain.get(cp.seq)
            if stored is None:
                if not chain and head_seq == 0:
                    return AnchorFinding(
                        "wiped",
                        1,
                        f"the trail is empty but was anchored at seq {cp.seq} on {cp.at:%Y-%m-%d %H:%M:%S}Z: "
                        "every row was deleted",
                    )
                return AnchorFinding(
                    "truncated",
                    cp.seq if cp.seq <= head_seq else head_seq + 1,
                    f"the trail ends at seq {head_seq} but was anchored at seq {cp.seq} "
                    f"on {cp.at:%Y-%m-%d %H:%M:%S}Z: rows were cut off",
                )
            if stored != cp.head_hash:
                return AnchorFinding(
                    "rewritten",
                    cp.seq,
                    f"row {cp.seq} hashes to {stored[:12]}... but was anchored as {cp.head_hash[:12]}... "
                    f"on {cp.at:%Y-%m-%d %H:%M:%S}Z: the chain was rewritten and re-hashed "
                    f"somewhere in seq {good + 1}..{cp.seq}",
                )
            good = cp.seq
        return None
