"""What the phone line expects after each bot reply, and how it reads replies aloud."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from civic.districts import district_names
from telephony.asr import Transcript
from telephony.expectations import (
    Expectation,
    after_reply,
    asks_for_operator,
    button_choices,
    case_number_from_keys,
    district_choices,
    main_menu,
    menu_text,
)
from telephony.gate import Verdict
from telephony.phone_texts import has_final_consonant, menu, spoken
from telephony.understanding import Heard, with_place_names
from tests.domain import DOMAIN

CATEGORY_BUTTONS = [
    {"title": "불법 주정차", "payload": '/inform{"category":"illegal_parking"}'},
    {"title": "가로등·보안등 고장", "payload": '/inform{"category":"broken_streetlight"}'},
    {"title": "소음", "payload": '/inform{"category":"noise"}'},
]
YES_NO = [{"title": "네, 접수해 주세요", "payload": "/affirm"}, {"title": "고칠 게 있어요", "payload": "/deny"}]


def test_buttons_become_keys_with_spoken_forms() -> None:
    choices = button_choices(CATEGORY_BUTTONS)
    assert [c.key for c in choices] == ["1", "2", "3"]
    assert choices[1].payload == '/inform{"category":"broken_streetlight"}'
    assert {"가로등", "보안등"} <= set(choices[1].phrases)
    yes, no = button_choices(YES_NO)
    assert (yes.label, no.label) == ("네", "아니요")
    assert "맞아요" in yes.phrases and "아뇨" in no.phrases


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("마포구요", "마포구"),
        ("마포도", "마포구"),
        ("노원", "노원구"),
        ("중구", "중구"),
        ("강남부", "강남구"),
        ("잘 모르겠어요", None),
    ],
)
def test_districts_are_matched_by_their_whole_or_short_name_or_closely(heard: str, expected: str | None) -> None:
    expectation = after_reply("어느 구인가요?", [], "utter_ask_district")
    assert expectation.kind == "grammar"
    choice = expectation.match(heard)
    assert (choice.text if choice else None) == expected


def test_the_district_grammar_has_every_gu_and_not_the_operator() -> None:
    phrases = after_reply("?", [], "utter_ask_district").phrases
    assert set(district_names()) <= set(phrases)
    assert "상담원" not in phrases  # a hot word only once the answer is no district (phone_line._recognise)
    assert len(district_choices()) == 25


@pytest.mark.parametrize(
    ("heard", "label"),
    [
        ("네", "네"),
        ("내 맞아요", "네"),
        ("아니요", "아니요"),
        ("리요", None),
        ("내", None),  # 내일이… cut short: 내 alone is no 네
        ("내 차가 막혔어요", None),
        ("그래요", "네"),
        ("그래요 요즘 병원에 봉사하러 다니거든요", None),  # a sentence, not a yes: only 네/예/응 begin a long yes
        ("네 마침 빈방이 있습니다 얼마 동안", "네"),
        ("아니요 월요일부터 금요일까지 하면 돼요", "아니요"),
    ],
)
def test_yes_and_no(heard: str, label: str | None) -> None:
    choice = after_reply("이대로 접수할까요?", YES_NO, "utter_report_summary").match(heard)
    assert (choice.label if choice else None) == label


def test_open_questions_are_free_and_the_menu_comes_back_after_filing() -> None:
    assert after_reply("정확한 위치를 말씀해 주세요.", [], "utter_ask_place") == Expectation(
        "free", "정확한 위치를 말씀해 주세요.", response="utter_ask_place"
    )
    filed = after_reply("접수되었어요.", [], "utter_case_filed")
    assert [c.command for c in filed.choices] == ["report", "status"]
    assert after_reply("접수번호?", [], "utter_ask_case_number").case_number_keys


def test_expectations_survive_the_database_round_trip() -> None:
    for expectation in (main_menu("인사"), after_reply("?", CATEGORY_BUTTONS, "utter_ask_category")):
        assert Expectation.from_json(expectation.to_json()) == expectation


def test_case_numbers_from_keys() -> None:
    today = date(2026, 11, 25)
    assert case_number_from_keys("123", today) == "SR-2026-000123"
    assert case_number_from_keys("2025000042", today) == "SR-2025-000042"
    assert case_number_from_keys("9999999", today) == "SR-2026-999999"


def test_operator_is_asked_for_in_a_sentence_but_not_by_a_near_miss() -> None:
    assert asks_for_operator("상담원 연결해 주세요")
    assert asks_for_operator("상담사요")
    assert not asks_for_operator("상담")
    assert not asks_for_operator("한 번")


def test_menu_uses_the_right_particle() -> None:
    assert has_final_consonant("소음") and not has_final_consonant("불법 주정차") and has_final_consonant("10")
    assert menu([("불법 주정차", "1"), ("소음", "6")]) == "불법 주정차는 1번, 소음은 6번을 누르시거나 말씀해 주세요."
    expectation = after_reply("확인해 주세요.", YES_NO, "utter_report_summary")
    assert menu_text(expectation) == "네는 1번, 아니요는 2번을 누르시거나 말씀해 주세요."


def test_chat_texts_are_made_fit_to_be_read_aloud() -> None:
    text = (
        "📊 신고 내용을 확인해 주세요:\n• 유형: 소음\n• 구: 마포구\n"
        "자세히: https://civic.example.kr/x\n접수번호 SR-2026-000123"
    )
    assert spoken(text) == "신고 내용을 확인해 주세요: 유형: 소음. 구: 마포구. 자세히: 접수번호 SR 2026, 0 0 0 1 2 3."
    # The outside-Seoul answer names a web portal in brackets: the caller hears its name, not its address.
    outside = "국민신문고(www.epeople.go.kr)에 신고하시면 부천시로 전달되고, 전화는 콜센터(국번 없이 110)예요."
    assert spoken(outside) == "국민신문고에 신고하시면 부천시로 전달되고, 전화는 콜센터(국번 없이 110)예요."


def _heard(text: str, outcome: str = "text") -> Heard:
    return Heard(Transcript(text=text, engine="whisper", seconds=0.1), outcome, Verdict(outcome == "text"))


@pytest.mark.parametrize("response", ["utter_ask_place", "utter_ask_place_detail"])
def test_a_heard_place_gets_seoul_names_set_right(response: str) -> None:
    expectation = Expectation("free", "", response=response)
    assert with_place_names(_heard("합정녁 2번 출구 앞"), expectation).text == "합정역 2번 출구 앞"
    assert with_place_names(_heard("마포구 서교동"), expectation).text == "마포구 서교동"


def test_only_believed_place_answers_are_corrected() -> None:
    description = Expectation("free", "", response="utter_ask_description")
    assert with_place_names(_heard("합정녁 앞에 차가 있어요"), description).text == "합정녁 앞에 차가 있어요"
    place = Expectation("free", "", response="utter_ask_place")
    refused = _heard("합정녁", outcome="refused")
    assert with_place_names(refused, place) is refused  # a refused decoding is kept for the operator as it was


def test_the_offer_to_follow_an_open_case_is_keyed_as_yes_1_and_no_2() -> None:
    """On the phone "저도 같은 불편을 겪고 있어요" is a yes (1) and "file a new one" a no (2), by payload."""
    responses = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))["responses"]
    korean = next(v for v in responses["utter_ask_follow_duplicate"] if "condition" not in v)
    expectation = after_reply("새로 접수하는 대신 이 신고의 처리 소식을 함께 받으시겠어요?", korean["buttons"], None)
    assert [(c.key, c.payload) for c in expectation.choices] == [("1", "/affirm"), ("2", "/deny")]
    assert menu_text(expectation).startswith("네는 1번, 아니요는 2번")
    assert expectation.match("네 맞아요").payload == "/affirm"  # type: ignore[union-attr]
