"""The 120 line knows a bot reply by its response name: never by its wording, and only names domain.yml has."""

from __future__ import annotations

import re
from pathlib import Path

from bot.gateway import Outcome, Reply
from telephony import phone_texts as say
from telephony.phone_line import speak
from tests.domain import domain_responses

ROOT = Path(__file__).resolve().parents[2]
REWORDED = "domain.yml reworded this text in a way no code can have expected"


def spoken_for(*replies: Reply) -> tuple[str, str | None, bool, bool]:
    """(spoken prompt, the response the next turn answers, hand off, hang up) for one bot turn."""
    prompt, expectation, hand_off, hang_up = speak(Outcome("answered", list(replies), "ko"))
    return prompt, None if expectation is None else expectation.response, hand_off, hang_up


def bot(name: str | None, text: str = REWORDED, buttons: list[dict[str, str]] | None = None) -> Reply:
    return Reply(1, text, buttons or [], response=name)


def test_every_response_the_phone_code_names_is_in_the_domain() -> None:
    named = {
        name
        for path in (ROOT / "telephony").glob("*.py")
        for name in re.findall(r"[\"'](utter_[a-z_]+)[\"']", path.read_text(encoding="utf-8"))
    }
    keys = set(say.PHONE_FORMS) | set(say.PHONE_SUFFIXES) | set(say.UNSPOKEN)
    assert keys <= named and {"utter_handoff_recorded", "utter_goodbye", "utter_ask_district"} <= named
    assert named - domain_responses() == set()


def test_the_phone_form_is_picked_by_name_whatever_the_chat_text_says() -> None:
    for name, phone_form in say.PHONE_FORMS.items():
        prompt, asked, _, _ = spoken_for(bot(name))
        assert prompt.startswith(phone_form) and REWORDED not in prompt, name
        assert asked == name


def test_a_reworded_question_still_gets_its_grammar_and_keys() -> None:
    prompt, asked, _, _ = spoken_for(bot("utter_ask_district", "어느 동네예요?"))
    assert asked == "utter_ask_district" and prompt.startswith(say.PHONE_FORMS["utter_ask_district"])
    # The old Korean wording without its name is just a text read aloud: nothing recognises it.
    prompt, asked, _, _ = spoken_for(bot(None, "서울 어느 구인가요? (예: 마포구, 강남구)"))
    assert asked is None and prompt.startswith("서울 어느 구인가요?")


def test_suffixes_unspoken_texts_hand_off_and_goodbye_go_by_name() -> None:
    prompt, asked, _, _ = spoken_for(bot("utter_case_filed", "SR-2026-000123 접수"))
    assert prompt.startswith("SR 2026, 0 0 0 1 2 3 접수." + say.PHONE_SUFFIXES["utter_case_filed"])
    assert asked == "utter_case_filed"
    prompt, asked, _, _ = spoken_for(bot("utter_photo_received"), bot("utter_ask_description", "무슨 일이에요?"))
    assert prompt == "무슨 일이에요?" and asked == "utter_ask_description"
    assert spoken_for(bot("utter_handoff_recorded")) == ("", None, True, False)
    assert spoken_for(bot("utter_goodbye", "잘 가요"))[3] is True
    # A gateway text (no name) is read as it is, and never taken for the hand-off or goodbye.
    assert spoken_for(Reply(2, "안녕히 가세요", sender="system"))[2:] == (False, False)
