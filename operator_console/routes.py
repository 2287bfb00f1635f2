"""Console pages: login and logout, home, the newest cases; JSON: who am I, and the audit log for admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.app_state import sessions_of
from bot.client_address import client_key
from civic import console_accounts as accounts
from civic.console_accounts import ConsoleIdentity
from civic.db import MAX_ROW_ID, session_scope
from civic.i18n import category_label, status_label
from civic.models import AuditEntry, Case
from civic.settings import get_settings
from operator_console import sessions
from operator_console.audit import client_ip
from operator_console.auth import (
    CONSOLE_PATH,
    User,
    clear_session_cookie,
    login_csrf_token,
    login_nonce,
    optional_user,
    require_csrf,
    require_role,
    safe_next,
    set_login_nonce_cookie,
    set_session_cookie,
)
from operator_console.sessions import SessionIdentity

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/console/static"
NEWEST_CASES = 50
AUDIT_PAGE = 100
DESCRIPTION_CHARS = 200
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix=CONSOLE_PATH, tags=["console"], dependencies=[Depends(require_csrf)])

# Console pages carry a CSRF token and citizens' words: never cached, never framed, scripts from here only.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def render_page(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("csrf_token", context["user"].csrf_token if context["user"] else "")
    context["static_url"] = STATIC_URL
    response = templates.TemplateResponse(request, f"console/{name}", context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


# ---- login and logout ---------------------------------------------------------------------------------------------


def _login_page(
    request: Request, *, next_path: str, email: str = "", error: str = "", retry_after: int = 0, status_code: int = 200
) -> HTMLResponse:
    nonce, new_nonce = login_nonce(request)
    response = render_page(
        request,
        "login.html",
        status_code=status_code,
        csrf_token=login_csrf_token(nonce),
        next_path=next_path,
        email=email,
        error=error,
        wait_minutes=-(-retry_after // 60),  # rounded up: "try again in 0 minutes" helps nobody
        wait_seconds=retry_after,
    )
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    if new_nonce:
        set_login_nonce_cookie(response, nonce)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, user: Annotated[SessionIdentity | None, Depends(optional_user)], next: str = ""
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_path=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    with session_scope(sessions_of(request)) as session:
        outcome = sessions.log_in(
            session,
            email=email,
            password=password,
            ip=client_ip(request),
            address_key=client_key(request),
            user_agent=request.headers.get("user-agent", ""),
            previous_token=request.cookies.get(get_settings().console_cookie_name),
        )
    if outcome.throttled:
        return _login_page(
            request,
            next_path=safe_next(next),
            email=email,
            error="throttled",
            retry_after=outcome.retry_after,
            status_code=429,
        )
    if not outcome.ok or outcome.token is None:
        return _login_page(request, next_path=safe_next(next), email=email, error="failed", status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, outcome.token)
    return response


@router.post("/logout")
def logout(request: Request, user: User) -> Response:
    with session_scope(sessions_of(request)) as session:
        sessions.log_out(session, request.cookies.get(get_settings().console_cookie_name), ip=client_ip(request))
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(response)
    return response


# ---- pages --------------------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(request: Request, user: User) -> HTMLResponse:
    return render_page(request, "home.html", user=user, can=lambda action: accounts.can(user, action))


@dataclass(frozen=True)
class CaseRow:
    """One line of the case list, with labels already chosen (Korean: the console's language)."""

    number: str
    status: str
    category: str
    district: str
    place: str
    description: str
    department: str
    created_at: str


def _newest_cases(session: Session, user: ConsoleIdentity) -> list[CaseRow]:
    # Newest by id: the primary key orders filing, and its index keeps this fast with 100,000 cases.
    query = select(Case).options(joinedload(Case.department)).order_by(Case.id.desc()).limit(NEWEST_CASES)
    if user.role == "official":  # officials see only their own department's cases
        query = query.where(Case.department_id == user.department_id)
    zone = ZoneInfo(get_settings().timezone)
    return [
        CaseRow(
            number=case.number,
            status=status_label(case.status, "ko"),
            category=category_label(case.category, "ko"),
            district=case.district,
            place=case.place,
            description=case.description[:DESCRIPTION_CHARS],
            department=case.department.name_ko,
            created_at=local_time(case.created_at, zone),
        )
        for case in session.execute(query).scalars()
    ]


def local_time(moment: datetime, zone: ZoneInfo | None = None) -> str:
    """A moment as every console page shows it: the city's time zone, to the minute."""
    return f"{moment.astimezone(zone or ZoneInfo(get_settings().timezone)):%Y-%m-%d %H:%M}"


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, user: User) -> HTMLResponse:
    with session_scope(sessions_of(request)) as session:
        rows = _newest_cases(session, user)
    return render_page(request, "cases.html", user=user, cases=rows)


@router.get("/api/whoami")
def whoami(user: User, response: Response) -> dict[str, object]:
    response.headers["Cache-Control"] = "no-store"
    return {"email": user.email, "role": user.role, "department": user.department_code}


@router.get("/api/audit", dependencies=[Depends(require_role("admin"))])
def audit_log(
    request: Request, response: Response, before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None
) -> list[dict[str, object]]:
    """The newest audit entries (admins only), paged backwards with `before=<id>`."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    with session_scope(sessions_of(request)) as session:
        entries = session.execute(query).scalars().all()
        page: list[dict[str, object]] = [
            {
                "id": entry.id,
                "at": entry.at.isoformat(),
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "details": entry.details,
                "ip": entry.ip,
            }
            for entry in entries
        ]
    response.headers["Cache-Control"] = "no-store"
    return page
