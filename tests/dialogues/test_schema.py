"""The conversation set's schema and the judging of filed cases, without a stack."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.dialogue_eval import Outcome, TurnError, failure_lines, rates, send
from tests.dialogues.schema import (
    Conversation,
    ExpectedCase,
    FiledCase,
    Observed,
    SetError,
    Turn,
    judge,
    judge_case,
    load_file,
    load_set,
    parse_conversation,
    parse_turn,
)

ADDRESS = ExpectedCase(
    category="broken_streetlight",
    district="마포구",
    place_contains=("망원시장", "망원로 8길"),
    place_not_contains=("틀렸",),
    description_contains=("가로등",),
    description_not_contains=("위치가 틀렸어요",),
)


def case(place: str, description: str = "가로등이 나갔어요", **fields: str) -> FiledCase:
    values = {"number": "SR-2026-000001", "category": "broken_streetlight", "district": "마포구"} | fields
    return FiledCase(place=place, description=description, **values)


def conversation(filed: tuple[ExpectedCase, ...] = (ADDRESS,), handoff: bool | None = None) -> Conversation:
    return Conversation("ko-x", "ko", "note", (Turn(text="가로등이 나갔어요"),), filed, handoff)


def test_the_set_has_enough_conversations_per_language() -> None:
    conversations = load_set()
    per_language = Counter(c.language for c in conversations)
    assert len(conversations) >= 60 and all(per_language[lang] >= 20 for lang in ("ko", "en", "ja")), per_language
    for lang in ("ko", "en", "ja"):
        mine = [c for c in conversations if c.language == lang]
        assert any(not c.filed for c in mine) and any(c.handoff for c in mine)
        assert any(t.tap for c in mine for t in c.turns) and any(t.when_asked for c in mine for t in c.turns)


def test_load_set_narrows_by_language_and_id() -> None:
    assert {c.language for c in load_set(languages=("en",))} == {"en"}
    assert [c.id for c in load_set(only="ja-one-message")] == ["ja-one-message"]
    with pytest.raises(SetError, match="no conversation"):
        load_set(only="nope")


def test_turn_forms() -> None:
    assert parse_turn("네", "t") == Turn(text="네")
    assert parse_turn({"tap": "/affirm", "when_asked": "confirm_report"}, "t") == Turn(
        tap="/affirm", when_asked=frozenset({"confirm_report"})
    )
    assert parse_turn({"gps": [37.5, 127]}, "t").gps == (37.5, 127.0)
    either = parse_turn({"text": "마포구", "when_asked": ["district", "place"]}, "t")
    assert either.wanted("place") and not either.wanted("description") and not either.wanted(None)
    assert Turn(text="x").wanted(None)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"text": "a", "tap": "/affirm"}, "exactly one"),
        ({"text": "a", "whenasked": "place"}, "unknown keys"),
        ({"text": "a", "when_asked": "street"}, "unknown slots"),
        ({"tap": "affirm"}, "button payload"),
        ({"gps": [1]}, "latitude"),
        ({"text": "  "}, "non-empty"),
        (True, "string or a mapping"),
    ],
)
def test_malformed_turns_are_refused(raw: object, message: str) -> None:
    with pytest.raises(SetError, match=message):
        parse_turn(raw, "t")


def test_conversation_expectations() -> None:
    raw = {"id": "c", "note": "n", "turns": ["가로등이 나갔어요"], "filed": "none", "handoff": True}
    assert parse_conversation(raw, "ko", "f").filed == ()
    one = {"category": "noise", "district": "관악구", "place_contains": "신림역", "description_contains": ["노래"]}
    assert parse_conversation(raw | {"filed": one}, "ko", "f").filed[0].place_contains == ("신림역",)
    assert len(parse_conversation(raw | {"filed": [one, one]}, "ko", "f").filed) == 2
    with pytest.raises(SetError, match="Seoul gu"):
        parse_conversation(raw | {"filed": one | {"district": "부천시"}}, "ko", "f")
    with pytest.raises(SetError, match="category"):
        parse_conversation(raw | {"filed": one | {"category": "potholes"}}, "ko", "f")
    with pytest.raises(SetError, match="place"):
        parse_conversation(raw | {"filed": {k: v for k, v in one.items() if k != "place_contains"}}, "ko", "f")
    with pytest.raises(SetError, match="filed is"):
        parse_conversation(raw | {"filed": None}, "ko", "f")
    with pytest.raises(SetError, match="first turn"):
        parse_conversation(raw | {"turns": [{"text": "네", "when_asked": "place"}]}, "ko", "f")


def test_repeated_ids_are_refused(tmp_path: Path) -> None:
    body = "conversations:\n  - {id: same, note: n, turns: [가로등], filed: none}\n"
    for lang in ("ko", "en", "ja"):
        (tmp_path / f"{lang}.yml").write_text(f"language: {lang}\n{body}", encoding="utf-8")
    assert len(load_file(tmp_path / "ko.yml")) == 1
    with pytest.raises(SetError, match="used twice"):
        load_set(tmp_path)


def test_a_place_kept_whole_passes_and_one_cut_short_fails() -> None:
    assert judge_case(ADDRESS, case("망원시장 뒤쪽 골목, 망원로8길 입구"), []) == []  # spacing is not judged
    problems = judge_case(ADDRESS, case("망원시장 뒤쪽"), [])
    assert problems == ["place '망원시장 뒤쪽' lacks '망원로 8길'"]


def test_a_correction_in_the_description_or_the_place_fails() -> None:
    wrong = case("망원시장 뒤쪽 골목, 망원로 8길", description="가로등이 나갔어요 위치가 틀렸어요")
    assert judge_case(ADDRESS, wrong, []) == [f"description {wrong.description!r} has '위치가 틀렸어요'"]
    assert judge_case(ADDRESS, case("틀렸어요 망원시장 망원로 8길"), []) == [
        "place '틀렸어요 망원시장 망원로 8길' has '틀렸'"
    ]


def test_a_description_that_is_the_place_answer_fails() -> None:
    lenient = ExpectedCase("broken_streetlight", "마포구", place_contains=("망원시장",), description_contains=("망원",))
    filed = case("망원시장 앞", description="망원시장 앞이요")
    assert judge_case(lenient, filed, ["망원시장 앞이요"]) == ["description '망원시장 앞이요' is the place answer"]
    assert judge_case(lenient, case("망원시장 앞", description="망원시장 앞"), []) == [
        "description '망원시장 앞' is the place answer"
    ]


def test_category_and_district_are_exact() -> None:
    problems = judge_case(ADDRESS, case("망원시장 망원로 8길", category="safety", district="구로구"), [])
    assert problems == ["category 'safety', expected 'broken_streetlight'", "district '구로구', expected '마포구'"]
    exact = ExpectedCase("broken_streetlight", "마포구", place="망원시장 앞", description_contains=("가로등",))
    assert judge_case(exact, case("망원시장  앞"), []) == []
    assert judge_case(exact, case("망원시장 앞이요"), []) == ["place '망원시장 앞이요', expected '망원시장 앞'"]


def test_judge_counts_cases_and_checks_the_handoff() -> None:
    right = case("망원시장 뒤쪽 골목, 망원로 8길 입구")
    assert judge(conversation(), Observed([right])) == []
    assert judge(conversation(), Observed([])) == ["0 case(s) filed, expected 1: nothing"]
    assert judge(conversation(()), Observed([right]))[0].startswith("1 case(s) filed, expected 0: SR-2026-000001")
    assert judge(conversation((), handoff=True), Observed([], handoff=False)) == ["no operator was asked for"]
    assert judge(conversation((), handoff=True), Observed([], handoff=True)) == []
    assert judge(conversation(), Observed([right], handoff=True)) == []  # not asked about: not judged


def test_rates_and_failure_lines() -> None:
    good = Outcome(conversation(), [])
    bad = Outcome(conversation(), ["0 case(s) filed, expected 1: nothing"], [{"turn": 0, "bot": "어느  구인가요?"}])
    table = rates([good, bad, Outcome(Conversation("en-x", "en", "n", (), ()), [])])
    assert table == {
        "ko": {"conversations": 2, "succeeded": 1, "rate": 0.5},
        "en": {"conversations": 1, "succeeded": 1, "rate": 1.0},
    }
    assert failure_lines([good, bad]) == ["FAIL ko-x: 0 case(s) filed, expected 1: nothing | bot: 어느 구인가요?"]


class FakeChat:
    """Records what the runner sends, as ChatClient.send would post it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def send(self, text: str = "", **extra: object) -> httpx.Response:
        self.sent.append((text, extra))
        return httpx.Response(200, json={"replies": [{"id": 1, "text": "ok", "buttons": []}]})


def test_a_tap_sends_the_offered_buttons_title_and_a_missing_button_fails() -> None:
    chat = FakeChat()
    offered = [{"text": "접수할까요?", "buttons": [{"title": "네, 접수해 주세요", "payload": "/affirm"}]}]
    send(chat, Turn(tap="/affirm"), offered, None)  # type: ignore[arg-type]
    assert chat.sent == [("네, 접수해 주세요", {"payload": "/affirm"})]
    with pytest.raises(TurnError, match="no /deny button"):
        send(chat, Turn(tap="/deny"), offered, None)  # type: ignore[arg-type]


def test_case_placeholder_and_gps() -> None:
    chat = FakeChat()
    send(chat, Turn(text="{case} 어떻게 됐어요?"), [], "SR-2026-000012")  # type: ignore[arg-type]
    send(chat, Turn(gps=(37.5, 127.0)), [], None)  # type: ignore[arg-type]
    assert chat.sent == [("SR-2026-000012 어떻게 됐어요?", {}), ("", {"latitude": 37.5, "longitude": 127.0})]
    with pytest.raises(TurnError, match="no case number"):
        send(chat, Turn(text="{case} 취소"), [], None)  # type: ignore[arg-type]
