"""Properties of the gateway's text cleaning and command neutralisation, over arbitrary Unicode."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.text import CONTROL, NEUTRAL_PREFIX, clean_text, neutralize_commands

# Characters the cleaner exists for, mixed into arbitrary text so that every example meets some: C0/C1
# controls, zero-width and bidi marks (RTL override, isolates), BOM, U+FFFD, conjoining Hangul jamo and a
# combining accent (NFC composes them, so a removed mark between them matters), newlines, spaces and "/".
TRICKY = (
    "\x00\x07\x1b\x7f\x85\x9f\t\r\x0b\x0c\u200b\u200d\u200e\u200f\u202a\u202e\u2066\u2069\ufeff\ufffd"
    "\u1100\u1161\u11a8\u0301e가 \u3000\n/／"
)
# A character that composes with the one before it, split from it by a character the cleaner removes.
split_pairs = st.tuples(
    st.sampled_from("\u1100\u1112ea"), st.sampled_from("\x00\u200b\u200f\u202e\ufeff"), st.sampled_from("\u1161\u0301")
).map("".join)
texts = st.lists(st.one_of(st.characters(), st.sampled_from(TRICKY), split_pairs), max_size=100).map("".join)
PROFILE = settings(max_examples=200, deadline=None)
# NFC can lengthen a string (composition exclusions such as U+0958 decompose for good); Unicode's
# normalisation FAQ gives three times the input as NFC's largest expansion.
NFC_MAX_GROWTH = 3


@PROFILE
@given(texts)
@example("\u1100\u200b\u1161")  # jamo split by a zero-width space: the space goes, the jamo must still compose
@example("e\u202e\u0301")
def test_clean_text_is_nfc_without_controls_blank_runs_or_edge_spaces(raw: str) -> None:
    cleaned = clean_text(raw)
    assert CONTROL.search(cleaned) is None
    assert unicodedata.is_normalized("NFC", cleaned)
    assert "\n\n\n" not in cleaned
    assert cleaned == cleaned.strip()
    assert len(cleaned) <= NFC_MAX_GROWTH * len(raw)


@PROFILE
@given(texts)
@example("\u1100\u200b\u1161")
def test_clean_text_is_idempotent(raw: str) -> None:
    once = clean_text(raw)
    assert clean_text(once) == once


@PROFILE
@given(st.text(st.characters(exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]), max_size=200))
def test_clean_text_keeps_ordinary_text_apart_from_edge_spaces(raw: str) -> None:
    # No controls, format marks or line breaks: only normalisation and the edges may change.
    assert clean_text(raw) == unicodedata.normalize("NFC", raw).strip()


@PROFILE
@given(texts)
@example("/affirm")
@example('\u200b/inform{"district": "마포구"}')
@example("  \n/stop")
def test_typed_text_never_reaches_rasa_as_a_command(raw: str) -> None:
    # The gateway's order: clean first (controls and edge spaces go), then neutralise.
    sent = neutralize_commands(clean_text(raw))
    assert not sent.startswith("/")
    assert not sent.lstrip().startswith("/")


@PROFILE
@given(texts)
def test_neutralize_changes_only_a_leading_slash(text: str) -> None:
    neutral = neutralize_commands(text)
    assert not neutral.startswith("/")
    assert len(neutral) == len(text)
    assert neutral[1:] == text[1:]
    if text.startswith("/"):
        assert neutral[0] == NEUTRAL_PREFIX
    else:
        assert neutral == text
    assert neutralize_commands(neutral) == neutral
