"""Script-based language detection, shared by the gateway and Rasa's language component."""

from __future__ import annotations

import pytest

from civic.language import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("마포구 가로등이 나갔어요", "ko"),
        ("SR-2026-000123 처리 상황 알려주세요", "ko"),
        ("The streetlight on my street is out", "en"),
        ("麻浦区の街灯が消えています", "ja"),
        ("麻浦区", "ja"),
        ("status of SR-2026-000123", "en"),
    ],
)
def test_languages_by_script(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["SR-2026-000123", "sr 2026 000123", "123", "", "!!", "/"])
def test_text_without_words_tells_no_language(text: str) -> None:
    assert detect_language(text) is None
