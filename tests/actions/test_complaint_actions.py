"""The complaint form's validation and the filing action, run with CollectingDispatcher."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from actions.complaint import (
    ActionAskConfirmReport,
    ActionAskPlace,
    ActionSubmitComplaint,
    ValidateComplaintForm,
    is_description,
    outside_seoul,
)
from actions.report_turns import place_answer
from civic.models import Case, Conversation
from tests.actions.conftest import DOMAIN, make_tracker, turn


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


FILLED = {
    "category": "broken_streetlight",
    "district": "동작구",
    "place": "노량진역 1번 출구",
    "description": "동작구 노량진 학원가에 보안등이 깜빡거려요",
}


async def run_form(tracker: Any, dispatcher: CollectingDispatcher | None = None) -> dict[str, Any]:
    """The slots the form's validation sets for this turn (requested_slot left out)."""
    events = await ValidateComplaintForm().run(dispatcher or CollectingDispatcher(), tracker, DOMAIN)
    return {k: v for k, v in slots_of(events).items() if k != "requested_slot"}


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


async def test_no_at_the_summary_asks_what_to_correct() -> None:
    events = await run_form(
        turn("아니요", "deny", stage="confirm_report", before=FILLED, candidates={"confirm_report": False})
    )
    assert events == {"confirm_report": None, "correction_requested": True}


def test_a_district_answer_is_not_a_place() -> None:
    entities = [{"entity": "district", "value": "구로구", "start": 3, "end": 6}]
    tracker = turn("아니 구로구요", entities=entities, stage="place")
    assert (
        ValidateComplaintForm().validate_place("아니 구로구요", CollectingDispatcher(), tracker, DOMAIN)["place"]
        is None
    )
    tracker = turn("합정역 2번 출구 앞이요", stage="place")
    assert ValidateComplaintForm().validate_place(
        "합정역 2번 출구 앞이요", CollectingDispatcher(), tracker, DOMAIN
    ) == {
        "place": "합정역 2번 출구 앞",
        "place_vague": None,
    }


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


# Slot hygiene (issue 15): a correction changes exactly the detail it names.


def place_entity(text: str, value: str) -> list[dict[str, Any]]:
    start = text.index(value)
    return [{"entity": "place", "value": value, "start": start, "end": start + len(value)}]


async def test_a_place_correction_in_two_turns_changes_only_the_place() -> None:
    asked = await run_form(turn("위치가 틀렸어요", "deny", stage="confirm_report", before=FILLED))
    assert asked == {"place": None, "place_vague": None, "confirm_report": None, "correction_requested": False}
    answer = "노량진 컵밥거리 뒤쪽 골목이에요"
    corrected = await run_form(
        turn(
            answer,
            "report_complaint",
            stage="place",
            before={**FILLED, "place": None},
            candidates={"place": answer, "category": "illegal_dumping"},
            entities=place_entity(answer, "컵밥거리 뒤쪽 골목"),
        )
    )
    assert corrected["place"] == "노량진 컵밥거리 뒤쪽 골목"
    assert corrected["category"] == "broken_streetlight"  # the place answer's guessed category goes back
    assert "description" not in corrected


async def test_a_place_answer_after_a_plain_no_is_the_place_not_the_description() -> None:
    answer = "노량진 컵밥거리 뒤쪽 골목이에요"
    before = {**FILLED, "correction_requested": True}
    tracker = turn(
        answer,
        stage="confirm_report",
        before=before,
        candidates={"place": "컵밥거리 뒤쪽 골목"},
        entities=place_entity(answer, "컵밥거리 뒤쪽 골목"),
    )
    assert await run_form(tracker) == {
        "place": "노량진 컵밥거리 뒤쪽 골목",
        "place_vague": None,
        "confirm_report": None,
        "correction_requested": False,
    }


async def test_a_category_correction_with_its_value_changes_the_category_at_once() -> None:
    text = "유형이 안전 위험이에요"
    tracker = turn(
        text,
        "report_complaint",
        stage="confirm_report",
        before={**FILLED, "correction_requested": True},
        candidates={"category": "urban_facility"},
    )
    slots = await run_form(tracker)
    assert slots["category"] == "safety" and "description" not in slots
    assert slots["confirm_report"] is None


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("the district is wrong", "district"),
        ("区が違います", "district"),
        ("구가 틀렸어요", "district"),
        ("場所が違います", "place"),
        ("the location is wrong", "place"),
        ("種類が違います", "category"),
        ("유형이 잘못됐어요", "category"),
        ("내용을 바꿀게요", "description"),
        ("内容を変更したいです", "description"),
        ("I want to change the description", "description"),
    ],
)
async def test_a_correction_naming_a_detail_asks_for_that_detail_again(text: str, slot: str) -> None:
    slots = await run_form(turn(text, "deny", stage="confirm_report", before=FILLED))
    assert slots[slot] is None
    assert all(slots.get(other, FILLED[other]) == FILLED[other] for other in FILLED if other != slot)
    assert slots["confirm_report"] is None and slots["correction_requested"] is False


async def test_a_correction_carrying_the_district_changes_it_at_once() -> None:
    entities = [{"entity": "district", "value": "구로구", "start": 3, "end": 6}]
    tracker = turn(
        "아니 구로구요", stage="confirm_report", before=FILLED, candidates={"district": "구로구"}, entities=entities
    )
    assert await run_form(tracker) == {"district": "구로구", "confirm_report": None, "correction_requested": False}


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("장소는 망원시장 뒤쪽 골목, 망원로 8길 입구예요", "망원시장 뒤쪽 골목, 망원로 8길 입구"),
        ("場所が違います。駅三駅の3番出口の前です", "駅三駅の3番出口の前"),
        ("the place is wrong, it's behind Noryangjin fish market", "behind Noryangjin fish market"),
    ],
)
async def test_a_place_correction_with_its_value_keeps_the_whole_place(text: str, place: str) -> None:
    slots = await run_form(turn(text, stage="confirm_report", before=FILLED, candidates={"place": place[:6]}))
    assert slots["place"] == place and "description" not in slots


async def test_a_description_correction_takes_the_next_answer_whole() -> None:
    cleared = await run_form(turn("내용을 바꿀게요", stage="confirm_report", before=FILLED))
    assert cleared["description"] is None
    answer = "보안등이 밤새 깜빡거려서 잠을 못 자요"
    slots = await run_form(
        turn(answer, stage="description", before={**FILLED, "description": None}, candidates={"description": answer})
    )
    assert slots == {"description": answer}


@pytest.mark.parametrize("text", ["네", "/affirm", "はい"])
async def test_yes_at_the_summary_confirms_and_changes_no_detail(text: str) -> None:
    tracker = turn(text, "affirm", stage="confirm_report", before=FILLED, candidates={"confirm_report": True})
    # Nothing like it is open nearby (no GPS, no dong): the "me too" question is answered "no" at once.
    expected = {"confirm_report": True, "correction_requested": False, "follow_duplicate": False}
    assert await run_form(tracker) == expected


async def test_the_place_answer_never_becomes_the_description() -> None:
    answer = "신림역 근처 원룸촌 골목"
    before = {"category": "illegal_dumping", "district": "관악구", "description": "쓰레기 무단투기 신고요"}
    tracker = turn(
        answer,
        "report_complaint",
        stage="place",
        before=before,
        candidates={"place": answer, "category": "illegal_parking"},
        entities=place_entity(answer, answer),
    )
    slots = await run_form(tracker)
    assert slots["place"] == answer and slots["category"] == "illegal_dumping" and "description" not in slots


async def test_a_later_detail_extends_the_description() -> None:
    before = {"category": "illegal_parking", "description": "소화전 앞에 차가 서 있어요"}
    tracker = turn("벌써 이틀째 그대로 서 있어서 불안해요", "report_complaint", stage="district", before=before)
    slots = await run_form(tracker)
    assert slots["description"] == "소화전 앞에 차가 서 있어요 / 벌써 이틀째 그대로 서 있어서 불안해요"


async def test_a_district_answer_with_a_place_does_not_extend_the_description() -> None:
    text = "마포구 합정역 2번 출구 앞이요"
    entities = [
        {"entity": "district", "value": "마포구", "start": 0, "end": 3},
        *place_entity(text, "합정역 2번 출구 앞"),
    ]
    before = {"category": "illegal_parking", "description": "소화전 앞에 차가 서 있어요"}
    tracker = turn(
        text,
        "report_complaint",
        stage="district",
        before=before,
        candidates={"district": "마포구", "place": "합정역 2번 출구 앞"},
        entities=entities,
    )
    slots = await run_form(tracker)
    assert slots["district"] == "마포구" and slots["place"] == "합정역 2번 출구 앞" and "description" not in slots


# Places an inspector can find.


@pytest.mark.parametrize(
    "vague", ["상계동", "노원구 상계동", "우리 집 앞", "near my house", "家の前", "鍾路区の仁寺洞"]
)
async def test_a_vague_place_earns_one_question_for_a_landmark(vague: str) -> None:
    slots = await run_form(
        turn(vague, stage="place", before={"category": "noise", "district": "노원구"}, candidates={"place": vague})
    )
    assert slots["place"] is None and slots["place_vague"]
    dispatcher = CollectingDispatcher()
    await ActionAskPlace().run(dispatcher, make_tracker(slots={"place_vague": slots["place_vague"]}), DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_ask_place_detail"


async def test_after_the_landmark_question_any_answer_is_accepted() -> None:
    before = {"category": "illegal_banner", "district": "노원구", "place_vague": "상계동"}
    slots = await run_form(
        turn("주공아파트 7단지 놀이터 옆이요", stage="place", before=before, candidates={"place": "x"})
    )
    assert slots["place"] == "상계동 주공아파트 7단지 놀이터 옆" and slots["place_vague"] is None
    slots = await run_form(
        turn("그냥 그 동네예요", stage="place", before=before, candidates={"place": "그냥 그 동네예요"})
    )
    assert slots["place"] == "상계동 그냥 그 동네"
    dispatcher = CollectingDispatcher()
    await ActionAskPlace().run(dispatcher, make_tracker(), DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_ask_place"


@pytest.mark.parametrize(
    ("answer", "place"),
    [
        ("망원시장 뒤쪽 골목, 망원로 8길 입구", "망원시장 뒤쪽 골목, 망원로 8길 입구"),
        ("駅三駅の3番出口の前です", "駅三駅の3番出口の前"),
        ("아니요, 신촌역 3번 출구 앞이에요", "신촌역 3번 출구 앞"),
    ],
)
async def test_an_answer_to_the_place_question_is_kept_whole(answer: str, place: str) -> None:
    slots = await run_form(
        turn(answer, stage="place", before={"category": "noise", "district": "마포구"}, candidates={"place": answer})
    )
    assert slots["place"] == place


# Outside Seoul.


@pytest.mark.parametrize(
    ("text", "language", "city"),
    [
        ("부천시 상동에 쓰레기가 잔뜩 버려져 있어요", "ko", "부천시"),
        ("There is a broken streetlight near Bucheon city hall", "en", "Bucheon"),
        ("仁川の駅前にごみが捨てられています", "ja", "仁川広域市"),
    ],
)
async def test_a_place_outside_seoul_is_answered_and_nothing_is_filed(text: str, language: str, city: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = turn(text, "report_complaint", before={"language": language}, candidates={"description": text})
    events = await ValidateComplaintForm().run(dispatcher, tracker, DOMAIN)
    assert dispatcher.messages[0]["response"] == "utter_outside_seoul" and dispatcher.messages[0]["city"] == city
    slots = slots_of(events)
    assert slots["requested_slot"] is None  # the form ends: the draft is dropped
    assert all(slots[slot] is None for slot in ("category", "district", "place", "description"))


async def test_a_seoul_gu_named_beside_another_city_stays_in_seoul() -> None:
    text = "구로구 오류동 부천 가는 버스정류장 앞에 쓰레기가 쌓여 있어요"
    entities = [{"entity": "district", "value": "구로구", "start": 0, "end": 3}]
    dispatcher = CollectingDispatcher()
    await ValidateComplaintForm().run(dispatcher, turn(text, "report_complaint", entities=entities), DOMAIN)
    assert all(m["response"] != "utter_outside_seoul" for m in dispatcher.messages)
    text = "김포공항 근처 강서구 도로에 구멍이 났어요"
    assert outside_seoul(turn(text, "report_complaint")) is None


async def test_naming_a_detail_is_a_correction_even_when_read_as_cancelling() -> None:
    slots = await run_form(turn("내용을 바꿀게요", "cancel_report", stage="confirm_report", before=FILLED))
    assert slots["description"] is None
    # "신고 취소할게요" still cancels: the form lets the rule drop the draft.
    assert await run_form(turn("신고 취소할게요", "cancel_report", stage="confirm_report", before=FILLED)) == {}


async def test_a_detail_at_the_read_back_extends_the_description() -> None:
    before = {**FILLED, "description": "하수구가 막혀서 물이 안 빠져요"}
    slots = await run_form(
        turn("그리고 비 오면 인도까지 물이 넘쳐요", "report_complaint", stage="confirm_report", before=before)
    )
    assert slots["description"] == "하수구가 막혀서 물이 안 빠져요 / 그리고 비 오면 인도까지 물이 넘쳐요"
    assert "place" not in slots and "category" not in slots


async def test_a_category_named_as_the_new_one_replaces_the_old() -> None:
    before = {**FILLED, "category": "noise"}
    slots = await run_form(turn("소음 말고 공사장으로 해주세요", "inform", stage="confirm_report", before=before))
    assert slots["category"] == "construction" and "description" not in slots


async def test_a_shared_position_answers_the_landmark_question() -> None:
    before = {"category": "illegal_dumping", "district": "중구", "place_vague": "우리 집 앞"}
    tracker = turn(
        "/share_location",
        "share_location",
        stage="place",
        before=before,
        candidates={"place": "/share_location"},
        metadata={"latitude": 37.5663, "longitude": 126.9779},
    )
    slots = await run_form(tracker)
    assert "GPS 37.56630" in slots["place"] and slots["place_vague"] is None


async def test_an_answer_read_as_no_still_answers_the_description_question() -> None:
    answer = "消えているのではなく、一晩中点滅しています"
    slots = await run_form(turn(answer, "deny", stage="description", before={**FILLED, "description": None}))
    assert slots["description"] == answer


@pytest.mark.parametrize(
    ("text", "gu", "start"),
    [("Cars are parked all along the road in Jung-gu, Incheon", "중구", 38), ("仁川の中区で違法駐車です", "중구", 3)],
)
async def test_a_gu_of_another_city_is_not_seouls(text: str, gu: str, start: int) -> None:
    entities = [{"entity": "district", "value": gu, "start": start, "end": start + (7 if text.isascii() else 2)}]
    assert outside_seoul(turn(text, "report_complaint", entities=entities)) is not None


async def test_cancelling_words_read_as_no_still_drop_the_draft() -> None:
    dispatcher = CollectingDispatcher()
    tracker = turn("やっぱりやめます、取り消してください", "deny", stage="confirm_report", before=FILLED)
    events = slots_of(await ValidateComplaintForm().run(dispatcher, tracker, DOMAIN))
    assert dispatcher.messages[0]["response"] == "utter_draft_discarded"
    assert events["requested_slot"] is None and events["description"] is None


async def test_a_position_shared_at_the_read_back_replaces_district_and_place() -> None:
    metadata = {"latitude": 37.5663, "longitude": 126.9779}
    tracker = turn("/share_location", "share_location", stage="confirm_report", before=FILLED, metadata=metadata)
    slots = await run_form(tracker)
    assert slots["district"] == "중구" and "GPS 37.56630" in slots["place"] and "description" not in slots
    tracker = turn("/deny", "deny", stage="confirm_report", before=FILLED, candidates={"confirm_report": False})
    assert await run_form(tracker) == {"confirm_report": None, "correction_requested": True}


async def test_a_place_answer_that_also_tells_the_story_keeps_only_its_place() -> None:
    answer = "합정역 2번 출구 앞에 불법 주차된 차가 있어요"
    before = {"category": "illegal_parking", "district": "마포구"}
    heard = [*place_entity(answer, "합정역 2번 출구 앞"), {"entity": "category", "value": "illegal_parking"}]
    tracker = turn(answer, stage="place", before=before, candidates={"place": answer}, entities=heard)
    assert (await run_form(tracker))["place"] == "합정역 2번 출구 앞"
    # Without a complaint heard in it, the answer is all place: "노래방 건물" and "Itaewon-ro 27-gil 10" stay.
    for answer, phrase in [
        ("신림역 4번 출구 앞 노래방 건물이요", "신림역 4번 출구 앞"),
        ("Itaewon-ro 27-gil 10, next to Itaewon station exit 1", "Itaewon station exit 1"),
    ]:
        tracker = turn(
            answer, stage="place", before=before, candidates={"place": answer}, entities=place_entity(answer, phrase)
        )
        assert (await run_form(tracker))["place"] == place_answer(answer)


async def test_something_wrong_without_saying_what_asks_what_to_change() -> None:
    slots = await run_form(turn("Mapo-gu is wrong", "inform", stage="confirm_report", before=FILLED))
    assert slots == {"confirm_report": None, "correction_requested": True}


async def test_a_bare_request_keeps_only_a_category_it_names() -> None:
    vague = await run_form(turn("I'd like to file a complaint", "report_complaint", candidates={"category": "noise"}))
    assert vague["category"] is None
    named = await run_form(
        turn("불법 주정차 신고하고 싶어요", "report_complaint", candidates={"category": "illegal_parking"})
    )
    assert named["category"] == "illegal_parking"
