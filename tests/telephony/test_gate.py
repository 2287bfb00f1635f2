"""The confidence gate and the closed-answer matcher on synthetic decodings (no models, no corpora)."""

from __future__ import annotations

import pytest

from telephony.asr import DecodeOptions, Transcript
from telephony.asr_eval import GRAMMARS
from telephony.expectations import Expectation, after_reply, district_choices, spoken_key, words
from telephony.gate import judge

CATEGORY = Expectation("grammar", "", GRAMMARS["category"])
DISTRICT = Expectation("grammar", "", district_choices())
YES_NO = Expectation("grammar", "", GRAMMARS["yesno"])


def decoded(text: str, *, logprob: float = -0.3, no_speech: float = 0.05, ratio: float = 1.2) -> Transcript:
    return Transcript(text, "whisper", 0.1, avg_logprob=logprob, no_speech_prob=no_speech, compression_ratio=ratio)


def verdict(text: str, expectation: Expectation | None = None, **signals: float) -> str:
    hotwords = expectation.phrases if expectation else []
    return judge(decoded(text, **signals), hotwords, expectation.owners() if expectation else None).reason


@pytest.mark.parametrize(
    ("text", "expectation"),
    [
        ("하수구 하수도 맨홀 도시 시설물 벤치 버스 정류", CATEGORY),  # the prompt echo
        ("종로구 중구 용산구 성동구", DISTRICT),
        ("네, 내, 예, 응, 맞아요, 맞습니다", YES_NO),
    ],
)
def test_the_gate_refuses_the_hot_words_said_back(text: str, expectation: Expectation) -> None:
    assert verdict(text, expectation) == "echo"


@pytest.mark.parametrize(
    "text",
    [
        "하, 소녀기, 온스, 부, 하, 배, 부, 롯, 주, 하",  # the place
        "하, 쇼니옥이 꼼\ufffd",  # half a character
        "아,そ, 또",
    ],
)
def test_the_gate_refuses_garbage_syllables(text: str) -> None:
    assert verdict(text) == "garbage"


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        ({"logprob": -1.6}, "low_logprob"),
        ({"no_speech": 0.95}, "no_speech"),
        ({"ratio": 3.1}, "compressed"),
    ],
)
def test_the_gate_refuses_what_whisper_itself_doubts(signals: dict[str, float], reason: str) -> None:
    assert verdict("합정역 2번 출구 앞이에요", **signals) == reason


@pytest.mark.parametrize(
    ("text", "expectation"),
    [
        ("네, 맞아요", YES_NO),
        ("네, 접수해 주세요 맞아요", YES_NO),
        ("불법 주정차요", CATEGORY),
        ("저 이 차 좀 빼 주세요", None),
        ("마포구 합정동이요", DISTRICT),
        ("합정역 2번 출구 앞에 불법 주차된 차가 있어요", CATEGORY),
    ],
)
def test_the_gate_lets_real_answers_through(text: str, expectation: Expectation | None) -> None:
    assert verdict(text, expectation) == "ok"


def test_vosk_is_gated_by_its_word_confidence() -> None:
    assert judge(Transcript("네", "vosk", 0.01, confidence=0.95)).passed
    assert not judge(Transcript("네", "vosk", 0.01, confidence=0.3)).passed
    assert judge(Transcript("", "vosk", 0.01)).reason == "empty"


CONFIRM = [{"title": "네, 접수해 주세요", "payload": "/affirm"}, {"title": "고칠 게 있어요", "payload": "/deny"}]


@pytest.mark.parametrize(
    ("heard", "label"),
    [
        ("네, 맞아요", "네"),
        ("예 그렇게 해 주세요", "네"),
        ("네, 알겠습니다.", "네"),
        ("내 맞아요", "네"),
        ("아니요 구로구요", "아니요"),
        ("아니요 그게 아니고요", "아니요"),
        ("아니요, 괜찮아요. 조금 전에 마셨어요.", "아니요"),
        ("1번", "네"),
        ("일 번이요", "네"),
        ("이 번", "아니요"),
        ("하나요", "네"),
        ("두 번째요", "아니요"),
        ("예전에 살던 집이에요", None),  # 예 only as a word of its own
        ("네모난 상자가 있어요", None),
        ("날씨가 좋아요", None),  # a yes word counts only said first
        ("네 아니요", None),  # both: asked again
        ("리요", None),
    ],
)
def test_yes_and_no_the_way_people_say_them(heard: str, label: str | None) -> None:
    choice = after_reply("이대로 접수할까요?", CONFIRM, "utter_report_summary").match(heard)
    assert (choice.label if choice else None) == label


@pytest.mark.parametrize(
    ("heard", "district"),
    [
        ("마포구 합정동이요", "마포구"),
        ("아니요 구로구요", "구로구"),
        ("저 강서구에 사는데요", "강서구"),
        ("마포구 말고 구로구요", None),  # two districts: no margin, asked again
        ("집중구역이에요", None),  # 중구 only at the start of a word
        ("잘 모르겠어요", None),
    ],
)
def test_a_district_named_inside_a_sentence_counts(heard: str, district: str | None) -> None:
    choice = DISTRICT.match(heard)
    assert (choice.label if choice else None) == district


@pytest.mark.parametrize(
    ("heard", "key"),
    [
        ("1번", "1"),
        ("일 번이요", "1"),
        ("삼번이요", "3"),
        ("십 번", "10"),
        ("둘", "2"),
        ("셋이요", "3"),
        ("첫 번째", "1"),
        ("세 번째요", "3"),
        ("2번 출구 앞에 차가 서 있어요", None),  # a place, not a key
        ("이 차가 계속 서 있어요", None),
        ("오늘이요", None),
    ],
)
def test_numbers_said_in_words_are_keys(heard: str, key: str | None) -> None:
    assert spoken_key(words(heard)) == key


def test_a_spoken_key_picks_its_button_and_a_sentence_its_category() -> None:
    assert CATEGORY.match("일 번이요").label == "불법 주정차"  # type: ignore[union-attr]
    assert CATEGORY.match("구 번").label == "공사장"  # type: ignore[union-attr]
    assert CATEGORY.match("합정역 2번 출구 앞에 불법 주차된 차가 있어요").label == "불법 주정차"  # type: ignore[union-attr]
    # Inside a sentence only specific phrases count: "봉사" heard as 공사 does not make a building site.
    assert CATEGORY.match("저도 항상 공사를 하고 싶었는데 같이 가도 될까요?") is None
    assert CATEGORY.match("공사 소음이요") is None  # two options named: no margin, asked again


def test_decoding_options_parse() -> None:
    assert DecodeOptions.parse("beam=1,timestamps=0,temperatures=0+0.2,window=30") == DecodeOptions(
        1, False, (0.0, 0.2), False
    )
    assert DecodeOptions.parse("") == DecodeOptions()
    with pytest.raises(ValueError):
        DecodeOptions.parse("patience=2")
