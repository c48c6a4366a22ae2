"""API keys: hashed at rest, required on business routes, roles gate what a caller may do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from api.auth import ApiKeyStore, Role, create_key, effective_roles, import_legacy_file
from api.cli import run
from core.db import Database, make_database
from core.errors import ConfigurationError, NotFound, ValidationFailed
from tests.api.conftest import Api


def assert_problem(body: dict[str, object], status: int, code: str) -> None:
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:orderops:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]


def test_missing_or_forged_key_is_401_problem(api: Api) -> None:
    real = api.key["viewer"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {forged}"},
        {"X-API-Key": "oo_nope_nope"},
        {"X-API-Key": "not-a-key"},
        {"Authorization": f"Basic {real}"},
    ):
        r = api.client.get("/v1/nodes", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert_problem(r.json(), 401, "unauthenticated")
        assert real not in r.text
        assert forged not in r.text


def test_either_header_authenticates(api: Api) -> None:
    assert api.client.get("/v1/nodes", headers={"Authorization": f"Bearer {api.key['viewer']}"}).status_code == 200
    assert api.client.get("/v1/nodes", headers={"X-API-Key": api.key["viewer"]}).status_code == 200


def test_revoked_key_stops_working(api: Api) -> None:
    key_id = api.key["viewer"].split("_")[1]
    assert api.client.get("/v1/nodes", headers=api.as_("viewer")).status_code == 200
    api.keys.revoke(key_id)
    assert api.client.get("/v1/nodes", headers=api.as_("viewer")).status_code == 401


def test_keys_are_stored_hashed_in_the_database(db: Database, tmp_path: Path) -> None:
    plaintext = create_key(ApiKeyStore(db), "ada", ["admin"], note="ops laptop")
    with db.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(text("select key_id, key_hash, principal, note from api_keys"))]
    assert [(r[2], r[3]) for r in stored] == [("ada", "ops laptop")]
    assert plaintext not in repr(stored)
    assert plaintext.split("_", 2)[2] not in repr(stored)
    assert not (tmp_path / "api_keys.yaml").exists()
    # a second store on its own connection pool (as another machine would) sees the key
    other = make_database(url=db.engine.url.render_as_string(hide_password=False))
    try:
        who = ApiKeyStore(other).authenticate(plaintext)
    finally:
        other.dispose()
    assert who is not None
    assert who.id == "ada"
    assert who.has(Role.APPROVER)


def test_roles_imply_reading_and_admin_holds_all() -> None:
    assert effective_roles([Role.APPROVER]) == {Role.APPROVER, Role.VIEWER}
    assert effective_roles([Role.ADMIN]) == set(Role)
    assert Role.APPROVER not in effective_roles([Role.OPERATOR])


def test_viewer_cannot_approve(api: Api) -> None:
    out = api.propose_bulk_reroute()
    r = api.client.post(f"/v1/approvals/{out.approval_id}", json={"decision": "approve"}, headers=api.as_("viewer"))
    assert r.status_code == 403
    assert_problem(r.json(), 403, "forbidden")
    assert api.net.gateway.guard.approvals.get(out.approval_id).status == "pending"


def test_requester_cannot_approve_own_request(api: Api) -> None:
    out = api.propose_bulk_reroute()
    r = api.client.post(f"/v1/approvals/{out.approval_id}", json={"decision": "approve"}, headers=api.as_("requester"))
    assert r.status_code == 403
    body = r.json()
    assert_problem(body, 403, "policy_denied")
    assert "may not approve" in body["detail"]
    assert api.net.gateway.guard.approvals.get(out.approval_id).status == "pending"


def test_viewer_cannot_read_audit_but_approver_and_admin_can(api: Api) -> None:
    assert api.client.get("/v1/audit", headers=api.as_("viewer")).status_code == 403
    assert api.client.get("/v1/audit", headers=api.as_("operator")).status_code == 403
    assert api.client.get("/v1/audit", headers=api.as_("approver")).status_code == 200
    assert api.client.get("/v1/audit/verify", headers=api.as_("admin")).status_code == 200


def test_expired_key_stops_working_and_lists_as_expired(db: Database) -> None:
    store = ApiKeyStore(db)
    plaintext, rec = store.create("ada", ["approver"], expires_in=timedelta(days=1))
    assert rec.expires_at is not None
    assert rec.state() == "active"
    assert store.authenticate(plaintext) is not None
    # A day later (as another process would read the table): the key no longer authenticates.
    assert rec.state(now=rec.expires_at) == "expired"
    with db.engine.begin() as conn:
        conn.execute(text("update api_keys set expires_at = :at"), {"at": datetime(2000, 1, 1, tzinfo=UTC)})
    reread = ApiKeyStore(db)
    assert reread.authenticate(plaintext) is None
    assert [r.state() for r in reread.records()] == ["expired"]


def test_key_lifetime_must_be_positive_and_revoking_twice_keeps_the_first_instant(sqlite_db: Database) -> None:
    store = ApiKeyStore(sqlite_db)
    with pytest.raises(ValidationFailed):
        store.create("ada", ["viewer"], expires_in=timedelta(0))
    _, rec = store.create("ada", ["viewer"])
    first = store.revoke(rec.key_id)
    assert store.revoke(rec.key_id).revoked_at == first.revoked_at
    with pytest.raises(NotFound):
        store.revoke("nope")


def test_a_key_made_by_one_process_authenticates_in_another_and_revoking_reaches_it(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two machines on one database: `orderops keys create` in a separate process, the key checked
    here; revoked through the CLI, it stops working in a store that holds it in its cache once the
    cache's TTL is over (0 here: no timed test), and at once in the store that revoked it."""
    url = db.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "ORDEROPS_HOME": str(tmp_path / "a"), "ORDEROPS_DATABASE_URL": url}
    made = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "keys", "create", "--name", "ana",
         "--role", "approver", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    plaintext = json.loads(made.stdout)["key"]
    here = ApiKeyStore(db, home=tmp_path / "b", ttl_s=0)
    cached = ApiKeyStore(db, home=tmp_path / "b")
    who = here.authenticate(plaintext)
    assert who is not None
    assert (who.id, who.has(Role.APPROVER)) == ("ana", True)
    assert cached.authenticate(plaintext) is not None

    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("ORDEROPS_DATABASE_URL", url)
    assert run(["keys", "revoke", plaintext]) == 0
    assert here.authenticate(plaintext) is None
    listed = {r.key_id: r.state() for r in cached.records()}
    assert listed == {who.key_id: "revoked"}
    cached.revoke(str(who.key_id))  # this store's own revocation clears its cache at once
    assert cached.authenticate(plaintext) is None


def test_the_legacy_key_file_is_imported_once(db: Database, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    old = ApiKeyStore(db)  # stands in for an older OrderOps writing the file
    plaintext, rec = old.create("vic", ["viewer"], note="dashboard")
    with db.engine.begin() as conn:
        conn.execute(text("delete from api_keys"))
    legacy = home / "api_keys.yaml"
    legacy.write_text(yaml.safe_dump({"keys": [rec.model_dump(mode="json")]}))

    store = ApiKeyStore(db, home=home)
    who = store.authenticate(plaintext)
    assert who is not None
    assert who.id == "vic"
    assert not legacy.exists()
    assert (home / "api_keys.yaml.imported").exists()
    store.revoke(rec.key_id)
    # the file put back (a restored backup): a key already in the table is not taken in again
    legacy.write_text((home / "api_keys.yaml.imported").read_text())
    assert import_legacy_file(db, legacy) == 0
    assert [r.state() for r in ApiKeyStore(db, home=home).records()] == ["revoked"]
    assert ApiKeyStore(db, home=tmp_path / "elsewhere").authenticate(plaintext) is None


def test_a_broken_legacy_file_or_an_unmigrated_database_is_a_clear_error(sqlite_db: Database, tmp_path: Path) -> None:
    (tmp_path / "api_keys.yaml").write_text("keys: [{key_id: 1}]\n")
    with pytest.raises(ConfigurationError, match="not a list of keys"):
        ApiKeyStore(sqlite_db, home=tmp_path).records()
    bare = make_database(url=f"sqlite:///{tmp_path / 'bare.db'}")
    try:
        with pytest.raises(ConfigurationError, match="orderops init"):
            ApiKeyStore(bare).authenticate("oo_abc_def")
    finally:
        bare.dispose()
