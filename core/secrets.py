"""The installation's secrets, in the database, encrypted at rest (issue 12: several machines).

Secrets an installation makes for itself (the redaction key, the console's session secret) used to
be files under ``settings.home``: every machine made its own, so two API servers redacted the same
customer to different tokens and a console cookie signed on one was refused by the other. They now
live in ``installation_secrets``, so every process that reaches the database shares them.

Each is encrypted with Fernet under the **secrets key** (``ORDEROPS_SECRETS_KEY``, a Fernet key:
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``), so
a copy of the database (a backup, a dump) does not give them away. On several machines, set the
same key on each. With none set (one machine), a key is made once and kept in
``<home>/secrets.key`` (mode 0600): the one file the installation still needs, and only there.

A secret still in its old file (``<home>/redaction.key``, ``<home>/console.key``) is taken into the
database the first time it is asked for, so upgrading keeps audit tokens and console sign-ins valid.

What this module must never do: write a secret to the database in clear, log one, or answer with a
secret it could not decrypt (a wrong key is a :class:`ConfigurationError` that says what to set).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.db.engine import Database
from core.db.tables_secrets import InstallationSecretRow
from core.errors import ConfigurationError
from core.settings import Settings

KEY_ENV = "ORDEROPS_SECRETS_KEY"
KEY_FILE = "secrets.key"


def secrets_key(settings: Settings) -> bytes:
    """The key secrets are encrypted with: ``settings.secrets_key`` (``ORDEROPS_SECRETS_KEY``), else
    a key made once under ``home`` (one machine needs nothing set)."""
    if settings.secrets_key is not None:
        key = settings.secrets_key.get_secret_value().strip().encode()
    else:
        path = Path(settings.home) / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 from the start: the key is never readable by others, not even briefly.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise ConfigurationError(
            f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
        ) from None
    return key


def random_secret() -> bytes:
    """A new 256-bit secret, as the hex text the old key files held (so imported ones look alike)."""
    return secrets.token_hex(32).encode()


class SecretStore:
    """Named secrets of the installation in ``installation_secrets``, encrypted with one key."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> SecretStore:
        return cls(db, secrets_key(settings))

    def get(self, name: str) -> bytes | None:
        """The secret ``name``, or None when none is stored."""
        with self.db.engine.connect() as conn:
            token = conn.execute(
                select(InstallationSecretRow.ciphertext).where(InstallationSecretRow.name == name)
            ).scalar()
        return None if token is None else self._decrypt(name, token)

    def get_or_create(self, name: str, make: Callable[[], bytes], *, legacy: Path | None = None) -> bytes:
        """The secret ``name``; the first caller stores it (from ``legacy``, the file it used to be
        kept in, when that exists; else ``make()``). Two processes creating it at once agree: the
        second one's insert fails and it reads the first one's."""
        found = self.get(name)
        if found is not None:
            return found
        value = legacy.read_bytes().strip() if legacy is not None and legacy.is_file() else make()
        if not value:
            raise ConfigurationError(f"{legacy} is empty; delete it to make a new {name}")
        row = InstallationSecretRow(
            name=name, ciphertext=self._fernet.encrypt(value).decode(), created_at=datetime.now(UTC)
        )
        try:
            with self.db.begin() as s:
                s.add(row)
        except IntegrityError:
            stored = self.get(name)
            if stored is None:  # pragma: no cover - an insert that conflicts leaves a row behind
                raise
            return stored
        return value

    def _decrypt(self, name: str, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise ConfigurationError(
                f"the installation secret {name!r} cannot be decrypted with this process's secrets key: set "
                f"{KEY_ENV} to the key the first machine used (on one machine: <home>/{KEY_FILE})"
            ) from None


def installation_secret(settings: Settings, db: Database, name: str, *, legacy_file: str | None = None) -> bytes:
    """The installation's secret ``name`` (made once, shared through the database). A database not
    migrated yet has nowhere to keep it: a secret for this process only is returned, which is safe
    because such a database has no table the secret could have been used for either."""
    legacy = Path(settings.home) / legacy_file if legacy_file else None
    store = SecretStore.from_settings(settings, db)
    try:
        return store.get_or_create(name, random_secret, legacy=legacy)
    except SQLAlchemyError:
        if inspect(db.engine).has_table(InstallationSecretRow.__tablename__):
            raise
        return legacy.read_bytes().strip() if legacy is not None and legacy.is_file() else random_secret()
