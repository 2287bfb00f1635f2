"""The "fixed?" question after a resolution: asked with the answer, reopened, rated, closed after 7 days."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from civic import console_queue, feedback
from civic.cases import last_public_note
from civic.conversations import get_or_create_conversation
from civic.db import utcnow
from civic.duplicates import follow_case
from civic.fixed_question import reply
from civic.i18n import format_date
from civic.models import Case, CaseEvent, CaseFeedback, Conversation, OutboxMessage
from civic.phones import get_or_create_citizen
from civic.workflow import CaseStatus
from tests import case_paths

MakeCase = Callable[..., Case]
MakeConversation = Callable[..., Conversation]
S = CaseStatus


def resolve(session: Session, case: Case, answer: str = "불법 주차 차량을 견인했습니다.") -> None:
    case_paths.resolve(session, case, answer)


def question_of(session: Session, case: Case, conversation_id: int) -> CaseFeedback:
    return session.execute(
        select(CaseFeedback)
        .where(CaseFeedback.case_id == case.id, CaseFeedback.conversation_id == conversation_id)
        .order_by(CaseFeedback.id.desc())
        .limit(1)
    ).scalar_one()


def notices(session: Session, conversation_id: int | None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id).order_by(OutboxMessage.id)
    return list(session.execute(query).scalars())


def notes(session: Session, case: Case) -> list[tuple[str, str | None]]:
    events = session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)).scalars()
    return [(e.to_status, e.note) for e in events]


def test_the_answer_asks_the_filer_and_followers_if_it_is_fixed(
    session: Session, make_case: MakeCase, make_conversation: MakeConversation
) -> None:
    case = make_case(channel="web")
    me_too = make_conversation(channel="telegram", language="ja")
    follow_case(session, number=case.number, conversation_id=me_too.id, language="ja")
    resolve(session, case)
    filer = notices(session, case.conversation_id)[-1]
    assert filer.text.endswith("답변: 불법 주차 차량을 견인했습니다.\n문제가 해결됐나요?")
    assert [b["title"] for b in filer.data["buttons"]] == ["해결됐어요", "아직이에요"]
    assert filer.data["buttons"][0]["payload"] == f'/case_fixed{{"case_id":"{case.number}","language":"ko"}}'
    assert filer.data["transcript_id"]  # on the transcript with its buttons: the web chat shows it, a tap is taken
    follower = notices(session, me_too.id)[-1]
    assert follower.text.endswith("問題は解決しましたか？")
    assert [b["title"] for b in follower.data["buttons"]] == ["解決しました", "まだです"]
    assert question_of(session, case, me_too.id).state == "asked"


def test_not_fixed_reopens_to_the_same_department_with_a_new_due_date(session: Session, make_case: MakeCase) -> None:
    case = make_case(channel="web")
    department = case.department_id
    resolve(session, case)
    case.due_at = case.due_at - timedelta(days=30)  # long past, as when it was first due
    question = question_of(session, case, case.conversation_id)
    assert feedback.answer(session, question, fixed=False).kind == "ask_note"
    told = feedback.reopen(session, question, note="차가 다시 서 있어요")
    assert case.status == S.ASSIGNED and case.department_id == department
    assert case.due_at > utcnow().date()
    assert told.kind == "reopened" and told.values["due"] == format_date(case.due_at, "ko")
    assert reply(*told, lang="ko").startswith(f"[{case.number}] 다시 접수했어요.")
    assert notes(session, case)[-3:] == [
        ("feedback", "시민 확인: 아직 해결되지 않음"),
        ("reopened", "아직 해결되지 않음: 차가 다시 서 있어요"),
        ("assigned", "같은 부서에 다시 배정"),
    ]
    assert question.state == "reopened" and question.comment == "차가 다시 서 있어요"


def test_the_third_not_fixed_goes_to_a_120_operator(session: Session, make_case: MakeCase) -> None:
    case = make_case(channel="web")
    for round_ in range(3):
        resolve(session, case)
        question = question_of(session, case, case.conversation_id)
        feedback.answer(session, question, fixed=False)
        told = feedback.reopen(session, question, note=f"아직이에요 {round_}")
    assert case.status == S.REOPENED  # in the operators' queue, not the department's inbox
    assert case.number in [item.title for item in console_queue.waiting(session, limit=10_000)]
    assert told == ("to_operator", {"number": case.number})
    assert notes(session, case)[-1] == ("feedback", "3번째 재접수: 120 상담사 확인")


def test_fixed_is_rated_with_a_comment(session: Session, make_case: MakeCase) -> None:
    case = make_case(channel="web", language="en")
    resolve(session, case)
    question = question_of(session, case, case.conversation_id)
    assert feedback.answer(session, question, fixed=True).kind == "ask_rating"
    assert feedback.rate(session, question, rating=4, comment=" 빨리 와 주셨어요 ").kind == "thanks"
    assert (question.state, question.rating, question.comment) == ("rated", 4, "빨리 와 주셨어요")
    assert case.status == S.RESOLVED and last_public_note(case) == "불법 주차 차량을 견인했습니다."
    assert notes(session, case)[-2:] == [
        ("feedback", "시민 확인: 해결됨"),
        ("feedback", "만족도 4/5: 빨리 와 주셨어요"),
    ]


def test_an_answer_after_another_citizen_reopened_the_case_changes_nothing(
    session: Session, make_case: MakeCase, make_conversation: MakeConversation
) -> None:
    case = make_case(channel="web")
    me_too = make_conversation(channel="web")
    follow_case(session, number=case.number, conversation_id=me_too.id, language="ko")
    resolve(session, case)
    mine, theirs = question_of(session, case, case.conversation_id), question_of(session, case, me_too.id)
    feedback.answer(session, mine, fixed=False)
    feedback.reopen(session, mine, note="그대로예요")
    assert feedback.answer(session, theirs, fixed=True).kind == "already_handled"
    assert theirs.state == "closed" and case.status == S.ASSIGNED


def test_no_answer_in_7_days_closes_the_case_as_it_is(session: Session, make_case: MakeCase) -> None:
    case = make_case(channel="web")
    resolve(session, case)
    question = question_of(session, case, case.conversation_id)
    feedback.close_unanswered(session)
    assert question.state == "asked"  # not 7 days yet
    feedback.close_unanswered(session, now=utcnow() + timedelta(days=8))
    assert question.state == "closed" and case.status == S.RESOLVED
    assert notes(session, case)[-1] == ("feedback", "7일 동안 답이 없어 그대로 종결")
    assert feedback.pending(session, conversation_ids=[case.conversation_id]) is None


def test_a_caller_answers_by_sms(session: Session, make_case: MakeCase) -> None:
    phone = "+8210" + str(uuid.uuid4().int)[:8]
    citizen = get_or_create_citizen(session, phone=phone)
    call = get_or_create_conversation(session, channel="phone", external_id="CA" + uuid.uuid4().hex)
    call.citizen_id = citizen.id
    case = make_case(channel="phone", conversation_id=call.id)
    resolve(session, case)
    sms = notices(session, call.id)[-1]
    assert sms.channel == "sms" and sms.text.endswith("해결됐으면 1, 아직이면 2를 답장해 주세요.")

    assert feedback.answer_by_sms(session, phone=phone, body="3", message_key="SM1")
    assert "1, 아직이면 2" in notices(session, call.id)[-1].text  # asked again
    assert feedback.answer_by_sms(session, phone=phone, body=" 1 ", message_key="SM2")
    assert feedback.answer_by_sms(session, phone=phone, body=" 1 ", message_key="SM2")  # Twilio's retry
    assert "1(불만족)~5" in notices(session, call.id)[-1].text
    assert feedback.answer_by_sms(session, phone=phone, body="5점 친절했어요", message_key="SM3")
    question = question_of(session, case, call.id)
    assert (question.state, question.rating, question.comment) == ("rated", 5, "친절했어요")
    replies = [n.text.split("] ")[1] for n in notices(session, call.id)[-3:]]
    assert [r[:5] for r in replies] == ["해결됐으면", "다행이에요", "소중한 의"]
    assert not feedback.answer_by_sms(session, phone=phone, body="1", message_key="SM4")  # nothing open now
    assert not feedback.answer_by_sms(session, phone="+821099999999", body="1", message_key="SM5")
