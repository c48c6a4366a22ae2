"""API keys: hashed at rest, required on business routes, roles gate what a caller may do."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from api.auth import ApiKeyStore, Role, create_key, effective_roles
from core.errors import ValidationFailed
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


def test_keys_are_stored_hashed_and_private(tmp_path: object) -> None:
    from pathlib import Path

    home = Path(str(tmp_path))
    plaintext = create_key(home, "ada", ["admin"], note="ops laptop")
    path = home / "api_keys.yaml"
    text = path.read_text()
    assert plaintext not in text
    assert plaintext.split("_", 2)[2] not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a second store on the same file (another process) sees the key
    who = ApiKeyStore.under(home).authenticate(plaintext)
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


def test_expired_key_stops_working_and_lists_as_expired(tmp_path: Path) -> None:
    home = tmp_path
    store = ApiKeyStore.under(home)
    plaintext, rec = store.create("ada", ["approver"], expires_in=timedelta(days=1))
    assert rec.expires_at is not None
    assert rec.state() == "active"
    assert store.authenticate(plaintext) is not None
    # A day later (as another process would read the file): the key no longer authenticates.
    assert rec.state(now=rec.expires_at) == "expired"
    path = home / "api_keys.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["keys"][0]["expires_at"] = "2000-01-01T00:00:00+00:00"
    path.write_text(yaml.safe_dump(raw))
    reread = ApiKeyStore.under(home)
    assert reread.authenticate(plaintext) is None
    assert [r.state() for r in reread.records()] == ["expired"]


def test_key_lifetime_must_be_positive_and_revoking_twice_keeps_the_first_instant(tmp_path: Path) -> None:
    store = ApiKeyStore.under(tmp_path)
    with pytest.raises(ValidationFailed):
        store.create("ada", ["viewer"], expires_in=timedelta(0))
    _, rec = store.create("ada", ["viewer"])
    first = store.revoke(rec.key_id)
    assert store.revoke(rec.key_id).revoked_at == first.revoked_at
