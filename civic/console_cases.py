"""Console work on one case: who may see it, the operators' and officials' actions, similar cases, the inbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from civic.cases import case_numbers_in, file_case, get_case
from civic.categories import check_category, due_date_for
from civic.console_accounts import ConsoleIdentity, can
from civic.conversations import end_handoff
from civic.db import utcnow
from civic.districts import check_district
from civic.duplicates import add_follower, bounding_box
from civic.errors import CaseNotFound, CivicError, UnknownCategory, UnknownDistrict
from civic.i18n import language
from civic.models import Attachment, Case, CaseFollower, Conversation, Department, Message, ReportDraft
from civic.polls import distance_m
from civic.routing import department_id_for
from civic.settings import get_settings
from civic.workflow import ALLOWED, CaseStatus, notify_citizen, transition

S = CaseStatus
CLOSED = frozenset({S.RESOLVED, S.REJECTED, S.WITHDRAWN})
OPEN_FOR_OFFICIALS = (S.ASSIGNED.value, S.IN_PROGRESS.value)
MAX_TEXT_CHARS = 2000
SIMILAR_RADIUS_M = 100.0
SIMILAR_DAYS = 7
SIMILAR_LIMIT = 20
INBOX_LIMIT = 100
# An official sees the part of a shared conversation that is the case's (report_messages): the report starts at
# most this long before its filing, and after it at most this many newer messages are scanned for its number.
REPORT_WINDOW = timedelta(hours=24)
LATER_MESSAGES_SCANNED = 2000
REPORT_MESSAGES_CHECKED = 500  # as many as the case page shows
# Said to the citizen after a rejection: who is responsible instead, in the case's language.
RESPONSIBLE_LABEL = {"ko": "담당 기관", "en": "Responsible instead", "ja": "担当機関"}


class PermissionDenied(CivicError):
    """The console user's role or department may not do this to the case."""


class ActionRefused(CivicError, ValueError):
    """The action is incomplete or makes no sense (e.g. resolve without an answer); `code` names why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# Console action → (permission in civic.console_accounts, status it moves the case to).
ACTIONS: dict[str, tuple[str, CaseStatus]] = {
    "accept": ("accept_case", S.ACCEPTED),
    "assign": ("assign_case", S.ASSIGNED),
    "merge": ("merge_case", S.REJECTED),
    "start": ("start_case", S.IN_PROGRESS),
    "resolve": ("resolve_case", S.RESOLVED),
    "reject": ("reject_case", S.REJECTED),
    "return": ("return_case", S.ACCEPTED),
}


def _actor(user: ConsoleIdentity) -> str:
    return user.email[:64]  # case_events.actor is 64 characters


def visible_case(session: Session, user: ConsoleIdentity, number: str) -> Case:
    """The case if `user` may see it; CaseNotFound otherwise, so another department's case looks absent."""
    case = get_case(session, number)
    if case is None or not can(user, "view_case", department_id=case.department_id):
        raise CaseNotFound(number)
    return case


def _case_for(session: Session, user: ConsoleIdentity, number: str, action: str) -> Case:
    case = get_case(session, number)
    if case is None:
        raise CaseNotFound(number)
    if not can(user, ACTIONS[action][0], department_id=case.department_id):
        raise PermissionDenied(f"{user.email} may not {action} {case.number}")
    return case


def available_actions(user: ConsoleIdentity, case: Case) -> list[str]:
    """The actions the case page offers `user`: allowed by role and department, and by the case's status."""
    current = CaseStatus(case.status)
    offered = []
    for action, (permission, target) in ACTIONS.items():
        if not can(user, permission, department_id=case.department_id) or target not in ALLOWED[current]:
            continue
        if action == "return" and current != S.ASSIGNED:  # accepted is also reached from received and reopened
            continue
        if action == "accept" and current == S.ASSIGNED:  # that move is the officials' "return"
            continue
        offered.append(action)
    return offered


def _required(value: str | None, code: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ActionRefused(code)
    return text[:MAX_TEXT_CHARS]


# ---- the 120 operators ---------------------------------------------------------------------------------------------


def _correct(
    session: Session,
    case: Case,
    *,
    category: str | None,
    district: str | None,
    department_code: str | None,
    place: str | None,
) -> list[str]:
    # A new category or district re-routes the department unless one is chosen explicitly; a new category
    # also brings its own deadline, counted from the filing. Returns what changed, for the event's note.
    changes: list[str] = []
    try:
        new_category = check_category(category) if category else case.category
    except UnknownCategory as exc:
        raise ActionRefused("unknown_category") from exc
    try:
        new_district = check_district(district) if district else case.district
    except UnknownDistrict as exc:
        raise ActionRefused("unknown_district") from exc
    department_id = case.department_id
    if department_code:
        department = session.execute(select(Department).where(Department.code == department_code)).scalar_one_or_none()
        if department is None:
            raise ActionRefused("unknown_department")
        department_id = department.id
    elif (new_category, new_district) != (case.category, case.district):
        department_id = department_id_for(session, category=new_category, district=new_district)
    if new_category != case.category:
        changes.append(f"분야 {case.category} → {new_category}")
        case.category = new_category
        case.due_at = due_date_for(session, new_category, case.created_at)
    if new_district != case.district:
        changes.append(f"자치구 {case.district} → {new_district}")
        case.district = new_district
        case.dong = None  # the old dong belongs to the old district
    if place and place.strip() and place.strip() != case.place:
        changes.append("장소 수정")
        case.place = place.strip()[:MAX_TEXT_CHARS]
    if department_id != case.department_id:
        old, new = session.get(Department, case.department_id), session.get(Department, department_id)
        changes.append(f"부서 {old.code if old else '?'} → {new.code if new else '?'}")
        case.department_id = department_id
    # Flushed before the event, so the citizen's notice names the corrected category, district and department.
    session.flush()
    return changes


def accept(
    session: Session,
    user: ConsoleIdentity,
    number: str,
    *,
    category: str | None = None,
    district: str | None = None,
    department_code: str | None = None,
    place: str | None = None,
) -> Case:
    """Confirm a case (→ accepted), correcting category, district, place or department on the way."""
    case = _case_for(session, user, number, "accept")
    if CaseStatus(case.status) == S.ASSIGNED:
        raise ActionRefused("transition")  # an assigned case comes back only by the officials' "return"
    if S.ACCEPTED not in ALLOWED[CaseStatus(case.status)]:
        raise ActionRefused("transition")  # checked before correcting anything
    changes = _correct(
        session, case, category=category, district=district, department_code=department_code, place=place
    )
    transition(session, case=case, to=S.ACCEPTED, actor=_actor(user), note="; ".join(changes) or None)
    return case


def assign(
    session: Session,
    user: ConsoleIdentity,
    number: str,
    *,
    department_code: str | None = None,
    category: str | None = None,
    district: str | None = None,
) -> Case:
    """Hand an accepted case to its department (→ assigned), or to another one (a case the officials sent back)."""
    case = _case_for(session, user, number, "assign")
    if S.ASSIGNED not in ALLOWED[CaseStatus(case.status)]:
        raise ActionRefused("transition")
    changes = _correct(session, case, category=category, district=district, department_code=department_code, place=None)
    transition(session, case=case, to=S.ASSIGNED, actor=_actor(user), note="; ".join(changes) or None)
    return case


def merge(session: Session, user: ConsoleIdentity, number: str, *, into: str) -> Case:
    """Close `number` as a duplicate of `into`; the duplicate's citizen then follows `into`. Returns the target.

    The duplicate is rejected with a note naming the target, so its citizen learns which case to follow,
    and keeps merged_into_id for the record. Its conversation, and whoever followed the duplicate,
    become followers of the target and hear of its later changes.
    """
    duplicate = _case_for(session, user, number, "merge")
    target = get_case(session, into)
    if target is None:
        raise ActionRefused("unknown_target")
    if target.id == duplicate.id:
        raise ActionRefused("same_case")
    if target.merged_into_id is not None or CaseStatus(target.status) in (S.REJECTED, S.WITHDRAWN):
        raise ActionRefused("target_closed")  # following a closed case would tell the citizen nothing more
    transition(session, case=duplicate, to=S.REJECTED, actor=_actor(user), note=f"중복 민원: {target.number}로 병합")
    duplicate.merged_into_id = target.id
    followers = [(duplicate.conversation_id, duplicate.language)] if duplicate.conversation_id else []
    followers += [
        (row.conversation_id, row.language)
        for row in session.execute(select(CaseFollower).where(CaseFollower.case_id == duplicate.id)).scalars()
    ]
    for conversation_id, lang in followers:
        add_follower(session, case=target, conversation_id=conversation_id, language=lang)
    return target


# ---- the department's officials ------------------------------------------------------------------------------------


def start(session: Session, user: ConsoleIdentity, number: str) -> Case:
    """The department starts working the case (→ in_progress)."""
    case = _case_for(session, user, number, "start")
    transition(session, case=case, to=S.IN_PROGRESS, actor=_actor(user))
    return case


def resolve(session: Session, user: ConsoleIdentity, number: str, *, answer: str | None) -> Case:
    """Close the case as done (→ resolved) with the public answer the citizen is sent."""
    case = _case_for(session, user, number, "resolve")
    text = _required(answer, "answer_required")
    transition(session, case=case, to=S.RESOLVED, actor=_actor(user), note=text)
    return case


def reject(
    session: Session, user: ConsoleIdentity, number: str, *, reason: str | None, responsible: str | None
) -> Case:
    """Close the case as not the city's to fix (→ rejected), saying why and who is responsible instead."""
    case = _case_for(session, user, number, "reject")
    why = _required(reason, "reason_required")
    who = _required(responsible, "responsible_required")
    note = f"{why}\n{RESPONSIBLE_LABEL[language(case.language)]}: {who}"
    transition(session, case=case, to=S.REJECTED, actor=_actor(user), note=note)
    return case


def return_to_operators(session: Session, user: ConsoleIdentity, number: str, *, reason: str | None = None) -> Case:
    """Send an assigned case back to the 120 operators for re-routing (→ accepted).

    The citizen is not told: the "checked by a 120 operator" notice of `accepted` would be wrong here,
    and they hear of the case again when it is assigned to the right department.
    """
    case = _case_for(session, user, number, "return")
    if CaseStatus(case.status) != S.ASSIGNED:
        raise ActionRefused("transition")
    why = (reason or "").strip()[:MAX_TEXT_CHARS]
    note = f"재배정 요청: {why}" if why else "재배정 요청"
    transition(session, case=case, to=S.ACCEPTED, actor=_actor(user), note=note, notify=False)
    return case


# ---- what the case page shows besides the case ---------------------------------------------------------------------


@dataclass(frozen=True)
class SimilarCase:
    """An open case of the same category close by: within the radius (distance_m) or in the same dong."""

    number: str
    status: str
    place: str
    dong: str | None
    distance_m: float | None
    created_at: datetime


def similar_open_cases(
    session: Session, case: Case, *, now: datetime | None = None, department_id: int | None = None
) -> list[SimilarCase]:
    """Open cases of the same category from the last 7 days within 100 m or in the same dong, nearest first.

    With `department_id` (an official's) only that department's cases: another department's are not theirs to see.
    """
    since = (now or utcnow()) - timedelta(days=SIMILAR_DAYS)
    near = []
    if case.dong:
        near.append(and_(Case.district == case.district, Case.dong == case.dong))  # dong names repeat across gu
    if case.latitude is not None and case.longitude is not None:
        lat_min, lat_max, lon_min, lon_max = bounding_box(case.latitude, case.longitude, SIMILAR_RADIUS_M)
        near.append(and_(Case.latitude.between(lat_min, lat_max), Case.longitude.between(lon_min, lon_max)))
    if not near:
        return []
    query = (
        select(Case)
        .where(
            Case.category == case.category,
            Case.created_at >= since,
            Case.id != case.id,
            Case.status.not_in([s.value for s in CLOSED]),
            or_(*near),
        )
        .order_by(Case.created_at.desc())
        .limit(SIMILAR_LIMIT * 5)
    )
    if department_id is not None:
        query = query.where(Case.department_id == department_id)
    found = []
    for other in session.execute(query).scalars():
        distance = None
        if None not in (case.latitude, case.longitude, other.latitude, other.longitude):
            distance = distance_m(case.latitude, case.longitude, other.latitude, other.longitude)  # type: ignore[arg-type]
        same_dong = bool(case.dong) and (other.district, other.dong) == (case.district, case.dong)
        if same_dong or (distance is not None and distance <= SIMILAR_RADIUS_M):
            found.append(SimilarCase(other.number, other.status, other.place, other.dong, distance, other.created_at))
    found.sort(key=lambda s: (s.distance_m is None, s.distance_m or 0.0))
    return found[:SIMILAR_LIMIT]


def similar_for(session: Session, user: ConsoleIdentity, case: Case) -> list[SimilarCase]:
    """The similar open cases `user` may see: an official only their own department's."""
    department_id = user.department_id if user.role == "official" else None
    return similar_open_cases(session, case, department_id=department_id)


def transcript_tail(session: Session, conversation_id: int, *, limit: int) -> list[Message]:
    """The newest `limit` messages of a conversation, oldest first (a Telegram chat may span many reports)."""
    query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc()).limit(limit)
    return list(reversed(session.execute(query).scalars().all()))


def _names_only(message: Message, number: str) -> bool | None:
    """True if every case number the message names is `number`, False if it names another, None if it names none."""
    named = case_numbers_in(message.text or "")
    if not named:
        return None
    return named == {number}


def report_messages(session: Session, case: Case, *, limit: int) -> list[Message]:
    """The part of the case's conversation that belongs to the case, oldest first (what an official is shown).

    A conversation (a Telegram chat, a web session) can carry several reports, to several departments. The
    case's part is the report filed as it: the messages after the conversation's previous filing (and at most
    REPORT_WINDOW before this one) up to this filing; then, after the filing, the messages that name this case
    by number (the bot's confirmation, the citizen's questions about it). A message that names any other case
    (a status answer, the list of "my reports") is left out wherever it falls.
    """
    if case.conversation_id is None:
        return []
    previous = session.execute(
        select(func.max(Case.created_at)).where(
            Case.conversation_id == case.conversation_id, Case.created_at < case.created_at, Case.id != case.id
        )
    ).scalar_one_or_none()
    start = case.created_at - REPORT_WINDOW
    if previous is not None and previous > start:
        start = previous
    in_report = (
        select(Message)
        .where(
            Message.conversation_id == case.conversation_id,
            Message.created_at > start,
            Message.created_at <= case.created_at,
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    report = [m for m in session.execute(in_report).scalars() if _names_only(m, case.number) is not False]
    # Every written form of the number ("SR-2026-000123", "sr2026 123") keeps the year's four digits together.
    year = case.number.split("-")[1]
    later = (
        select(Message)
        .where(
            Message.conversation_id == case.conversation_id,
            Message.created_at > case.created_at,
            Message.text.contains(year, autoescape=True),
        )
        .order_by(Message.id.desc())
        .limit(LATER_MESSAGES_SCANNED)
    )
    naming = [m for m in session.execute(later).scalars() if _names_only(m, case.number)]
    messages = sorted({m.id: m for m in report + naming}.values(), key=lambda m: m.id)
    return messages[-limit:]


def case_transcript(session: Session, user: ConsoleIdentity, case: Case, *, limit: int) -> list[Message]:
    """What the case page shows `user` of the transcript: the whole conversation, or an official the case's part."""
    if case.conversation_id is None:
        return []
    if user.role != "official":
        return transcript_tail(session, case.conversation_id, limit=limit)
    return report_messages(session, case, limit=limit)


def _referenced(messages: list[Message]) -> set[str]:
    return {str(i) for m in messages for i in (m.data or {}).get("attachment_ids") or []}


def case_attachments(session: Session, case: Case, referenced: list[str]) -> list[Attachment]:
    """The case's photos and recordings, and those of its conversation its transcript refers to (a caller's turns)."""
    ids = set(case.attachments or [])
    condition = Attachment.case_id == case.id
    if ids:
        condition = or_(condition, Attachment.id.in_(sorted(ids)))
    if referenced and case.conversation_id is not None:
        # Only the conversation's own files: a message's ids were checked against it when stored, and are again here.
        shown = and_(Attachment.id.in_(sorted(set(referenced))), Attachment.conversation_id == case.conversation_id)
        condition = or_(condition, shown)
    return list(session.execute(select(Attachment).where(condition).order_by(Attachment.created_at)).scalars())


def official_may_see_file(session: Session, case: Case, attachment_id: str) -> bool:
    """Whether a file belongs to the case as an official sees it: linked to it, or sent in its part of the chat."""
    if attachment_id in (case.attachments or []):
        return True
    return attachment_id in _referenced(report_messages(session, case, limit=REPORT_MESSAGES_CHECKED))


def attachment_visible(session: Session, user: ConsoleIdentity, attachment: Attachment) -> bool:
    """Whether `user` may see a stored file: operators and admins any; an official one of their department's cases.

    For an official the file must belong to one of their department's cases as the case page shows it: linked
    to the case, or sent in the case's part of the conversation (see report_messages). Having some case in the
    same conversation is not enough: a chat can carry another department's reports and their photos.
    """
    if user.role != "official":
        return True  # operators and admins see every case
    if attachment.case_id is not None:
        case = session.get(Case, attachment.case_id)
        return case is not None and can(user, "view_case", department_id=case.department_id)
    if attachment.conversation_id is None:
        return False
    mine = select(Case).where(
        Case.conversation_id == attachment.conversation_id, Case.department_id == user.department_id
    )
    return any(official_may_see_file(session, case, attachment.id) for case in session.execute(mine).scalars())


def followers_of(session: Session, case: Case) -> int:
    """How many other conversations follow the case."""
    return len(session.execute(select(CaseFollower.id).where(CaseFollower.case_id == case.id)).all())


# ---- the officials' inbox ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxRow:
    """One open case of a department, with the days left before its due date (negative: overdue)."""

    number: str
    status: str
    category: str
    district: str
    place: str
    department: str
    due_at: date
    days_left: int
    followers: int = 0  # other citizens told of it: "+3" in the inbox

    @property
    def overdue(self) -> bool:
        return self.days_left < 0


def today() -> date:
    return utcnow().astimezone(ZoneInfo(get_settings().timezone)).date()


INBOX_SORTS = ("due", "followers")


def inbox(
    session: Session,
    user: ConsoleIdentity,
    *,
    department_code: str | None = None,
    on: date | None = None,
    sort: str = "due",
) -> tuple[Department | None, list[InboxRow]]:
    """Open (assigned, in progress) cases by due date, at most 100: the official's department, or any one asked for.

    Operators and admins see every department's when they name none. `sort="followers"` puts the cases most
    citizens follow first (by due date among equals).
    """
    if sort not in INBOX_SORTS:
        raise ActionRefused("unknown_sort")
    department: Department | None = None
    if user.role == "official":
        department = session.get(Department, user.department_id)  # an official's inbox is always their own
    elif department_code:
        department = session.execute(select(Department).where(Department.code == department_code)).scalar_one_or_none()
        if department is None:
            raise ActionRefused("unknown_department")
    followers = (
        select(func.count(CaseFollower.id)).where(CaseFollower.case_id == Case.id).correlate(Case).scalar_subquery()
    )
    order = (followers.desc(), Case.due_at, Case.id) if sort == "followers" else (Case.due_at, Case.id)
    query = (
        select(Case, followers)
        .options(joinedload(Case.department))
        .where(Case.status.in_(OPEN_FOR_OFFICIALS))
        .order_by(*order)
        .limit(INBOX_LIMIT)
    )
    if department is not None:
        query = query.where(Case.department_id == department.id)  # ix_cases_department_status_due
    on = on or today()
    rows = [
        InboxRow(
            number=case.number,
            status=case.status,
            category=case.category,
            district=case.district,
            place=case.place,
            department=case.department.name_ko,
            due_at=case.due_at,
            days_left=(case.due_at - on).days,
            followers=count,
        )
        for case, count in session.execute(query).all()
    ]
    return department, rows


# ---- filing for a citizen ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilingForm:
    """What an operator files for a citizen who asked for a human, prefilled from the bot's draft if any."""

    conversation_id: int
    channel: str
    language: str
    category: str
    district: str
    place: str
    description: str


def filing_form(session: Session, user: ConsoleIdentity, conversation_id: int) -> FilingForm:
    """The form for filing on behalf of the citizen of `conversation_id` (a caller in the queue, a chat)."""
    if not can(user, "file_case"):
        raise PermissionDenied("file_case")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise CaseNotFound(str(conversation_id))
    draft = session.execute(
        select(ReportDraft).where(ReportDraft.conversation_id == conversation_id)
    ).scalar_one_or_none()
    slots = dict(draft.slots) if draft is not None else {}
    return FilingForm(
        conversation_id=conversation.id,
        channel=conversation.channel,
        language=conversation.language,
        category=str(slots.get("category") or ""),
        district=str(slots.get("district") or ""),
        place=str(slots.get("place") or ""),
        description=str(slots.get("description") or ""),
    )


def file_for_citizen(
    session: Session,
    user: ConsoleIdentity,
    conversation_id: int,
    *,
    category: str | None,
    district: str | None,
    place: str | None,
    description: str | None,
    idempotency_key: str,
) -> Case:
    """Files the case an operator took down (→ received), closes the citizen's draft and hand-off request.

    The citizen is told the number on their channel: a caller by SMS, a chat in the chat.
    `idempotency_key` (the form's one-time key) makes a double submission one case.
    """
    form = filing_form(session, user, conversation_id)
    try:
        category_code, gu = (
            check_category(_required(category, "category_required")),
            check_district(_required(district, "district_required")),
        )
    except (UnknownCategory, UnknownDistrict):
        raise ActionRefused("unknown_place_or_category") from None
    case = file_case(
        session,
        category=category_code,
        district=gu,
        place=_required(place, "place_required"),
        description=_required(description, "description_required"),
        channel=form.channel,
        language=language(form.language),
        conversation_id=form.conversation_id,
        idempotency_key=f"console:{idempotency_key}",
        actor=_actor(user),
    )
    conversation = session.get(Conversation, form.conversation_id)
    if conversation is not None and conversation.handoff_requested_at is not None:
        end_handoff(session, conversation=conversation)
    draft = session.execute(
        select(ReportDraft).where(ReportDraft.conversation_id == form.conversation_id)
    ).scalar_one_or_none()
    if draft is not None and draft.status == "open":
        draft.status, draft.case_id, draft.updated_at = "filed", case.id, utcnow()
    # The bot never answered this filing, so the citizen is told on their channel whatever it is.
    notify_citizen(session, case=case, event=case.events[0])
    return case
