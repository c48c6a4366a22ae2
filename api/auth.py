"""API keys, principals and roles for the HTTP service.

A key looks like ``oo_<key id>_<secret>``; only its sha256 is stored, next to the principal it
names and that principal's roles. Keys are 256-bit random tokens, so a plain (unsalted) sha256 is
enough: there is nothing to guess, unlike a password. The key id is public (listing, revoking) and
lets a lookup find the one record to compare, in constant time, against.

Why a file and not a table: keys are few and change rarely, the file works the same on SQLite and
PostgreSQL, and it needs no schema migration (the service refuses to start on a schema it does not
know). It is read again whenever it changes on disk, so a key created while the server runs works
at once; several servers share it the way they share ``settings.home``.

What this module must never do: log, store or return a plaintext key other than once, from
:func:`create_key`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from core.errors import NotFound, ValidationFailed
from guardrails.calls import Actor

KEY_PREFIX = "oo"
KEYS_FILE = "api_keys.yaml"


class Role(StrEnum):
    """What a principal may do. ``viewer`` reads; ``operator`` starts runs and posts alerts;
    ``approver`` decides approval requests; ``admin`` may do everything."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


IMPLIED: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.OPERATOR: frozenset({Role.OPERATOR, Role.VIEWER}),
    Role.APPROVER: frozenset({Role.APPROVER, Role.VIEWER}),
    Role.ADMIN: frozenset(Role),
}
"""Roles a role carries with it: every writer may also read, and an admin holds every role (so the
gateway's "approver must hold every required role" check passes for admins too)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the id the audit trail records, and their effective roles."""

    id: str
    roles: frozenset[Role]
    key_id: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles

    def actor(self) -> Actor:
        """The caller as the gateway sees them: a user with exactly these roles."""
        return Actor(kind="user", id=self.id, roles=frozenset(r.value for r in self.roles))


def effective_roles(roles: Iterable[Role | str]) -> frozenset[Role]:
    out: set[Role] = set()
    for r in roles:
        out |= IMPLIED[Role(r)]
    return frozenset(out)


class ApiKeyRecord(BaseModel):
    """One stored key: everything but the key itself."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    principal: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    """After this instant the key no longer authenticates (None: it never expires)."""
    note: str = ""

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now`` (default: the wall clock)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeyStore:
    """API keys kept hashed in a YAML file (mode 0600), re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, ApiKeyRecord] = {}
        self._stamp: tuple[int, int] | None = None

    @classmethod
    def under(cls, home: Path) -> ApiKeyStore:
        """The installation's store, ``<home>/api_keys.yaml``."""
        return cls(Path(home) / KEYS_FILE)

    # --- reading ----------------------------------------------------------------------------------

    def records(self) -> list[ApiKeyRecord]:
        with self._lock:
            return list(self._load().values())

    def authenticate(self, plaintext: str) -> Principal | None:
        """The principal a presented key stands for, or None (unknown, malformed, revoked or expired).

        Expiry is judged on the wall clock, never on the network's business date: a key's life is
        real time."""
        parts = plaintext.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
            return None
        with self._lock:
            rec = self._load().get(parts[1])
        if rec is None or rec.state() != "active":
            return None
        if not hmac.compare_digest(rec.key_hash, hash_key(plaintext)):
            return None
        return Principal(id=rec.principal, roles=effective_roles(rec.roles), key_id=rec.key_id)

    # --- writing ----------------------------------------------------------------------------------

    def create(
        self,
        principal: str,
        roles: Iterable[Role | str],
        *,
        note: str = "",
        expires_in: timedelta | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        """A new key for ``principal``; returns (plaintext, record). The plaintext is not kept.
        ``expires_in``: the key stops working that long from now (default: never)."""
        try:
            role_list = sorted({Role(r) for r in roles})
        except ValueError as exc:
            raise ValidationFailed(f"roles must be among {[r.value for r in Role]}") from exc
        if not role_list:
            raise ValidationFailed("an API key needs at least one role")
        if not principal.strip():
            raise ValidationFailed("an API key needs a principal id")
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValidationFailed("an API key's lifetime must be positive")
        now = datetime.now(UTC)
        key_id = secrets.token_hex(6)
        plaintext = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        rec = ApiKeyRecord(
            key_id=key_id,
            principal=principal.strip(),
            roles=role_list,
            key_hash=hash_key(plaintext),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            note=note,
        )
        with self._lock:
            records = dict(self._load())
            records[key_id] = rec
            self._save(records)
        return plaintext, rec

    def revoke(self, key_id: str) -> ApiKeyRecord:
        with self._lock:
            records = dict(self._load())
            if key_id not in records:
                raise NotFound("API key", key_id)
            if records[key_id].revoked_at is not None:  # revoking twice keeps the first instant
                return records[key_id]
            rec = records[key_id].model_copy(update={"revoked_at": datetime.now(UTC)})
            records[key_id] = rec
            self._save(records)
        return rec

    # --- file -------------------------------------------------------------------------------------

    def _load(self) -> dict[str, ApiKeyRecord]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = {}, None
            return self._records
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            raw = yaml.safe_load(self.path.read_text()) or {}
            recs = [ApiKeyRecord.model_validate(r) for r in raw.get("keys", [])]
            self._records, self._stamp = {r.key_id: r for r in recs}, stamp
        return self._records

    def _save(self, records: dict[str, ApiKeyRecord]) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = yaml.safe_dump({"keys": [r.model_dump(mode="json") for r in records.values()]}, sort_keys=False)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".api_keys.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None
        self._load()


def create_key(
    store: ApiKeyStore | Path,
    principal: str,
    roles: Iterable[Role | str],
    *,
    note: str = "",
    expires_in: timedelta | None = None,
) -> str:
    """Create an API key for ``principal`` with ``roles`` and return its plaintext — the only time
    it is ever available. ``store`` is an :class:`ApiKeyStore` or the installation's home folder."""
    keys = store if isinstance(store, ApiKeyStore) else ApiKeyStore.under(store)
    plaintext, _ = keys.create(principal, roles, note=note, expires_in=expires_in)
    return plaintext
