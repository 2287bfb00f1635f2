"""The complaint form's validation and the filing action, run with CollectingDispatcher."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from actions.complaint import ActionAskConfirmReport, ActionSubmitComplaint, ValidateComplaintForm, is_description
from civic.models import Case, Conversation
from tests.actions.conftest import DOMAIN, make_tracker


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_a_bare_request_is_not_a_description() -> None:
    assert not is_description("불법주차 신고하고 싶어요")
    assert not is_description("I want to report illegal parking")
    assert is_description("소화전 앞에 차가 이틀째 서 있어요")
    assert is_description("There's a car parked on the sidewalk near Hapjeong station")


async def test_first_message_becomes_the_description() -> None:
    form = ValidateComplaintForm()
    tracker = make_tracker(text="합정동 가로등이 나갔어요", intent="report_complaint")
    assert await form.extract_description(CollectingDispatcher(), tracker, DOMAIN) == {
        "description": "합정동 가로등이 나갔어요"
    }
    bare = make_tracker(text="신고할게요", intent="report_complaint")
    assert await form.extract_description(CollectingDispatcher(), bare, DOMAIN) == {}


async def test_gps_position_fills_district_and_place() -> None:
    form = ValidateComplaintForm()
    tracker = make_tracker(text="/share_location", metadata={"latitude": 37.5663, "longitude": 126.9779})
    district = await form.extract_district(CollectingDispatcher(), tracker, DOMAIN)
    assert district == {"district": "중구"}
    place = await form.extract_place(CollectingDispatcher(), tracker, DOMAIN)
    assert "GPS 37.56630" in place["place"]


async def test_position_outside_seoul_is_explained() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text="/share_location", metadata={"latitude": 35.6812, "longitude": 139.7671})
    assert await ValidateComplaintForm().extract_district(dispatcher, tracker, DOMAIN) == {}
    assert dispatcher.messages[0]["response"] == "utter_location_outside_seoul"


def test_no_at_the_summary_asks_what_to_correct() -> None:
    tracker = make_tracker(text="아니요", intent="deny", slots={"confirm_report": False})
    assert ValidateComplaintForm().validate_confirm_report(False, CollectingDispatcher(), tracker, DOMAIN) == {
        "confirm_report": None,
        "correction_requested": True,
    }


def test_a_district_answer_is_not_a_place() -> None:
    entities = [{"entity": "district", "value": "구로구", "start": 3, "end": 6}]
    tracker = make_tracker(text="아니 구로구요", entities=entities)
    assert ValidateComplaintForm().validate_place("아니 구로구요", CollectingDispatcher(), tracker, DOMAIN) == {
        "place": None
    }
    tracker = make_tracker(text="합정역 2번 출구 앞이요")
    assert ValidateComplaintForm().validate_place("합정역 2번 출구 앞이요", CollectingDispatcher(), tracker, DOMAIN)[
        "place"
    ]


def test_unknown_district_is_refused() -> None:
    dispatcher = CollectingDispatcher()
    assert ValidateComplaintForm().validate_district("부산진구", dispatcher, make_tracker(), DOMAIN) == {
        "district": None
    }
    assert dispatcher.messages[0]["response"] == "utter_unknown_district"


async def test_summary_uses_the_citizens_language() -> None:
    dispatcher = CollectingDispatcher()
    slots = {
        "language": "en",
        "category": "noise",
        "district": "마포구",
        "place": "Hongdae",
        "description": "loud music",
    }
    await ActionAskConfirmReport().run(dispatcher, make_tracker(slots=slots), DOMAIN)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_report_summary"
    assert message["category_label"] == "Noise" or "noise" in message["category_label"].lower()
    assert message["district_label"] == "Mapo-gu"


async def test_submit_files_once_per_confirmation(session_factory: sessionmaker[Session]) -> None:
    slots = {
        "category": "illegal_dumping",
        "district": "노원구",
        "place": "상계동 주민센터 앞",
        "description": "쓰레기가 쌓여 있어요",
        "confirm_report": True,
    }
    tracker = make_tracker(
        sender="action-test-1", text="네", intent="affirm", slots=slots, metadata={"client_message_id": "confirm-1"}
    )
    first, second = CollectingDispatcher(), CollectingDispatcher()
    events = await ActionSubmitComplaint().run(first, tracker, DOMAIN)
    await ActionSubmitComplaint().run(second, tracker, DOMAIN)
    assert first.messages[0]["response"] == "utter_case_filed"
    assert first.messages[0]["case_number"] == second.messages[0]["case_number"]  # same confirmation, same case
    assert slots_of(events)["category"] is None and SlotSet("category", None) in events
    with session_factory() as session:
        conversation = session.execute(
            select(Conversation).where(Conversation.external_id == "action-test-1")
        ).scalar_one()
        cases = session.execute(select(Case).where(Case.conversation_id == conversation.id)).scalars().all()
        assert len(cases) == 1 and cases[0].channel == "rest"


async def test_a_report_confirmed_again_in_a_new_message_files_one_case(session_factory: sessionmaker[Session]) -> None:
    """The first confirmation's turn was lost after filing (its Rasa replica died): the second finds that case."""
    slots = {
        "category": "broken_sidewalk",
        "district": "송파구",
        "place": "잠실역 8번 출구",
        "description": "보도블록이 깨졌어요",
        "confirm_report": True,
    }
    activated = [{"event": "active_loop", "name": "complaint_form", "timestamp": 1_796_000_000.25}]

    def confirmation(message_id: str, events: list[dict[str, Any]]) -> Any:
        return make_tracker(
            sender="action-test-draft",
            text="네",
            intent="affirm",
            slots=slots,
            events=events,
            metadata={"client_message_id": message_id},
        )

    filed = []
    for message_id in ("tg:1001", "tg:1002"):
        dispatcher = CollectingDispatcher()
        await ActionSubmitComplaint().run(dispatcher, confirmation(message_id, activated), DOMAIN)
        filed.append(dispatcher.messages[0]["case_number"])
    assert filed[0] == filed[1]

    # A later report in the same conversation is a new activation of the form: a case of its own.
    later = [*activated, {"event": "active_loop", "name": "complaint_form", "timestamp": 1_796_000_900.5}]
    dispatcher = CollectingDispatcher()
    await ActionSubmitComplaint().run(dispatcher, confirmation("tg:1003", later), DOMAIN)
    assert dispatcher.messages[0]["case_number"] not in filed
