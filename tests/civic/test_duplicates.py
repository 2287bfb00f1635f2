"""Duplicates at intake: an open case nearby by GPS or by dong and place, and following it instead of filing."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.duplicates import find_duplicate, follow_case, similar_place
from civic.errors import CaseNotFound
from civic.models import Case, CaseFollower, Conversation, OutboxMessage
from civic.workflow import CaseStatus, transition

MakeCase = Callable[..., Case]
MakeConversation = Callable[..., Conversation]


def _spot() -> tuple[float, float]:
    # A random point in Seoul, so cases of other tests in the shared database are never "nearby".
    return 37.45 + random.random() * 0.2, 126.85 + random.random() * 0.3


def _look_up(session: Session, case_like: dict[str, object], **overrides: object) -> object:
    fields = {
        "category": "illegal_parking",
        "district": "마포구",
        "dong": None,
        "place": "",
        "latitude": None,
        "longitude": None,
        **case_like,
        **overrides,
    }
    return find_duplicate(session, **fields)  # type: ignore[arg-type]


def test_an_open_case_within_100_m_is_found_by_gps(session: Session, make_case: MakeCase) -> None:
    lat, lon = _spot()
    case = make_case(latitude=lat, longitude=lon, place="어딘가")
    found = _look_up(session, {"latitude": lat + 0.0005, "longitude": lon})  # ~55 m north
    assert found is not None and found.number == case.number and found.status == "received"
    assert 50 < found.distance_m < 60
    assert _look_up(session, {"latitude": lat + 0.0012, "longitude": lon}) is None  # ~130 m
    assert _look_up(session, {"latitude": lat, "longitude": lon, "category": "noise"}) is None


def test_the_nearest_of_several_is_offered(session: Session, make_case: MakeCase) -> None:
    lat, lon = _spot()
    make_case(latitude=lat + 0.0008, longitude=lon)
    near = make_case(latitude=lat + 0.0001, longitude=lon)
    make_case(latitude=lat - 0.0007, longitude=lon)
    assert _look_up(session, {"latitude": lat, "longitude": lon}).number == near.number


def test_a_case_in_the_same_dong_with_a_similar_place_is_found(session: Session, make_case: MakeCase) -> None:
    spot = f"서교초등학교 {uuid.uuid4().hex[:6]} 정문 앞"
    case = make_case(dong="서교동", place=f"마포구 서교동 {spot}")
    found = _look_up(session, {"dong": "서교동", "place": spot.replace(" 앞", " 앞이에요")})
    assert found is not None and found.number == case.number and found.distance_m is None
    assert _look_up(session, {"dong": "합정동", "place": spot}) is None  # another dong
    assert _look_up(session, {"dong": "서교동", "place": f"망원시장 {uuid.uuid4().hex[:6]} 입구"}) is None
    assert _look_up(session, {"dong": "서교동", "place": spot, "district": "강서구"}) is None


def test_closed_merged_and_old_cases_are_not_offered(session: Session, make_case: MakeCase) -> None:
    lat, lon = _spot()
    closed = make_case(latitude=lat, longitude=lon)
    transition(session, case=closed, to=CaseStatus.REJECTED, actor="test")
    old = make_case(latitude=lat, longitude=lon)
    assert _look_up(session, {"latitude": lat, "longitude": lon}).number == old.number
    later = utcnow() + timedelta(days=15)
    assert _look_up(session, {"latitude": lat, "longitude": lon, "now": later}) is None


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("합정역 2번 출구 앞에", "합정역 2번출구 앞", True),
        ("마포구 합정동 123 앞", "합정동 123", True),
        ("합정동 (GPS 37.54900, 126.91300)", "합정동 앞", False),
        ("합정동 앞", "합정동 앞", False),  # too little to tell a spot by
        ("합정역 2번 출구 앞", "합정역 3번 출구 앞", False),
        ("망원시장 입구", "합정역 7번 출구", False),
    ],
)
def test_similar_place(one: str, other: str, same: bool) -> None:
    assert similar_place(one, other, ignore=("마포구", "합정동")) is same


def test_following_adds_the_follower_once_and_sends_nothing(
    session: Session, make_case: MakeCase, make_conversation: MakeConversation
) -> None:
    case = make_case()
    me_too = make_conversation(channel="web", language="ja")
    outbox_before = session.execute(select(OutboxMessage.id)).all()
    follow_case(session, number=case.number, conversation_id=me_too.id, language="ja")
    follow_case(session, number=case.number, conversation_id=me_too.id, language="ja")  # a retried turn
    follow_case(session, number=case.number, conversation_id=case.conversation_id, language="ko")  # the filer
    followers = session.execute(select(CaseFollower).where(CaseFollower.case_id == case.id)).scalars().all()
    assert [(f.conversation_id, f.language) for f in followers] == [(me_too.id, "ja")]
    assert session.execute(select(OutboxMessage.id)).all() == outbox_before

    transition(session, case=case, to=CaseStatus.ACCEPTED, actor="test")
    told = session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == me_too.id)).scalars().all()
    assert len(told) == 1 and told[0].text.startswith(f"[{case.number}] 120番の担当者が申告を確認しました")


def test_a_closed_case_cannot_be_followed(
    session: Session, make_case: MakeCase, make_conversation: MakeConversation
) -> None:
    case = make_case()
    transition(session, case=case, to=CaseStatus.WITHDRAWN, actor="test")
    with pytest.raises(CaseNotFound):
        follow_case(session, number=case.number, conversation_id=make_conversation().id, language="ko")
