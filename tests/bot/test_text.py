"""Text cleaning and command neutralisation."""

from __future__ import annotations

from bot.text import clean_text, neutralize_commands


def test_clean_text_drops_controls_and_normalises() -> None:
    assert clean_text("  가로\x00등\u200b \n\n\n\n고장 ") == "가로등 \n\n고장"
    assert clean_text("\u1100\u1161") == "가"  # conjoining jamo compose under NFC
    assert clean_text("\ufffd\ufffd") == ""
    assert clean_text("ㅎㅏㄴ") == "ㅎㅏㄴ"


def test_commands_become_plain_text() -> None:
    assert neutralize_commands("/affirm") == "／affirm"
    assert neutralize_commands("a/b") == "a/b"
