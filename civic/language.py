"""Detects a message's language (ko, ja, en) from its script; standard library only (the Rasa venv imports it too)."""

from __future__ import annotations

import re

LANGUAGES = ("ko", "en", "ja")
# A case number ("SR-2026-000123") is Latin but no sign of English: it is sent as-is in every language.
CASE_NUMBER = re.compile(r"\bsr[-\s]?\d{4}[-\s]?\d{1,6}\b", re.IGNORECASE)


def detect_language(text: str) -> str | None:
    """ko when Hangul dominates, ja for kana or Hangul-less kanji, en for Latin words, else None."""
    hangul = kana = han = latin = 0
    for ch in CASE_NUMBER.sub(" ", text):
        code = ord(ch)
        if 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
            kana += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            han += 1
        elif ch.isascii() and ch.isalpha():
            latin += 1
    # Korean text often carries a Latin case number; Japanese text may be kanji only ("麻浦区").
    if hangul and hangul >= kana:
        return "ko"
    if kana or han:
        return "ja"
    if latin >= 2:
        return "en"
    return None
