"""'저도 같은 불편을 겪고 있어요' in the web chat against the real stack: an open case nearby is offered to follow."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import geo
from civic.models import Case, CaseFollower, OutboxMessage
from civic.workflow import CaseStatus, transition
from tests.e2e.stack import ChatClient, Stack

pytestmark = pytest.mark.e2e
CASE_NUMBER = re.compile(r"SR-\d{4}-\d{6}")


def texts(replies: list[dict]) -> str:
    return "\n".join(r["text"] for r in replies)


def buttons(replies: list[dict]) -> dict[str, str]:
    return {b["payload"]: b["title"] for r in replies for b in r["buttons"]}


def a_spot_in_seoul() -> tuple[float, float]:
    """A random point in Seoul, so no other test's case is within 100 m."""
    while True:
        point = 37.50 + random.random() * 0.1, 126.90 + random.random() * 0.15
        if geo.locate(*point) is not None:
            return point


def report_at(citizen: ChatClient, point: tuple[float, float], message: str) -> list[dict]:
    citizen.say(message)
    summary = citizen.say("", latitude=point[0], longitude=point[1])
    assert "/affirm" in buttons(summary), texts(summary)
    return citizen.say(buttons(summary)["/affirm"], payload="/affirm")


def test_a_report_near_an_open_case_follows_it_or_files_anew(stack: Stack, db: sessionmaker[Session]) -> None:
    lat, lon = a_spot_in_seoul()
    web_url = stack.web_url
    first = ChatClient(web_url)
    filed = texts(report_at(first, (lat, lon), "가로등이 꺼져서 밤에 너무 어두워요"))
    number = CASE_NUMBER.search(filed)
    assert number, filed

    # 30 m away, the same problem: the bot tells of the case and offers to follow it.
    me_too = ChatClient(web_url)
    offer = report_at(me_too, (lat + 0.00027, lon), "여기 가로등이 고장났어요")
    said = texts(offer)
    assert "같은 곳에" in said and number.group(0) in said and "접수" in said and "전 접수된" in said, said
    assert set(buttons(offer)) == {"/affirm", "/deny"}
    followed = me_too.say(buttons(offer)["/affirm"], payload="/affirm")
    assert set(CASE_NUMBER.findall(texts(followed))) == {number.group(0)}, texts(followed)  # no case of its own

    # In English, declining files a new case as usual.
    anew = ChatClient(web_url)
    anew.say("The streetlight here is broken")
    summary = anew.say("", latitude=lat - 0.0002, longitude=lon)
    offer_en = anew.say(buttons(summary)["/affirm"], payload="/affirm")
    assert "was filed" in texts(offer_en) and number.group(0) in texts(offer_en), texts(offer_en)
    done = texts(anew.say(buttons(offer_en)["/deny"], payload="/deny"))
    new_number = CASE_NUMBER.search(done)
    assert new_number and new_number.group(0) != number.group(0), done

    with db() as session, session.begin():
        case = session.execute(select(Case).where(Case.number == number.group(0))).scalar_one()
        followers = session.execute(select(CaseFollower).where(CaseFollower.case_id == case.id)).scalars().all()
        assert len(followers) == 1 and followers[0].language == "ko"
        follower_id = followers[0].conversation_id
        assert session.execute(select(Case).where(Case.conversation_id == follower_id)).first() is None
        # The case's next change reaches the follower once, in their chat.
        transition(session, case=case, to=CaseStatus.ACCEPTED, actor="e2e")
    with db() as session:
        told = (
            session.execute(
                select(OutboxMessage).where(
                    OutboxMessage.conversation_id == follower_id, OutboxMessage.kind == "case_status"
                )
            )
            .scalars()
            .all()
        )
        assert len(told) == 1 and told[0].text.startswith(f"[{number.group(0)}] 120 상담사가 민원을 확인했습니다")
