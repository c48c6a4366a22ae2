"""Errors become RFC 9457 problem details, mapped in one place."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.problems import Forbidden, NotImplementedYet, Unauthenticated, install, status_of
from core.errors import (
    ApprovalRequired,
    ConfigurationError,
    Conflict,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    OrderOpsError,
    PolicyDenied,
    SchemaTooNew,
    ValidationFailed,
)
from tests.api.conftest import Api

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@pytest.mark.parametrize(
    ("err", "status"),
    [
        (NotFound("order", "X"), 404),
        (ValidationFailed("bad"), 422),
        (InvalidTransition("no"), 409),
        (Conflict("twice"), 409),
        (InsufficientInventory("short"), 409),
        (PolicyDenied("no"), 403),
        (Forbidden("role"), 403),
        (Unauthenticated("who"), 401),
        (ApprovalRequired("wait"), 409),
        (SchemaTooNew("new"), 503),
        (ConfigurationError("broken"), 503),
        (NotImplementedYet("later"), 501),
        (OrderOpsError("?"), 500),
    ],
)
def test_each_error_class_has_its_status(err: OrderOpsError, status: int) -> None:
    assert status_of(err)[0] == status


def _app_raising(exc: Exception) -> TestClient:
    app = FastAPI()
    install(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


def test_domain_error_body_has_rfc9457_members_and_code() -> None:
    r = _app_raising(NotFound("order", "ORD-9")).get("/boom")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body == {
        "type": "urn:orderops:problem:not_found",
        "title": "Not found",
        "status": 404,
        "detail": "order 'ORD-9' does not exist",
        "code": "not_found",
        "instance": "/boom",
        "details": {"kind": "order", "id": "ORD-9"},
    }


def test_unexpected_errors_hide_their_message() -> None:
    for exc in (RuntimeError("password=hunter2"), OrderOpsError("secret internals")):
        r = _app_raising(exc).get("/boom")
        assert r.status_code == 500
        body = r.json()
        assert body["code"] == "internal_error"
        assert "hunter2" not in r.text
        assert "secret" not in r.text


def test_framework_errors_are_problems_too(api: Api) -> None:
    r = api.client.get("/nowhere")
    assert r.status_code == 404
    assert r.json().keys() >= PROBLEM_KEYS
    r = api.client.delete("/v1/approvals", headers=api.as_("admin"))
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    r = api.client.get("/v1/orders", params={"limit": 0}, headers=api.as_("viewer"))
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_failed"
    assert body["details"]["errors"][0]["loc"] == ["query", "limit"]
    assert "limit" in body["detail"]
