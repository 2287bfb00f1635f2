"""Console case pages: one case with its actions, the stored media behind it, and the officials' inbox."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app_state import sessions_of
from civic import console_accounts as accounts
from civic import console_cases as service
from civic.cases import normalize_case_number
from civic.categories import CATEGORIES
from civic.console_accounts import ConsoleIdentity
from civic.db import session_scope
from civic.districts import DISTRICTS
from civic.errors import CaseNotFound, InvalidTransition
from civic.i18n import category_label, status_label
from civic.media import UnsupportedMedia, is_attachment_id, media_path
from civic.models import Attachment, Case, Conversation, Department, Message
from civic.open311_filing import contact_of
from operator_console.audit import audit, client_ip
from operator_console.auth import CONSOLE_PATH, RowId, User, require_csrf
from operator_console.charts import seoul_map
from operator_console.routes import SECURITY_HEADERS, local_time, render_page
from telephony import transcripts

router = APIRouter(prefix=CONSOLE_PATH, tags=["console"], dependencies=[Depends(require_csrf)])
OptionalText = Annotated[str | None, Form()]
TRANSCRIPT_LIMIT = 500

# Flash messages are chosen by key from these tables, never echoed from the URL.
DONE = {
    "accept": ("접수를 확인했습니다.", "Case accepted."),
    "assign": ("부서에 배정했습니다.", "Case assigned to the department."),
    "merge": ("중복 민원을 병합했습니다.", "Duplicate merged."),
    "start": ("처리를 시작했습니다.", "Work started."),
    "resolve": ("처리 완료로 답변했습니다.", "Case resolved; the answer goes to the citizen."),
    "reject": ("반려했습니다.", "Case rejected."),
    "return": ("120 상담사에게 재배정을 요청했습니다.", "Sent back to the 120 operators."),
    "transcribe": ("녹음 내용을 기록했습니다.", "Transcript saved; the case now uses it."),
    "file": (
        "민원을 접수했습니다. 시민에게 접수번호를 알렸습니다.",
        "Case filed; the citizen has been told its number.",
    ),
}
ERRORS = {
    "transition": ("현재 상태에서는 할 수 없는 작업입니다.", "Not possible in the case's current status."),
    "answer_required": ("답변을 입력하세요.", "An answer is required."),
    "reason_required": ("반려 사유를 입력하세요.", "A reason is required."),
    "responsible_required": ("담당 기관을 입력하세요.", "Say who is responsible instead."),
    "unknown_target": ("병합할 민원 번호를 찾을 수 없습니다.", "No case has that number."),
    "same_case": ("같은 민원에는 병합할 수 없습니다.", "A case cannot be merged into itself."),
    "target_closed": ("종결된 민원에는 병합할 수 없습니다.", "Cannot merge into a closed case."),
    "unknown_department": ("알 수 없는 부서입니다.", "Unknown department."),
    "unknown_category": ("알 수 없는 분야입니다.", "Unknown category."),
    "unknown_district": ("알 수 없는 자치구입니다.", "Unknown district."),
    "category_required": ("분야를 고르세요.", "Choose a category."),
    "district_required": ("자치구를 고르세요.", "Choose a district."),
    "place_required": ("장소를 입력하세요.", "Enter the place."),
    "description_required": ("내용을 입력하세요.", "Describe the problem."),
    "unknown_place_or_category": ("분야나 자치구를 알 수 없습니다.", "Unknown category or district."),
    "transcript_required": ("녹음에서 들은 내용을 입력하세요.", "Type what the caller said."),
}


@dataclass(frozen=True)
class Line:
    """One transcript line for the page: who said it, when, the words (escaped by the template), its media."""

    sender: str
    direction: str
    at: str
    text: str
    attachment_ids: list[str]


def attachment_ids_of(message: Message) -> list[str]:
    """The photo and recording ids a transcript message carries."""
    return [str(i) for i in message.data.get("attachment_ids") or []]


def _case_context(session: Session, user: ConsoleIdentity, number: str) -> dict[str, Any]:
    case = service.visible_case(session, user, number)
    # Officials see only the case's part of a shared conversation, and its media (service.report_messages).
    messages = service.case_transcript(session, user, case, limit=TRANSCRIPT_LIMIT)
    lines = [Line(m.sender, m.direction, local_time(m.created_at), m.text, attachment_ids_of(m)) for m in messages]
    referenced = [i for line in lines for i in line.attachment_ids]
    attachments = service.case_attachments(session, case, referenced)
    merged_into = None
    if case.merged_into_id is not None:
        merged_into = session.get_one(Case, case.merged_into_id).number
    conversation = session.get(Conversation, case.conversation_id) if case.conversation_id else None
    actions = service.available_actions(user, case)
    departments = []
    if {"accept", "assign"} & set(actions):  # the select is for the operators' routing only
        departments = [
            (d.code, d.name_ko) for d in session.execute(select(Department).order_by(Department.code)).scalars()
        ]
    days_left = (case.due_at - service.today()).days
    seoul = seoul_map()
    point = None
    if case.latitude is not None and case.longitude is not None:
        point = seoul.point(case.latitude, case.longitude)
    return {
        "case": case,
        "seoul": seoul,
        "map_point": point,
        "status_label": status_label(case.status, "ko"),
        "category_label": category_label(case.category, "ko"),
        "department": case.department,
        "created_at": local_time(case.created_at),
        "events": [(e, local_time(e.created_at)) for e in case.events],
        "lines": lines,
        "transcript_cut": len(lines) >= TRANSCRIPT_LIMIT,
        "conversation": conversation,
        "photos": [a for a in attachments if a.kind == "photo"],
        "recordings": [a for a in attachments if a.kind == "audio"],
        "to_transcribe": transcripts.waiting(session, case),
        "may_transcribe": user.role != "official",
        "similar": [(s, local_time(s.created_at)) for s in service.similar_for(session, user, case)],
        "transcript_scoped": user.role == "official",
        "followers": service.followers_of(session, case),
        "merged_into": merged_into,
        "actions": actions,
        "departments": departments,
        "categories": [(c, category_label(c, "ko")) for c in CATEGORIES],
        "districts": DISTRICTS,
        "days_left": days_left,
        "overdue": days_left < 0 and service.CaseStatus(case.status) not in service.CLOSED,
    }


@router.get("/cases/{number}", response_class=HTMLResponse)
def case_page(request: Request, user: User, number: str, done: str = "", error: str = "") -> HTMLResponse:
    with session_scope(sessions_of(request)) as session:
        try:
            context = _case_context(session, user, number)
        except CaseNotFound:
            raise HTTPException(404, "no such case") from None
        case, contact = context["case"], {}
        if case.contact_ciphertext is not None and accounts.can(user, "view_contact", department_id=case.department_id):
            contact = contact_of(case)
            # Personal data shown is personal data accessed: logged in the page's own transaction.
            details = {"fields": sorted(contact)}
            accounts.record(
                session, "case.contact_viewed", by=user, target=case.number, details=details, ip=client_ip(request)
            )
        # Rendered inside the session: the template reads the case's department and events.
        return render_page(
            request, "case.html", user=user, done=DONE.get(done), error=ERRORS.get(error), contact=contact, **context
        )


@router.get("/media/{attachment_id}")
def media(request: Request, user: User, attachment_id: str) -> Response:
    """A stored photo or recording, for staff who may see a case it belongs to (404 for everyone else)."""
    if not is_attachment_id(attachment_id):
        raise HTTPException(404, "no such file")
    with session_scope(sessions_of(request)) as session:
        attachment = session.get(Attachment, attachment_id)
        visible = attachment is not None and service.attachment_visible(session, user, attachment)
    if attachment is None or not visible:
        if attachment is not None:
            audit(request, "media.denied", by=user, target=attachment_id)
        raise HTTPException(404, "no such file")
    try:
        path = media_path(attachment)
    except UnsupportedMedia:
        raise HTTPException(404, "no such file") from None
    if not path.is_file():
        raise HTTPException(404, "no such file")
    headers = SECURITY_HEADERS | {"Cache-Control": "private, no-store", "Content-Disposition": "inline"}
    return FileResponse(path, media_type=attachment.content_type, headers=headers)


# ---- actions ------------------------------------------------------------------------------------------------------


def _act(
    request: Request,
    user: ConsoleIdentity,
    number: str,
    action: str,
    work: Callable[[Session], Any],
    details: dict[str, Any],
) -> Response:
    """Runs one action with its audit entry in the same transaction, then goes back to the case page (303)."""
    canonical = normalize_case_number(number)
    if canonical is None:
        raise HTTPException(404, "no such case")
    page = f"{CONSOLE_PATH}/cases/{canonical}"  # canonical: nothing from the URL goes into Location as typed
    try:
        with session_scope(sessions_of(request)) as session:
            case = work(session)
            if action != "merge":  # the merge returns the target; the page to show stays the duplicate's
                page = f"{CONSOLE_PATH}/cases/{case.number}"
            accounts.record(session, f"case.{action}", by=user, target=number, details=details, ip=client_ip(request))
    except CaseNotFound:
        raise HTTPException(404, "no such case") from None
    except service.PermissionDenied:
        audit(request, "case.denied", by=user, target=number, details={"action": action})
        raise HTTPException(403, "you may not do this to this case") from None
    except InvalidTransition:
        return RedirectResponse(f"{page}?error=transition", status_code=303)
    except service.ActionRefused as refused:
        return RedirectResponse(f"{page}?error={refused.code}", status_code=303)
    return RedirectResponse(f"{page}?done={action}", status_code=303)


@router.post("/cases/{number}/accept")
def accept(
    request: Request,
    user: User,
    number: str,
    category: OptionalText = None,
    district: OptionalText = None,
    department: OptionalText = None,
    place: OptionalText = None,
) -> Response:
    fields = {"category": category, "district": district, "department": department, "place": bool(place)}
    return _act(
        request,
        user,
        number,
        "accept",
        lambda s: service.accept(
            s, user, number, category=category, district=district, department_code=department, place=place
        ),
        fields,
    )


@router.post("/cases/{number}/transcribe")
def transcribe(
    request: Request, user: User, number: str, attachment: OptionalText = None, transcript: OptionalText = None
) -> Response:
    """An operator types what a caller said in a recording the 120 line did not believe (audited)."""

    def work(session: Session) -> Case:
        case = service.visible_case(session, user, number)
        if user.role == "official":  # the 120 operators listen to callers; officials work the case
            raise service.PermissionDenied(f"{user.email} may not transcribe {case.number}")
        try:
            transcripts.save_transcript(session, case, attachment or "", transcript or "")
        except transcripts.TranscriptRefused:
            raise service.ActionRefused("transcript_required") from None
        return case

    return _act(request, user, number, "transcribe", work, {"attachment": attachment})


@router.post("/cases/{number}/assign")
def assign(request: Request, user: User, number: str, department: OptionalText = None) -> Response:
    return _act(
        request,
        user,
        number,
        "assign",
        lambda s: service.assign(s, user, number, department_code=department),
        {"department": department},
    )


@router.post("/cases/{number}/merge")
def merge(request: Request, user: User, number: str, into: OptionalText = None) -> Response:
    return _act(
        request, user, number, "merge", lambda s: service.merge(s, user, number, into=into or ""), {"into": into}
    )


@router.post("/cases/{number}/start")
def start(request: Request, user: User, number: str) -> Response:
    return _act(request, user, number, "start", lambda s: service.start(s, user, number), {})


@router.post("/cases/{number}/resolve")
def resolve(request: Request, user: User, number: str, answer: OptionalText = None) -> Response:
    return _act(request, user, number, "resolve", lambda s: service.resolve(s, user, number, answer=answer), {})


@router.post("/cases/{number}/reject")
def reject(
    request: Request, user: User, number: str, reason: OptionalText = None, responsible: OptionalText = None
) -> Response:
    return _act(
        request,
        user,
        number,
        "reject",
        lambda s: service.reject(s, user, number, reason=reason, responsible=responsible),
        {"responsible": responsible},
    )


@router.post("/cases/{number}/return")
def return_case(request: Request, user: User, number: str, reason: OptionalText = None) -> Response:
    return _act(
        request, user, number, "return", lambda s: service.return_to_operators(s, user, number, reason=reason), {}
    )


# ---- the officials' inbox -----------------------------------------------------------------------------------------


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(request: Request, user: User, department: str = "", sort: str = "due") -> HTMLResponse:
    sort = sort if sort in service.INBOX_SORTS else "due"
    with session_scope(sessions_of(request)) as session:
        try:
            chosen, rows = service.inbox(session, user, department_code=department or None, sort=sort)
        except service.ActionRefused:
            raise HTTPException(404, "no such department") from None
        departments = []
        if user.role != "official":
            departments = [
                (d.code, d.name_ko) for d in session.execute(select(Department).order_by(Department.code)).scalars()
            ]
        labels = {
            "status": {r.number: status_label(r.status, "ko") for r in rows},
            "category": {r.number: category_label(r.category, "ko") for r in rows},
        }
        return render_page(
            request,
            "inbox.html",
            user=user,
            department=chosen,
            rows=rows,
            labels=labels,
            departments=departments,
            limit=service.INBOX_LIMIT,
            sort=sort,
        )


# ---- filing for a citizen -----------------------------------------------------------------------------------------


@router.get("/conversations/{conversation_id}/file", response_class=HTMLResponse)
def filing_page(request: Request, user: User, conversation_id: RowId, error: str = "") -> HTMLResponse:
    with session_scope(sessions_of(request)) as session:
        try:
            form = service.filing_form(session, user, conversation_id)
        except CaseNotFound:
            raise HTTPException(404, "no such conversation") from None
        except service.PermissionDenied:
            raise HTTPException(403, "operators file cases") from None
        messages = service.transcript_tail(session, conversation_id, limit=TRANSCRIPT_LIMIT)
    return render_page(
        request,
        "file.html",
        user=user,
        form=form,
        messages=messages,
        categories=[(code, category_label(code, "ko")) for code in CATEGORIES],
        districts=DISTRICTS,
        # One key per form shown: a double click or a resubmitted form files one case.
        form_key=secrets.token_hex(16),
        error=ERRORS.get(error),
    )


@router.post("/conversations/{conversation_id}/file")
def file_for_citizen(
    request: Request,
    user: User,
    conversation_id: RowId,
    form_key: Annotated[str, Form(min_length=16, max_length=64)],
    category: OptionalText = None,
    district: OptionalText = None,
    place: OptionalText = None,
    description: OptionalText = None,
) -> Response:
    form_page = f"{CONSOLE_PATH}/conversations/{conversation_id}/file"
    try:
        with session_scope(sessions_of(request)) as session:
            case = service.file_for_citizen(
                session,
                user,
                conversation_id,
                category=category,
                district=district,
                place=place,
                description=description,
                idempotency_key=form_key,
            )
            accounts.record(
                session,
                "case.file",
                by=user,
                target=case.number,
                details={"conversation": conversation_id},
                ip=client_ip(request),
            )
            number = case.number
    except CaseNotFound:
        raise HTTPException(404, "no such conversation") from None
    except service.PermissionDenied:
        audit(request, "case.denied", by=user, target=str(conversation_id), details={"action": "file"})
        raise HTTPException(403, "operators file cases") from None
    except service.ActionRefused as refused:
        return RedirectResponse(f"{form_page}?error={refused.code}", status_code=303)
    return RedirectResponse(f"{CONSOLE_PATH}/cases/{number}?done=file", status_code=303)
