"""Console admin screens: users and roles, departments, the routing table, category deadlines, canned answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot.app_state import sessions_of
from civic import console_admin as admin
from civic.categories import CATEGORIES, MAX_DAYS, MIN_DAYS
from civic.console_accounts import MIN_PASSWORD_CHARS, ROLES, ConsoleIdentity
from civic.console_cases import ActionRefused, PermissionDenied
from civic.db import session_scope
from civic.districts import DISTRICTS
from civic.i18n import LANGUAGE_NAMES, LANGUAGES, category_label
from operator_console.audit import audit, client_ip
from operator_console.auth import CONSOLE_PATH, Admin, require_csrf
from operator_console.routes import local_time, render_page

ADMIN_PATH = f"{CONSOLE_PATH}/admin"
router = APIRouter(prefix=ADMIN_PATH, tags=["console"], dependencies=[Depends(require_csrf)])
# Anonymous: 303 to the login page (401 for JSON); other roles: 403 with an audit entry (operator_console.auth).
Text = Annotated[str, Form(max_length=4000)]  # the longest field is a canned answer (2,000 characters)

# Flash messages are chosen by key from these tables, never echoed from the URL.
DONE = {
    "user_created": ("사용자를 만들었습니다.", "User created."),
    "role_changed": ("역할을 바꿨습니다.", "Role changed."),
    "user_deactivated": (
        "사용자를 비활성화했습니다. 로그인 중이던 세션도 끝났습니다.",
        "User deactivated; their sessions ended.",
    ),
    "user_reactivated": ("사용자를 다시 활성화했습니다.", "User reactivated."),
    "password_reset": (
        "비밀번호를 바꿨습니다. 해당 사용자의 세션은 끝났습니다.",
        "Password reset; their sessions ended.",
    ),
    "desk_phone_set": ("내선 전화번호를 저장했습니다.", "Desk phone saved."),
    "desk_phone_cleared": ("내선 전화번호를 지웠습니다.", "Desk phone cleared."),
    "department_created": ("부서를 만들었습니다.", "Department created."),
    "department_renamed": ("부서 이름을 바꿨습니다.", "Department renamed."),
    "route_set": ("배정 규칙을 바꿨습니다. 새로 접수되는 민원부터 적용됩니다.", "Route changed for newly filed cases."),
    "route_cleared": ("파일의 배정 규칙으로 되돌렸습니다.", "Route reset to routing.yml."),
    "deadline_set": (
        "처리 기한을 바꿨습니다. 새로 접수되는 민원부터 적용됩니다.",
        "Deadline changed for newly filed cases.",
    ),
    "deadline_reset": ("기본 처리 기한으로 되돌렸습니다.", "Deadline reset to categories.yml."),
    "answer_created": ("상용구를 만들었습니다.", "Canned answer created."),
    "answer_edited": ("상용구를 고쳤습니다.", "Canned answer saved."),
    "answer_deactivated": ("상용구를 내렸습니다.", "Canned answer deactivated."),
    "answer_reactivated": ("상용구를 다시 올렸습니다.", "Canned answer reactivated."),
}
ERRORS = {
    "unknown_role": ("알 수 없는 역할입니다.", "Unknown role."),
    "department_required": ("부서를 고르세요.", "Choose a department."),
    "unknown_department": ("알 수 없는 부서입니다.", "Unknown department."),
    "bad_email": ("이메일 주소가 올바르지 않습니다.", "Not an email address."),
    "user_exists": ("같은 이메일의 사용자가 이미 있습니다.", "A user with that email exists already."),
    "weak_password": (
        f"비밀번호는 {MIN_PASSWORD_CHARS}자 이상이어야 합니다.",
        f"The password needs at least {MIN_PASSWORD_CHARS} characters.",
    ),
    "unknown_user": ("사용자를 찾을 수 없습니다.", "No such user."),
    "self_demotion": ("자신의 관리자 역할은 바꿀 수 없습니다.", "You cannot take away your own admin role."),
    "self_deactivation": ("자신을 비활성화할 수 없습니다.", "You cannot deactivate yourself."),
    "phone_required": ("전화번호를 입력하세요.", "Enter a phone number."),
    "bad_phone": ("전화번호가 올바르지 않습니다.", "Not a valid phone number."),
    "desk_phone_for_operators": ("내선 전화는 상담사와 관리자만 씁니다.", "Only operators and admins take calls."),
    "bad_code": ("부서 코드는 영소문자, 숫자, - 로 2~64자입니다.", "Codes are 2–64 of a-z, 0-9 and -."),
    "names_required": ("세 언어의 이름을 모두 입력하세요.", "Enter the name in all three languages."),
    "name_too_long": ("이름이 너무 깁니다 (128자까지).", "Names have at most 128 characters."),
    "department_exists": ("같은 코드의 부서가 이미 있습니다.", "A department with that code exists already."),
    "department_in_routing_file": (
        "routing.yml의 부서 이름은 파일에서 바꿉니다 (배포 때 파일의 이름으로 돌아갑니다).",
        "routing.yml's departments are renamed in the file; each deploy restores the file's names.",
    ),
    "unknown_category": ("알 수 없는 분야입니다.", "Unknown category."),
    "unknown_district": ("알 수 없는 자치구입니다.", "Unknown district."),
    "no_override": ("바뀐 설정이 없습니다.", "Nothing to reset."),
    "bad_days": (
        f"처리 기한은 {MIN_DAYS}~{MAX_DAYS} 근무일입니다.",
        f"Deadlines are {MIN_DAYS} to {MAX_DAYS} working days.",
    ),
    "unknown_language": ("알 수 없는 언어입니다.", "Unknown language."),
    "title_required": ("제목을 입력하세요.", "Enter a title."),
    "title_too_long": ("제목이 너무 깁니다 (128자까지).", "Titles have at most 128 characters."),
    "text_required": ("내용을 입력하세요.", "Enter the text."),
    "text_too_long": ("내용이 너무 깁니다 (2000자까지).", "Answers have at most 2,000 characters."),
    "unknown_answer": ("상용구를 찾을 수 없습니다.", "No such canned answer."),
}
ROLE_LABELS = {"operator": "상담사 · operator", "official": "담당 공무원 · official", "admin": "관리자 · admin"}


def _page(request: Request, admin_user: ConsoleIdentity, name: str, done: str, error: str, **context: Any) -> Response:
    return render_page(request, name, user=admin_user, done=DONE.get(done), error=ERRORS.get(error), **context)


def _change(
    request: Request, actor: ConsoleIdentity, page: str, done: str, work: Callable[[Session, str], object]
) -> Response:
    """Runs one change (the service writes its audit entry in the same transaction), then back to `page` (303)."""
    try:
        with session_scope(sessions_of(request)) as session:
            work(session, client_ip(request))
    except PermissionDenied:
        audit(request, "admin.denied", by=actor, target=request.url.path)
        raise HTTPException(403, "your role may not do this") from None
    except ActionRefused as refused:
        return RedirectResponse(f"{ADMIN_PATH}/{page}?error={refused.code}", status_code=303)
    return RedirectResponse(f"{ADMIN_PATH}/{page}?done={done}", status_code=303)


@router.get("", response_class=HTMLResponse)
def admin_home(request: Request, actor: Admin) -> Response:
    with session_scope(sessions_of(request)) as session:
        summary = admin.admin_summary(session, actor)
    return _page(request, actor, "admin_index.html", "", "", summary=summary)


# ---- users --------------------------------------------------------------------------------------------------------


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: Admin, done: str = "", error: str = "") -> Response:
    with session_scope(sessions_of(request)) as session:
        users = admin.list_users(session, actor)
        departments = admin.department_choices(session)
    return _page(
        request,
        actor,
        "admin_users.html",
        done,
        error,
        users=users,
        departments=departments,
        roles=[(role, ROLE_LABELS[role]) for role in ROLES],
        min_password=MIN_PASSWORD_CHARS,
        local=local_time,
    )


@router.post("/users")
def create_user(
    request: Request, actor: Admin, email: Text = "", role: Text = "", password: Text = "", department: Text = ""
) -> Response:
    return _change(
        request,
        actor,
        "users",
        "user_created",
        lambda s, ip: admin.create_user(
            s, actor, email=email, role=role, password=password, department_code=department, ip=ip
        ),
    )


@router.post("/users/{user_id}/role")
def change_role(request: Request, actor: Admin, user_id: int, role: Text = "", department: Text = "") -> Response:
    return _change(
        request,
        actor,
        "users",
        "role_changed",
        lambda s, ip: admin.change_role(s, actor, user_id, role=role, department_code=department, ip=ip),
    )


@router.post("/users/{user_id}/deactivate")
def deactivate_user(request: Request, actor: Admin, user_id: int) -> Response:
    return _change(
        request, actor, "users", "user_deactivated", lambda s, ip: admin.deactivate_user(s, actor, user_id, ip=ip)
    )


@router.post("/users/{user_id}/reactivate")
def reactivate_user(request: Request, actor: Admin, user_id: int) -> Response:
    return _change(
        request, actor, "users", "user_reactivated", lambda s, ip: admin.reactivate_user(s, actor, user_id, ip=ip)
    )


@router.post("/users/{user_id}/password")
def reset_password(request: Request, actor: Admin, user_id: int, password: Text = "") -> Response:
    return _change(
        request,
        actor,
        "users",
        "password_reset",
        lambda s, ip: admin.reset_password(s, actor, user_id, password=password, ip=ip),
    )


@router.post("/users/{user_id}/desk-phone")
def set_desk_phone(request: Request, actor: Admin, user_id: int, phone: Text = "") -> Response:
    return _change(
        request,
        actor,
        "users",
        "desk_phone_set",
        lambda s, ip: admin.set_desk_phone(s, actor, user_id, phone=phone, ip=ip),
    )


@router.post("/users/{user_id}/desk-phone/clear")
def clear_desk_phone(request: Request, actor: Admin, user_id: int) -> Response:
    return _change(
        request, actor, "users", "desk_phone_cleared", lambda s, ip: admin.clear_desk_phone(s, actor, user_id, ip=ip)
    )


# ---- departments --------------------------------------------------------------------------------------------------


@router.get("/departments", response_class=HTMLResponse)
def departments_page(request: Request, actor: Admin, done: str = "", error: str = "") -> Response:
    with session_scope(sessions_of(request)) as session:
        departments = admin.list_departments(session, actor)
    return _page(request, actor, "admin_departments.html", done, error, departments=departments)


@router.post("/departments")
def create_department(
    request: Request, actor: Admin, code: Text = "", name_ko: Text = "", name_en: Text = "", name_ja: Text = ""
) -> Response:
    return _change(
        request,
        actor,
        "departments",
        "department_created",
        lambda s, ip: admin.create_department(
            s, actor, code=code, name_ko=name_ko, name_en=name_en, name_ja=name_ja, ip=ip
        ),
    )


@router.post("/departments/{code}/rename")
def rename_department(
    request: Request, actor: Admin, code: str, name_ko: Text = "", name_en: Text = "", name_ja: Text = ""
) -> Response:
    return _change(
        request,
        actor,
        "departments",
        "department_renamed",
        lambda s, ip: admin.rename_department(s, actor, code, name_ko=name_ko, name_en=name_en, name_ja=name_ja, ip=ip),
    )


# ---- the routing table --------------------------------------------------------------------------------------------


@router.get("/routing", response_class=HTMLResponse)
def routing_page(request: Request, actor: Admin, done: str = "", error: str = "") -> Response:
    with session_scope(sessions_of(request)) as session:
        routes = admin.routing_table(session, actor)
        departments = admin.department_choices(session)
    return _page(
        request,
        actor,
        "admin_routing.html",
        done,
        error,
        routes=routes,
        overrides=[route for route in routes.values() if route.overridden],
        categories=[(code, category_label(code, "ko")) for code in CATEGORIES],
        districts=DISTRICTS,
        departments=departments,
    )


@router.post("/routing")
def set_route(
    request: Request, actor: Admin, category: Text = "", district: Text = "", department: Text = ""
) -> Response:
    return _change(
        request,
        actor,
        "routing",
        "route_set",
        lambda s, ip: admin.set_route(
            s, actor, category=category, district=district, department_code=department, ip=ip
        ),
    )


@router.post("/routing/clear")
def clear_route(request: Request, actor: Admin, category: Text = "", district: Text = "") -> Response:
    return _change(
        request,
        actor,
        "routing",
        "route_cleared",
        lambda s, ip: admin.clear_route(s, actor, category=category, district=district, ip=ip),
    )


# ---- category deadlines -------------------------------------------------------------------------------------------


@router.get("/deadlines", response_class=HTMLResponse)
def deadlines_page(request: Request, actor: Admin, done: str = "", error: str = "") -> Response:
    with session_scope(sessions_of(request)) as session:
        deadlines = admin.deadlines(session, actor)
    return _page(
        request,
        actor,
        "admin_deadlines.html",
        done,
        error,
        deadlines=deadlines,
        labels={code: category_label(code, "ko") for code in CATEGORIES},
        min_days=MIN_DAYS,
        max_days=MAX_DAYS,
    )


@router.post("/deadlines/{category}")
def set_deadline(request: Request, actor: Admin, category: str, days: Text = "") -> Response:
    return _change(
        request,
        actor,
        "deadlines",
        "deadline_set",
        lambda s, ip: admin.set_deadline(s, actor, category=category, days=days, ip=ip),
    )


@router.post("/deadlines/{category}/reset")
def reset_deadline(request: Request, actor: Admin, category: str) -> Response:
    return _change(
        request,
        actor,
        "deadlines",
        "deadline_reset",
        lambda s, ip: admin.reset_deadline(s, actor, category=category, ip=ip),
    )


# ---- canned answers -----------------------------------------------------------------------------------------------


def _state_filter(state: str) -> bool | None:
    return {"active": True, "inactive": False}.get(state)


@router.get("/canned", response_class=HTMLResponse)
def canned_page(
    request: Request, actor: Admin, language: str = "", state: str = "active", done: str = "", error: str = ""
) -> Response:
    chosen_language = language if language in LANGUAGES else None
    with session_scope(sessions_of(request)) as session:
        answers = admin.list_canned_answers(session, actor, language=chosen_language, active=_state_filter(state))
    return _page(
        request,
        actor,
        "admin_canned.html",
        done,
        error,
        answers=answers,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        language=chosen_language or "",
        state=state if state in ("active", "inactive") else "all",
        max_chars=admin.MAX_ANSWER_CHARS,
    )


@router.post("/canned")
def create_canned_answer(
    request: Request, actor: Admin, language: Text = "", title: Text = "", text: Text = ""
) -> Response:
    return _change(
        request,
        actor,
        "canned",
        "answer_created",
        lambda s, ip: admin.create_canned_answer(s, actor, language=language, title=title, text=text, ip=ip),
    )


@router.post("/canned/{answer_id}")
def edit_canned_answer(
    request: Request, actor: Admin, answer_id: int, language: Text = "", title: Text = "", text: Text = ""
) -> Response:
    return _change(
        request,
        actor,
        "canned",
        "answer_edited",
        lambda s, ip: admin.edit_canned_answer(s, actor, answer_id, language=language, title=title, text=text, ip=ip),
    )


@router.post("/canned/{answer_id}/deactivate")
def deactivate_canned_answer(request: Request, actor: Admin, answer_id: int) -> Response:
    return _change(
        request,
        actor,
        "canned",
        "answer_deactivated",
        lambda s, ip: admin.set_canned_answer_active(s, actor, answer_id, active=False, ip=ip),
    )


@router.post("/canned/{answer_id}/reactivate")
def reactivate_canned_answer(request: Request, actor: Admin, answer_id: int) -> Response:
    return _change(
        request,
        actor,
        "canned",
        "answer_reactivated",
        lambda s, ip: admin.set_canned_answer_active(s, actor, answer_id, active=True, ip=ip),
    )
