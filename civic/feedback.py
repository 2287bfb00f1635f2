"""The answer to "fixed?": not yet reopens the case (twice to its department, then to a 120 operator), fixed is rated,
no answer in 7 days closes it as it is. Every step is a case event; each step returns what to tell the citizen (a
Told: the name of the text and its values), which the chat says by domain response and SMS by civic.fixed_question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from civic import inbox
from civic.cases import link_attachments
from civic.categories import due_date_for
from civic.db import utcnow
from civic.fixed_question import ASKED, reply
from civic.i18n import department_name, format_date
from civic.models import Case, CaseEvent, CaseFeedback, Citizen, Conversation, Department
from civic.phones import normalize_phone, phone_blind_index
from civic.sms import queue_sms_to_citizen
from civic.workflow import CaseStatus, log_case_event, transition

FEEDBACK_EVENT = "feedback"  # the event log's mark of an answer to "fixed?", not a status
AWAITING_NOTE = "awaiting_note"  # "아직이에요": what is still wrong?
AWAITING_RATING = "awaiting_rating"  # "해결됐어요": 1–5 and a comment
REOPENED = "reopened"
RATED = "rated"
CLOSED = "closed"  # unanswered for 7 days, or overtaken by another answer
OPEN_STATES = (ASKED, AWAITING_NOTE, AWAITING_RATING)
ANSWER_DAYS = 7
MAX_REOPENINGS = 2  # the third "not fixed" goes to a 120 operator instead of the department


class Told(NamedTuple):
    """What to tell the citizen: a key of civic.fixed_question.REPLIES (utter_feedback_<kind> in the chat)."""

    kind: str
    values: dict[str, str]


def parse_rating(text: str) -> tuple[int, str] | None:
    """ "4", "5점 친절했어요" → (rating, comment); None when the text starts with no 1–5."""
    match = _RATING.match(text)
    return (int(match.group(1)), match.group(2).strip()) if match else None


_RATING = re.compile(r"^\s*([1-5])(?!\d)[\s.,:점]*(.*)$", re.DOTALL)


def pending(session: Session, *, conversation_ids: list[int], number: str | None = None) -> CaseFeedback | None:
    """The newest question still open in these conversations, of case `number` when given."""
    query = (
        select(CaseFeedback)
        .where(CaseFeedback.conversation_id.in_(conversation_ids), CaseFeedback.state.in_(OPEN_STATES))
        .order_by(CaseFeedback.asked_at.desc(), CaseFeedback.id.desc())
        .limit(1)
    )
    if number is not None:
        query = query.join(Case, Case.id == CaseFeedback.case_id).where(Case.number == number)
    return session.execute(query).scalar_one_or_none()


def _current_or_closed(session: Session, feedback: CaseFeedback, case: Case) -> bool:
    """Whether the resolution asked about is still the case's state; if not (another citizen reopened it), the
    question is closed."""
    latest = session.execute(
        select(func.max(CaseEvent.id)).where(CaseEvent.case_id == case.id, CaseEvent.to_status == CaseStatus.RESOLVED)
    ).scalar_one()
    if case.status == CaseStatus.RESOLVED and latest == feedback.event_id:
        return True
    feedback.state = CLOSED
    return False


def _note_event(session: Session, case: Case, note: str, actor: str = "citizen") -> None:
    """A step that changes no status (an answer, a rating, the closing) still goes on the case's event log.

    Its to_status is FEEDBACK_EVENT, never the case's status: what reads the latest note of the status as the
    official's public answer (civic.cases.last_public_note, Open311) must not find a citizen's comment there.
    """
    log_case_event(session, case=case, from_status=case.status, to_status=FEEDBACK_EVENT, actor=actor, note=note)


def answer(session: Session, feedback: CaseFeedback, *, fixed: bool) -> Told:
    """The answer "해결됐어요" (then the rating is asked) or "아직이에요" (then what is still wrong)."""
    case = session.get_one(Case, feedback.case_id)
    if not _current_or_closed(session, feedback, case):
        return Told("already_handled", {"number": case.number})
    feedback.state, feedback.answered_at = (AWAITING_RATING if fixed else AWAITING_NOTE), utcnow()
    _note_event(session, case, "시민 확인: 해결됨" if fixed else "시민 확인: 아직 해결되지 않음")
    return Told("ask_rating" if fixed else "ask_note", {"number": case.number})


def reopen(session: Session, feedback: CaseFeedback, *, note: str, attachment_ids: Sequence[str] = ()) -> Told:
    """What is still wrong reopens the case: to the same department with a new due date, after two reopenings to
    the 120 operators (it stays `reopened`, in their queue)."""
    case = session.get_one(Case, feedback.case_id)
    if not _current_or_closed(session, feedback, case):
        return Told("already_handled", {"number": case.number})
    feedback.state, feedback.comment = REOPENED, note[:2000]
    link_attachments(session, case=case, attachment_ids=attachment_ids)  # the photo of what is still wrong
    # The citizen answering hears it in their reply; the notice would tell them twice.
    note_text = f"아직 해결되지 않음: {note[:2000]}"
    transition(session, case=case, to=CaseStatus.REOPENED, actor="citizen", note=note_text, notify=False)
    reopenings = session.execute(
        select(func.count()).where(CaseEvent.case_id == case.id, CaseEvent.to_status == CaseStatus.REOPENED)
    ).scalar_one()
    if reopenings > MAX_REOPENINGS:
        _note_event(session, case, f"{reopenings}번째 재접수: 120 상담사 확인", actor="system")
        return Told("to_operator", {"number": case.number})
    now = utcnow()
    case.due_at = due_date_for(session, case.category, now)
    transition(session, case=case, to=CaseStatus.ASSIGNED, actor="system", note="같은 부서에 다시 배정", notify=False)
    department = session.get_one(Department, case.department_id)
    lang = feedback.language
    due = format_date(case.due_at, lang)
    return Told("reopened", {"number": case.number, "department": department_name(department, lang), "due": due})


def rate(session: Session, feedback: CaseFeedback, *, rating: int, comment: str | None = None) -> Told:
    """The 1–5 rating of a fixed case and an optional comment."""
    case = session.get_one(Case, feedback.case_id)
    if not 1 <= rating <= 5:
        raise ValueError(f"rating {rating} is not 1–5")
    comment = (comment or "").strip()[:2000] or None
    feedback.state, feedback.rating, feedback.comment = RATED, rating, comment
    _note_event(session, case, f"만족도 {rating}/5" + (f": {comment}" if comment else ""))
    return Told("thanks", {"number": case.number})


def close_unanswered(session: Session, *, now: datetime | None = None) -> int:
    """Questions unanswered for 7 days are closed, and each case still resolved as it is; how many were closed."""
    cutoff = (now or utcnow()) - timedelta(days=ANSWER_DAYS)
    expired = (
        session.execute(select(CaseFeedback).where(CaseFeedback.state.in_(OPEN_STATES), CaseFeedback.asked_at < cutoff))
        .scalars()
        .all()
    )
    closed_cases: set[int] = set()
    for feedback in expired:
        feedback.state = CLOSED
        case = session.get_one(Case, feedback.case_id)
        if case.id not in closed_cases and case.status == CaseStatus.RESOLVED:
            closed_cases.add(case.id)
            _note_event(session, case, f"{ANSWER_DAYS}일 동안 답이 없어 그대로 종결", actor="system")
    session.flush()
    return len(expired)


def answer_by_sms(session: Session, *, phone: str, body: str, message_key: str) -> bool:
    """A caller's SMS to the 120 number: "1"/"2" to the question, then the rating or what is still wrong.

    The reply goes back by SMS through the outbox. False when no question is open for that phone; a message
    already handled (`message_key`, Twilio's MessageSid) is not handled again.
    """
    try:
        index = phone_blind_index(normalize_phone(phone))
    except ValueError:
        return False
    citizen = session.execute(select(Citizen).where(Citizen.phone_index == index)).scalar_one_or_none()
    if citizen is None:
        return False
    calls = select(Conversation.id).where(Conversation.citizen_id == citizen.id, Conversation.channel == "phone")
    feedback = pending(session, conversation_ids=list(session.execute(calls).scalars()))
    if feedback is None:
        return False
    if not inbox.accept_many(session, channel="sms", updates=[(message_key, {})])[0]:
        return True  # Twilio's retry of a message already answered
    inbox.mark_handled(session, channel="sms", update_key=message_key)
    text = body.strip()
    number = session.get_one(Case, feedback.case_id).number
    if feedback.state == ASKED:
        if text[:1] in ("1", "2") and not text[1:2].isdigit():
            told = answer(session, feedback, fixed=text[0] == "1")
        else:
            told = Told("answer_hint", {"number": number})
    elif feedback.state == AWAITING_RATING:
        rated = parse_rating(text)
        told = (
            rate(session, feedback, rating=rated[0], comment=rated[1])
            if rated
            else Told("rating_hint", {"number": number})
        )
    else:
        told = reopen(session, feedback, note=text)
    queue_sms_to_citizen(
        session,
        conversation_id=feedback.conversation_id,
        citizen=citizen,
        text=reply(told.kind, told.values, feedback.language),
        kind="case_feedback",
        dedupe_key=f"sms-reply:{message_key}",
    )
    return True
