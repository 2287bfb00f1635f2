"""Console admin screen for Open311 API keys: create (the key shown once), list with last use, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.app_state import sessions_of
from civic import api_keys
from civic.console_accounts import ConsoleIdentity
from civic.console_cases import ActionRefused, PermissionDenied
from civic.db import session_scope
from civic.settings import get_settings
from operator_console.audit import audit, client_ip
from operator_console.auth import CONSOLE_PATH, Admin, require_csrf
from operator_console.routes import local_time, render_page

KEYS_PATH = f"{CONSOLE_PATH}/admin/api-keys"
router = APIRouter(prefix=KEYS_PATH, tags=["console"], dependencies=[Depends(require_csrf)])
Text = Annotated[str, Form(max_length=200)]

DONE = {
    "key_revoked": ("키를 폐기했습니다. 이 키로는 더 이상 신고를 보낼 수 없습니다.", "Key revoked; it posts no more.")
}
ERRORS = {
    "name_required": ("키 이름(쓰는 곳)을 입력하세요.", "Enter a name for the key (who uses it)."),
    "name_too_long": ("이름이 너무 깁니다 (128자까지).", "Names have at most 128 characters."),
    "bad_rate": (
        f"분당 한도는 1~{api_keys.MAX_RATE_PER_MINUTE:,}입니다.",
        f"The limit is 1 to {api_keys.MAX_RATE_PER_MINUTE:,} per minute.",
    ),
    "unknown_key": ("키를 찾을 수 없습니다.", "No such key."),
}


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return local_time(moment)


def _page(request: Request, actor: ConsoleIdentity, *, done: str = "", error: str = "", **context: Any) -> Response:
    with session_scope(sessions_of(request)) as session:
        keys = [
            {
                "id": key.id,
                "name": key.name,
                "prefix": key.prefix,
                "rate": key.rate_limit_per_minute,
                "created": _local(key.created_at),
                "created_by": key.created_by,
                "last_used": _local(key.last_used_at),
                "revoked": _local(key.revoked_at) if key.revoked_at else "",
            }
            for key in api_keys.list_keys(session, by=actor)
        ]
    response = render_page(
        request,
        "admin_api_keys.html",
        user=actor,
        done=DONE.get(done),
        error=ERRORS.get(error),
        keys=keys,
        default_rate=get_settings().open311_key_rate_per_minute,
        **context,
    )
    response.headers["Cache-Control"] = "no-store"  # the page that shows a new key once must not be kept
    return response


@router.get("", response_class=HTMLResponse)
def keys_page(request: Request, actor: Admin, done: str = "", error: str = "") -> Response:
    return _page(request, actor, done=done, error=error)


@router.post("", response_class=HTMLResponse)
def create_key(request: Request, actor: Admin, name: Text = "", rate_limit_per_minute: Text = "") -> Response:
    """Creates a key and shows it in this response only (never in a URL, never stored)."""
    try:
        with session_scope(sessions_of(request)) as session:
            new = api_keys.create_key(
                session, name=name, by=actor, rate_limit_per_minute=rate_limit_per_minute, ip=client_ip(request)
            )
            secret, key_name = new.secret, new.key.name
    except PermissionDenied:
        audit(request, "admin.denied", by=actor, target=request.url.path)
        raise HTTPException(403, "your role may not do this") from None
    except ActionRefused as refused:
        return RedirectResponse(f"{KEYS_PATH}?error={refused.code}", status_code=303)
    return _page(request, actor, new_secret=secret, new_name=key_name)


@router.post("/{key_id}/revoke")
def revoke_key(request: Request, actor: Admin, key_id: int) -> Response:
    try:
        with session_scope(sessions_of(request)) as session:
            api_keys.revoke_key(session, key_id=key_id, by=actor, ip=client_ip(request))
    except PermissionDenied:
        audit(request, "admin.denied", by=actor, target=request.url.path)
        raise HTTPException(403, "your role may not do this") from None
    except ActionRefused as refused:
        return RedirectResponse(f"{KEYS_PATH}?error={refused.code}", status_code=303)
    return RedirectResponse(f"{KEYS_PATH}?done=key_revoked", status_code=303)
