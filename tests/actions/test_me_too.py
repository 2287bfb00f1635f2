"""'저도 같은 불편을 겪고 있어요': the duplicate offered at confirmation, following it, or filing after all."""

from __future__ import annotations

import random
import uuid
from typing import Any

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from actions.complaint import ActionSubmitComplaint, ValidateComplaintForm
from actions.me_too import ActionAskFollowDuplicate
from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.models import Case, CaseFollower, Conversation, OutboxMessage
from telephony.phone_texts import UNHEARD_MARKERS
from tests.actions.conftest import DOMAIN, make_tracker, turn


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def _filed_nearby(session_factory: sessionmaker[Session]) -> tuple[str, dict[str, Any]]:
    """An open case at a random spot (so no other test's case is nearby), and a report of it 30 m away."""
    lat, lon = 37.45 + random.random() * 0.2, 126.85 + random.random() * 0.3
    with session_factory() as session, session.begin():
        filer = get_or_create_conversation(session, channel="telegram", external_id=uuid.uuid4().hex)
        case = file_case(
            session,
            category="illegal_dumping",
            district="노원구",
            place="상계동 (GPS)",
            description="쓰레기가 쌓여 있어요",
            channel="telegram",
            latitude=lat,
            longitude=lon,
            conversation_id=filer.id,
        )
        number = case.number
    report = {
        "category": "illegal_dumping",
        "district": "노원구",
        "place": "상계역 1번 출구",
        "description": "쓰레기 봉투가 잔뜩 버려져 있어요",
        "latitude": lat + 0.00027,
        "longitude": lon,
    }
    return number, report


async def test_confirming_a_report_of_an_open_case_nearby_offers_to_follow_it(
    session_factory: sessionmaker[Session],
) -> None:
    number, report = _filed_nearby(session_factory)
    tracker = turn("네", "affirm", stage="confirm_report", before=report, candidates={"confirm_report": True})
    events = await ValidateComplaintForm().run(CollectingDispatcher(), tracker, DOMAIN)
    assert slots_of(events)["duplicate_of"] == number and "follow_duplicate" not in slots_of(events)

    for language, words in (("ko", ("분 전", "접수")), ("en", ("minute", "Received")), ("ja", ("分前", "受付"))):
        asking = make_tracker(slots={**report, "duplicate_of": number, "language": language})
        dispatcher = CollectingDispatcher()
        await ActionAskFollowDuplicate().run(dispatcher, asking, DOMAIN)
        [message] = dispatcher.messages
        assert message["response"] == "utter_ask_follow_duplicate" and message["case_number"] == number
        assert words[0] in message["ago"] and message["status_label"] == words[1]


async def test_following_adds_the_follower_and_files_nothing(session_factory: sessionmaker[Session]) -> None:
    number, report = _filed_nearby(session_factory)
    slots = {**report, "confirm_report": True, "duplicate_of": number, "follow_duplicate": True, "language": "en"}
    tracker = make_tracker(sender="me-too-1", text="I have the same problem", intent="affirm", slots=slots)
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, tracker, DOMAIN)
    await ActionSubmitComplaint().run(CollectingDispatcher(), tracker, DOMAIN)  # a retried turn
    assert [m["response"] for m in dispatcher.messages] == ["utter_following_case"]
    assert slots_of(events)["case_id"] == number and slots_of(events)["duplicate_of"] is None
    with session_factory() as session:
        me = session.execute(select(Conversation).where(Conversation.external_id == "me-too-1")).scalar_one()
        assert session.execute(select(Case).where(Case.conversation_id == me.id)).first() is None
        followers = session.execute(
            select(CaseFollower).join(Case, Case.id == CaseFollower.case_id).where(Case.number == number)
        ).scalars()
        assert [(f.conversation_id, f.language) for f in followers] == [(me.id, "en")]
        assert session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == me.id)).first() is None


async def test_declining_files_a_new_case(session_factory: sessionmaker[Session]) -> None:
    number, report = _filed_nearby(session_factory)
    slots = {**report, "confirm_report": True, "duplicate_of": number, "follow_duplicate": False}
    tracker = make_tracker(sender="me-too-2", text="아니요", intent="deny", slots=slots)
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, tracker, DOMAIN)
    [message] = dispatcher.messages
    assert message["response"] == "utter_case_filed" and message["case_number"] != number
    with session_factory() as session:
        followers = session.execute(
            select(CaseFollower).join(Case, Case.id == CaseFollower.case_id).where(Case.number == number)
        ).all()
        assert followers == []


async def test_the_offer_is_made_once_per_report(session_factory: sessionmaker[Session]) -> None:
    number, report = _filed_nearby(session_factory)
    # Confirmed again after a filing that failed: declined once, the report is filed without asking again.
    before = {**report, "duplicate_of": number, "follow_duplicate": False}
    tracker = turn("네", "affirm", stage="confirm_report", before=before, candidates={"confirm_report": True})
    events = await ValidateComplaintForm().run(CollectingDispatcher(), tracker, DOMAIN)
    assert "duplicate_of" not in slots_of(events) and "follow_duplicate" not in slots_of(events)


async def test_a_place_the_line_kept_only_as_a_recording_matches_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    marker = UNHEARD_MARKERS["place"]
    dong = {"category": "sewer", "district": "도봉구", "dong": "창동", "place": marker, "description": "냄새"}
    with session_factory() as session, session.begin():
        file_case(session, **dong, channel="phone")
    tracker = turn("네", "affirm", stage="confirm_report", before=dong, candidates={"confirm_report": True})
    events = await ValidateComplaintForm().run(CollectingDispatcher(), tracker, DOMAIN)
    assert slots_of(events)["follow_duplicate"] is False and "duplicate_of" not in slots_of(events)
