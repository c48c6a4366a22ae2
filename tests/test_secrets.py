"""Installation secrets live in the database, encrypted with the secrets key (issue 12: several
machines): machines sharing a database and a key share the secrets; a copy of the database alone
does not reveal them; a wrong key is a clear configuration error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from api.bootstrap import redaction_key
from api.console.session import console_secret
from core.db import Database, make_database
from core.db.tables_secrets import InstallationSecretRow
from core.errors import ConfigurationError
from core.secrets import KEY_FILE, SecretStore, installation_secret
from core.settings import Settings


def _stored(db: Database, name: str) -> str:
    with db.engine.connect() as conn:
        token = conn.execute(select(InstallationSecretRow.ciphertext).where(InstallationSecretRow.name == name))
        return str(token.scalar_one())


def test_two_machines_with_one_key_share_the_secrets(db: Database, tmp_path: Path) -> None:
    key = SecretStr(Fernet.generate_key().decode())
    one = Settings(home=tmp_path / "one", secrets_key=key)
    two = Settings(home=tmp_path / "two", secrets_key=key)
    assert redaction_key(one, db) == redaction_key(two, db)
    assert console_secret(one, db) == console_secret(two, db)
    assert redaction_key(one, db) != console_secret(one, db)
    # Nothing was written under either home: the secrets are in the database only.
    assert not (tmp_path / "one").exists()
    assert not (tmp_path / "two").exists()


def test_the_database_holds_ciphertext_only(sqlite_db: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    secret = redaction_key(settings, sqlite_db)
    assert len(secret) == 64
    stored = _stored(sqlite_db, "redaction_key")
    assert secret.decode() not in stored
    # With no key set (one machine), the key is made once, readable by its owner only.
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Fernet(key_file.read_bytes()).decrypt(stored.encode()) == secret
    assert redaction_key(settings, sqlite_db) == secret


def test_a_machine_with_another_key_is_told_what_to_set(sqlite_db: Database, tmp_path: Path) -> None:
    console_secret(Settings(home=tmp_path / "first"), sqlite_db)
    other = Settings(home=tmp_path / "second", secrets_key=SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(ConfigurationError, match="ORDEROPS_SECRETS_KEY"):
        console_secret(other, sqlite_db)


def test_a_malformed_key_is_refused(sqlite_db: Database, tmp_path: Path) -> None:
    bad = Settings(home=tmp_path, secrets_key=SecretStr("not-a-fernet-key"))
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        redaction_key(bad, sqlite_db)


def test_a_key_from_the_old_file_is_taken_over(sqlite_db: Database, tmp_path: Path) -> None:
    (tmp_path / "redaction.key").write_text("ab" * 32 + "\n")
    (tmp_path / "console.key").write_text("cd" * 32)
    settings = Settings(home=tmp_path)
    assert redaction_key(settings, sqlite_db) == b"ab" * 32
    assert console_secret(settings, sqlite_db) == b"cd" * 32
    # From then on the database answers, whatever becomes of the file.
    (tmp_path / "redaction.key").unlink()
    assert redaction_key(settings, sqlite_db) == b"ab" * 32


def test_a_configured_redaction_key_wins(sqlite_db: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, redaction_key=SecretStr("wired-key"))
    assert redaction_key(settings, sqlite_db) == b"wired-key"
    assert SecretStore.from_settings(settings, sqlite_db).get("redaction_key") is None


def test_a_database_not_migrated_yet_gets_a_secret_for_this_process(tmp_path: Path) -> None:
    empty = make_database(url=f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        first = installation_secret(Settings(home=tmp_path), empty, "redaction_key")
        second = installation_secret(Settings(home=tmp_path), empty, "redaction_key")
    finally:
        empty.dispose()
    assert len(first) == 64
    assert first != second
