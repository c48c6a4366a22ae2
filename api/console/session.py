"""Console sign-in: a signed session cookie standing for an API key, and double-submit CSRF tokens.

A person signs in with the same API key the HTTP API takes. The cookie never holds the key: it holds
the key's public id, the principal, the sign-in time and the id of a server-side session record
(``console_sessions``), signed with HMAC-SHA256 under a secret that is created once per installation
under ``settings.home`` (like the redaction key). Every request re-reads the key record and the
session record, so a revoked key ends its console sessions at once, signing out ends the session on
the server (a copy of the cookie kept elsewhere is refused from then on), and roles come from the
key store, never from the cookie.

CSRF: every POST must carry (form field ``csrf_token`` or header ``X-CSRF-Token``) the value of the
``oo_csrf`` cookie. A page on another site can neither read that cookie nor make the browser send
the SameSite=Strict session cookie, so it cannot forge a decision.

What this module must never do: put a plaintext key in a cookie, a log or a page; accept an
unsigned, expired or ended session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import Request, Response
from sqlalchemy import delete, update

from api.auth import ApiKeyStore, Principal, effective_roles
from core.db.engine import Database
from core.db.tables_console import ConsoleSessionRow
from core.settings import Settings

SESSION_COOKIE = "oo_session"
CSRF_COOKIE = "oo_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 8 * 3600
SECRET_FILE = "console.key"


def console_secret(settings: Settings, db: Database) -> bytes:
    """A random per-installation secret, made once and kept in the database (encrypted, see
    :mod:`core.secrets`), so a cookie signed by one console server is good on every other; one
    still in ``<home>/console.key`` is taken over.

    Never a constant: a published secret would let anyone sign a session for any key id."""
    from core.secrets import installation_secret

    return installation_secret(settings, db, "console_secret", legacy_file=SECRET_FILE)


class SessionStore:
    """The server-side records of console sessions (``console_sessions``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, principal: Principal, *, now: float, ttl_s: int) -> str:
        """Record a new session for ``principal``; its id. Sessions long expired are pruned here,
        so the table holds about one TTL's worth of sign-ins."""
        sid = secrets.token_urlsafe(24)
        with self.db.begin() as s:
            s.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < _at(now - PRUNE_AFTER_S)))
            s.add(
                ConsoleSessionRow(
                    sid=sid,
                    key_id=principal.key_id or "",
                    principal=principal.id,
                    created_at=_at(now),
                    expires_at=_at(now + ttl_s),
                    ended_at=None,
                )
            )
        return sid

    def active(self, sid: str, *, key_id: str, principal: str, now: float) -> bool:
        """Whether session ``sid`` of that key and principal exists, has not ended and has not expired."""
        with self.db.sessions() as s:
            row = s.get(ConsoleSessionRow, sid)
            if row is None or row.ended_at is not None or row.key_id != key_id or row.principal != principal:
                return False
            return _epoch(row.expires_at) > now

    def end(self, sid: str, *, now: float) -> bool:
        """End session ``sid`` (sign-out); False when there was no open session by that id."""
        with self.db.begin() as s:
            ended = s.execute(
                update(ConsoleSessionRow)
                .where(ConsoleSessionRow.sid == sid, ConsoleSessionRow.ended_at.is_(None))
                .values(ended_at=_at(now))
            )
            return bool(getattr(ended, "rowcount", 0))


PRUNE_AFTER_S = 24 * 3600
"""Rows of sessions expired this long ago are deleted (an expired session is refused either way)."""


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(value: datetime) -> float:
    # SQLite hands back naive datetimes; every value here was written in UTC.
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class SessionSigner:
    """Signs and checks session cookie values, each backed by a :class:`SessionStore` record."""

    secret: bytes
    store: SessionStore
    ttl_s: int = SESSION_TTL_S

    def sign(self, principal: Principal, *, now: float | None = None) -> str:
        """Open a session for ``principal`` and return its cookie value."""
        at = now if now is not None else time.time()
        sid = self.store.open(principal, now=at, ttl_s=self.ttl_s)
        payload = {"kid": principal.key_id, "sub": principal.id, "iat": int(at), "sid": sid}
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def principal(self, value: str | None, keys: ApiKeyStore, *, now: float | None = None) -> Principal | None:
        """The principal a cookie value stands for: signature valid, not expired, session not
        ended, key still active."""
        at = now if now is not None else time.time()
        claims = self._claims(value)
        if claims is None:
            return None
        kid, sub, iat, sid = claims
        if at - iat > self.ttl_s:
            return None
        rec = keys.record(kid)
        if rec is None or rec.state() != "active" or rec.principal != sub:  # revoked or expired key
            return None
        if not self.store.active(sid, key_id=kid, principal=sub, now=at):
            return None
        return Principal(id=rec.principal, roles=effective_roles(rec.roles), key_id=rec.key_id)

    def end(self, value: str | None, *, now: float | None = None) -> bool:
        """End the session a (validly signed) cookie value names; False if it names none open."""
        claims = self._claims(value)
        if claims is None:
            return False
        return self.store.end(claims[3], now=now if now is not None else time.time())

    def _claims(self, value: str | None) -> tuple[str, str, int, str] | None:
        """(key id, principal, issued at, session id) of a cookie whose signature checks out."""
        if not value or "." not in value or len(value) > 2000:
            return None
        body, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode("utf-8", "replace"), self._mac(body).encode()):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            kid, sub, iat, sid = str(payload["kid"]), str(payload["sub"]), int(payload["iat"]), str(payload["sid"])
        except (ValueError, KeyError, TypeError):
            return None
        return kid, sub, iat, sid

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    """HttpOnly, SameSite=Strict, path /console; Secure whenever the console is served over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def csrf_token(request: Request) -> str:
    """The request's CSRF token: the cookie's, or a new one (the caller sets it with :func:`ensure_csrf`)."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 20 <= len(token) <= 100:
        return token
    cached = getattr(request.state, "new_csrf", None)
    if isinstance(cached, str):
        return cached
    request.state.new_csrf = fresh = secrets.token_urlsafe(32)
    return fresh


def ensure_csrf(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if isinstance(new, str):
        set_cookie(request, response, CSRF_COOKIE, new)


async def read_form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body, every value kept (repeated fields allowed).

    Parsed here rather than by Starlette's form parser, which needs python-multipart even for
    url-encoded forms; the console never uploads files."""
    body = await request.body()
    if len(body) > 1_000_000:
        return {}
    out: dict[str, list[str]] = {}
    for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000):
        out.setdefault(k, []).append(v)
    return out


def csrf_ok(request: Request, form: dict[str, list[str]]) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER) or (form.get(CSRF_FIELD) or [""])[0]
    return bool(cookie) and bool(sent) and hmac.compare_digest(cookie or "", sent)
