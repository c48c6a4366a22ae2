"""API keys, principals and roles for the HTTP service.

A key looks like ``oo_<key id>_<secret>``; only its sha256 is stored, next to the principal it
names and that principal's roles. Keys are 256-bit random tokens, so a plain (unsalted) sha256 is
enough: there is nothing to guess, unlike a password. The key id is public (listing, revoking) and
lets a lookup find the one record to compare, in constant time, against.

Why a table: keys are the identity of people and scripts on every way in (HTTP API, console,
MCP, CLI), so every machine that shares the database must accept the same keys and see a
revocation. They used to be a file under ``settings.home`` (``api_keys.yaml``); a store takes that
file into the table the first time it is used, then renames it ``api_keys.yaml.imported``. The
request path reads a verified key from a short cache (:data:`CACHE_TTL_S`), not the database.

What this module must never do: log, store or return a plaintext key other than once, from
:func:`create_key`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from core.db.engine import Database, make_database
from core.db.tables_keys import ApiKeyRow
from core.errors import ConfigurationError, NotFound, ValidationFailed
from core.settings import Settings
from guardrails.calls import Actor

KEY_PREFIX = "oo"
KEYS_FILE = "api_keys.yaml"
"""The file keys lived in before the ``api_keys`` table; imported once, then renamed."""
CACHE_TTL_S = 5.0
"""How long a verified key is trusted without asking the database again: also the longest a key
revoked on another machine keeps working here."""


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
    """API keys in the ``api_keys`` table, hashed; verified keys are cached for ``ttl_s`` seconds.

    The cache is what keeps the request path off the database: a key seen in the last ``ttl_s``
    seconds is checked against its cached record (hash, roles, expiry on the wall clock) without a
    round trip. The cost: a key revoked by **another** process keeps working here for up to
    ``ttl_s`` seconds (default 5); one revoked through this store stops at once. Unknown key ids
    are never cached, so a key created anywhere works here on its first use.

    ``home``: the installation folder whose legacy ``api_keys.yaml`` (the file keys used to live
    in) is imported into the table on first use, then renamed ``api_keys.yaml.imported``.
    """

    def __init__(self, db: Database, *, home: Path | None = None, ttl_s: float = CACHE_TTL_S) -> None:
        self.db = db
        self.home = Path(home) if home is not None else None
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKeyRecord, float]] = {}
        self._ready = False

    @classmethod
    def for_settings(cls, settings: Settings, db: Database | None = None) -> ApiKeyStore:
        """The installation's store: its database (``db``, default the one ``settings`` names) and
        the legacy file under ``settings.home``."""
        return cls(db if db is not None else make_database(settings), home=settings.home)

    @classmethod
    def under(cls, home: Path) -> ApiKeyStore:
        """The store of the installation in ``home`` (its database as the environment names it,
        else SQLite under ``home``), as a CLI started with ``ORDEROPS_HOME=home`` would open it."""
        return cls.for_settings(Settings(home=Path(home)))

    # --- reading ----------------------------------------------------------------------------------

    def records(self) -> list[ApiKeyRecord]:
        self._prepare()
        with self.db.sessions() as s:
            return [_record(row) for row in s.scalars(select(ApiKeyRow))]

    def record(self, key_id: str) -> ApiKeyRecord | None:
        """The record of ``key_id`` (cached for ``ttl_s`` seconds), or None when there is none."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[1] < self.ttl_s:
            return hit[0]
        self._prepare()
        with self.db.sessions() as s:
            row = s.get(ApiKeyRow, key_id)
            rec = None if row is None else _record(row)
        with self._lock:
            if rec is None:
                self._cache.pop(key_id, None)
            else:
                self._cache[key_id] = (rec, now)
        return rec

    def authenticate(self, plaintext: str) -> Principal | None:
        """The principal a presented key stands for, or None (unknown, malformed, revoked or expired).

        Expiry is judged on the wall clock, never on the network's business date: a key's life is
        real time."""
        parts = plaintext.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2] or len(parts[1]) > 32:
            return None
        rec = self.record(parts[1])
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
        self._prepare()
        with self.db.begin() as s:
            s.add(_row(rec))
        return plaintext, rec

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke ``key_id``: at once in this process, within ``ttl_s`` seconds in every other one."""
        self._prepare()
        with self.db.begin() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound("API key", key_id)
            if row.revoked_at is None:  # revoking twice keeps the first instant
                row.revoked_at = datetime.now(UTC)
            rec = _record(row)
        with self._lock:
            self._cache.pop(key_id, None)
        return rec

    # --- the table and the legacy file --------------------------------------------------------------

    def _prepare(self) -> None:
        """Once per store: check the table exists (a clear error, not a SQL one) and take in the
        legacy file. Cheap after the first call."""
        if self._ready:
            return
        if not inspect(self.db.engine).has_table(ApiKeyRow.__tablename__):
            raise ConfigurationError(
                f"database {self.db.url} has no api_keys table; run `orderops init` to migrate it", url=self.db.url
            )
        if self.home is not None:
            import_legacy_file(self.db, Path(self.home) / KEYS_FILE)
        self._ready = True


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    def aware(at: datetime | None) -> datetime | None:  # SQLite hands back naive datetimes
        return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    created = aware(row.created_at)
    assert created is not None
    return ApiKeyRecord(
        key_id=row.key_id,
        principal=row.principal,
        roles=[Role(r) for r in row.roles],
        key_hash=row.key_hash,
        created_at=created,
        expires_at=aware(row.expires_at),
        revoked_at=aware(row.revoked_at),
        note=row.note or "",
    )


def _row(rec: ApiKeyRecord) -> ApiKeyRow:
    return ApiKeyRow(
        key_id=rec.key_id,
        key_hash=rec.key_hash,
        principal=rec.principal,
        roles=[r.value for r in rec.roles],
        note=rec.note,
        created_at=rec.created_at,
        expires_at=rec.expires_at,
        revoked_at=rec.revoked_at,
    )


def import_legacy_file(db: Database, path: Path) -> int:
    """Take the keys of ``path`` (the old ``api_keys.yaml``) into the table, then rename the file
    ``<name>.imported`` so that it is read once. Keys already in the table are left as they are, so
    two processes importing at once agree. Returns how many keys were added."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return 0
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read the legacy key file {path}: {exc}") from None
    try:
        records = [ApiKeyRecord.model_validate(r) for r in raw.get("keys", [])]
    except (ValidationError, AttributeError) as exc:
        raise ConfigurationError(f"the legacy key file {path} is not a list of keys: {exc}") from None
    added = 0
    for rec in records:
        try:
            with db.begin() as s:
                if s.get(ApiKeyRow, rec.key_id) is None:
                    s.add(_row(rec))
                    added += 1
        except IntegrityError:  # another process imported it first
            continue
    with contextlib.suppress(FileNotFoundError):  # another process renamed it first
        os.replace(path, path.with_name(path.name + ".imported"))
    return added


def create_key(
    store: ApiKeyStore | Path,
    principal: str,
    roles: Iterable[Role | str],
    *,
    note: str = "",
    expires_in: timedelta | None = None,
) -> str:
    """Create an API key for ``principal`` with ``roles`` and return its plaintext — the only time
        it is ever available. ``store`` is an :class:`ApiKeyStore` or the installation's home folder (its
    database as the environment names it, else SQLite under it)."""
    if isinstance(store, ApiKeyStore):
        return store.create(principal, roles, note=note, expires_in=expires_in)[0]
    keys = ApiKeyStore.under(store)
    try:
        return keys.create(principal, roles, note=note, expires_in=expires_in)[0]
    finally:
        keys.db.dispose()
