"""Cleaning citizen text before it is stored or sent to Rasa."""

from __future__ import annotations

import re
import unicodedata

# Control and format characters except tab/newline; junk bytes decode to U+FFFD, dropped too.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
COMMAND_PREFIX = "/"
NEUTRAL_PREFIX = "\uff0f"  # FULLWIDTH SOLIDUS: looks like "/" to people, means nothing to Rasa.


def clean_text(raw: str) -> str:
    """NFC-normalised text without control characters, runs of blank lines, or edge spaces."""
    # Controls go before normalising: a mark removed between two conjoining jamo (or a letter and its
    # accent) must not leave them uncomposed, which would make the result non-NFC and cleaning not idempotent.
    text = CONTROL.sub("", raw)
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def neutralize_commands(text: str) -> str:
    """User text starting with "/" would be read by Rasa as an intent with entities; make it plain text."""
    if text.startswith(COMMAND_PREFIX):
        return NEUTRAL_PREFIX + text[1:]
    return text
