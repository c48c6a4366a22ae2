"""Console sign-in: a signed session cookie standing for an API key, and double-submit CSRF tokens.

A person signs in with the same API key the HTTP API takes. The cookie never holds the key: it holds
the key's public id, the principal and the sign-in time, signed with HMAC-SHA256 under a secret
that is created once per installation under ``settings.home`` (like the redaction key). Every
request re-reads the key record, so a revoked key ends its console sessions at once and roles come
from the key store, never from the cookie.

CSRF: every POST must carry (form field ``csrf_token`` or header ``X-CSRF-Token``) the value of the
``oo_csrf`` cookie. A page on another site can neither read that cookie nor make the browser send
the SameSite=Strict session cookie, so it cannot forge a decision.

What this module must never do: put a plaintext key in a cookie, a log or a page; accept an
unsigned or expired session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import Request, Response

from api.auth import ApiKeyStore, Principal, effective_roles
from core.settings import Settings

SESSION_COOKIE = "oo_session"
CSRF_COOKIE = "oo_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 8 * 3600
SECRET_FILE = "console.key"


def console_secret(settings: Settings) -> bytes:
    """A random per-installation secret kept in ``<home>/console.key`` (mode 0600), made once.

    Never a constant: a published secret would let anyone sign a session for any key id."""
    path = Path(settings.home) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


@dataclass(frozen=True)
class SessionSigner:
    """Signs and checks session cookie values."""

    secret: bytes
    ttl_s: int = SESSION_TTL_S

    def sign(self, principal: Principal, *, now: float | None = None) -> str:
        payload = {"kid": principal.key_id, "sub": principal.id, "iat": int(now if now is not None else time.time())}
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def principal(self, value: str | None, keys: ApiKeyStore, *, now: float | None = None) -> Principal | None:
        """The principal a cookie value stands for: signature valid, not expired, key still active."""
        if not value or "." not in value:
            return None
        body, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            kid, sub, iat = str(payload["kid"]), str(payload["sub"]), int(payload["iat"])
        except (ValueError, KeyError, TypeError):
            return None
        if (now if now is not None else time.time()) - iat > self.ttl_s:
            return None
        rec = next((r for r in keys.records() if r.key_id == kid), None)
        if rec is None or rec.revoked_at is not None or rec.principal != sub:
            return None
        return Principal(id=rec.principal, roles=effective_roles(rec.roles), key_id=rec.key_id)

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
