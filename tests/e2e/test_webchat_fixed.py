"""'Fixed?' in the web chat against the real stack: not fixed → reopened → resolved again → fixed → rated (and a
comment)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic.models import Case, CaseEvent, CaseFeedback
from tests import case_paths
from tests.e2e.stack import ChatClient, Stack
from tests.e2e.test_webchat_me_too import CASE_NUMBER, a_spot_in_seoul, buttons, report_at, texts

pytestmark = pytest.mark.e2e


def resolve(db: sessionmaker[Session], number: str, answer: str) -> None:
    with db() as session, session.begin():
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        case_paths.resolve(session, case, answer)


def latest_notice(citizen: ChatClient) -> dict:
    return [m for m in citizen.transcript() if m.get("buttons")][-1]


def test_not_fixed_reopens_then_fixed_is_rated(stack: Stack, db: sessionmaker[Session]) -> None:
    citizen = ChatClient(stack.web_url)
    filed = texts(report_at(citizen, a_spot_in_seoul(), "보도블록이 깨져서 걸려 넘어질 뻔했어요"))
    number = CASE_NUMBER.search(filed)
    assert number, filed
    number_text = number.group(0)

    resolve(db, number_text, "보도블록을 교체했습니다.")
    notice = latest_notice(citizen)
    assert "보도블록을 교체했습니다." in notice["text"] and notice["text"].endswith("문제가 해결됐나요?")
    taps = {b["title"]: b["payload"] for b in notice["buttons"]}
    asked = texts(citizen.say("아직이에요", payload=taps["아직이에요"]))
    assert "무엇이 아직 해결되지 않았는지" in asked, asked
    reopened = texts(citizen.say("옆 칸 보도블록이 아직 깨져 있어요"))
    assert "다시 접수했어요" in reopened and number_text in reopened, reopened

    with db() as session:
        case = session.execute(select(Case).where(Case.number == number_text)).scalar_one()
        assert case.status == "assigned"
        steps = [
            (e.to_status, e.note)
            for e in session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id))
            .scalars()
            .all()
        ]
        assert ("reopened", "아직 해결되지 않음: 옆 칸 보도블록이 아직 깨져 있어요") in steps

    resolve(db, number_text, "나머지 보도블록도 교체했습니다.")
    notice = latest_notice(citizen)
    taps = {b["title"]: b["payload"] for b in notice["buttons"]}
    rating_question = citizen.say("해결됐어요", payload=taps["해결됐어요"])
    assert "만족" in texts(rating_question), texts(rating_question)
    five = '/inform{"rating":"5"}'
    assert buttons(rating_question)[five] == "5"
    comment_question = citizen.say("5", payload=five)
    assert "더 하실 말씀" in texts(comment_question) and "/deny" in buttons(comment_question), texts(comment_question)
    thanks = texts(citizen.say("빨리 고쳐 주셔서 고마워요"))
    assert "감사합니다" in thanks, thanks

    with db() as session:
        case = session.execute(select(Case).where(Case.number == number_text)).scalar_one()
        asked = select(CaseFeedback.state, CaseFeedback.rating, CaseFeedback.comment).where(
            CaseFeedback.case_id == case.id
        )
        answers = session.execute(asked.order_by(CaseFeedback.id)).all()
        assert [tuple(a) for a in answers] == [
            ("reopened", None, "옆 칸 보도블록이 아직 깨져 있어요"),
            ("rated", 5, "빨리 고쳐 주셔서 고마워요"),
        ]
        assert case.status == "resolved"
