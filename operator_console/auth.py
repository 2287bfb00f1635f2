"""Console authentication for FastAPI: the session cookie, who is asking, roles, and CSRF on every unsafe request."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Path, Query, Request, Response

from bot.app_state import sessions_of
from civic.console_accounts import ROLES
from civic.db import MAX_ROW_ID, session_scope
from civic.settings import get_settings
from operator_console import sessions
from operator_console.audit import audit, audit_async
from operator_console.sessions import SessionIdentity

CONSOLE_PATH = "/console"
LOGIN_PATH = "/console/login"
API_PATH = "/console/api"
# Before login there is no session to bind a CSRF token to: the login form uses its own short-lived cookie.
LOGIN_NONCE_COOKIE = "civic_console_login"
LOGIN_NONCE_SECONDS = 3600
LOGIN_CSRF_PURPOSE = "console-login-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNRESOLVED = object()


# Ids and pages in console URLs: a number past what the database holds is a 422, not a query that fails.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
PageNumber = Annotated[int, Query(ge=1, le=10_000)]


def cookie_flags() -> dict[str, object]:
    """HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure in production."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": get_settings().environment == "production",
        "path": CONSOLE_PATH,
    }


def set_session_cookie(response: Response, token: str) -> None:
    # The browser drops the cookie when the server would refuse the session anyway.
    max_age = get_settings().console_absolute_hours * 3600
    response.set_cookie(get_settings().console_cookie_name, token, max_age=max_age, **cookie_flags())  # type: ignore[arg-type]


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(get_settings().console_cookie_name, **cookie_flags())  # type: ignore[arg-type]


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PATH) or "application/json" in request.headers.get("accept", "")


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path of this site only, never another host."""
    if (
        target
        and target.startswith(CONSOLE_PATH)
        and not target.startswith(LOGIN_PATH)
        and "\\" not in target
        and target.isprintable()
    ):
        return target
    return CONSOLE_PATH


def _identity(request: Request) -> SessionIdentity | None:
    # Resolved once per request: the CSRF guard and the route's dependency share it.
    cached = getattr(request.state, "console_identity", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached  # type: ignore[return-value]
    token = request.cookies.get(get_settings().console_cookie_name)
    identity = None
    if token:
        with session_scope(sessions_of(request)) as session:
            identity = sessions.resolve_session(session, token)
    request.state.console_identity = identity
    return identity


def optional_user(request: Request) -> SessionIdentity | None:
    """The logged-in user, or None (for pages anyone may see, like the login page)."""
    return _identity(request)


def current_user(request: Request) -> SessionIdentity:
    """The logged-in user; anonymous pages are sent to the login page (303), JSON requests get 401."""
    identity = _identity(request)
    if identity is not None:
        return identity
    if wants_json(request):
        raise HTTPException(401, "login required")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise HTTPException(303, "login required", headers={"Location": f"{LOGIN_PATH}?{urlencode({'next': here})}"})


def require_role(*roles: str) -> Callable[..., SessionIdentity]:
    """A dependency admitting only users with one of `roles` (403 and an audit entry for the others)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def dependency(request: Request, user: Annotated[SessionIdentity, Depends(current_user)]) -> SessionIdentity:
        if user.role not in roles:
            audit(request, "access.denied", by=user, target=request.url.path, details={"needs": list(roles)})
            raise HTTPException(403, "your role may not do this")
        return user

    return dependency


OPERATOR_ROLES = ("operator", "admin")  # the live queue, takeovers and the outbox
# The typed dependencies routes declare: any logged-in user, operators (and admins), admins only.
User = Annotated[SessionIdentity, Depends(current_user)]
Operator = Annotated[SessionIdentity, Depends(require_role(*OPERATOR_ROLES))]
Admin = Annotated[SessionIdentity, Depends(require_role("admin"))]


def login_csrf_token(nonce: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{LOGIN_CSRF_PURPOSE}:{nonce}".encode(), hashlib.sha256).hexdigest()


def login_nonce(request: Request) -> tuple[str, bool]:
    """The login form's nonce from its cookie, or a new one (True: the cookie must be set)."""
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE)
    if nonce and len(nonce) <= 64:
        return nonce, False
    return secrets.token_urlsafe(24), True


def set_login_nonce_cookie(response: Response, nonce: str) -> None:
    flags = cookie_flags() | {"path": LOGIN_PATH}
    response.set_cookie(LOGIN_NONCE_COOKIE, nonce, max_age=LOGIN_NONCE_SECONDS, **flags)  # type: ignore[arg-type]


def _login_csrf_ok(request: Request, given: str | None) -> bool:
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE)
    if not nonce or len(nonce) > 64 or not given:
        return False
    return hmac.compare_digest(given, login_csrf_token(nonce))


async def _given_csrf_token(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf_token")  # Starlette caches the form for the route
        return value if isinstance(value, str) else None
    return None


async def require_csrf(request: Request) -> None:
    """Refuses (403, audited) an unsafe request without the session's CSRF token; GET and HEAD pass.

    Put on the console router itself, so a POST route added later cannot forget it.
    """
    if request.method in SAFE_METHODS:
        return
    given = await _given_csrf_token(request)
    identity = None
    if request.url.path == LOGIN_PATH:
        ok = _login_csrf_ok(request, given)
    else:
        identity = await asyncio.to_thread(_identity, request)
        ok = identity is not None and sessions.csrf_ok(identity, given)
    if not ok:
        details = {"method": request.method, "token_given": bool(given)}
        await audit_async(request, "csrf.refused", by=identity, target=request.url.path, details=details)
        raise HTTPException(403, "missing or wrong CSRF token")
