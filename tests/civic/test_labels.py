"""Districts and their aliases; ko/en/ja labels and dates."""

from __future__ import annotations

from datetime import date

import pytest

from civic.categories import CATEGORIES
from civic.districts import DISTRICTS, district_names, is_district, resolve_district
from civic.i18n import LANGUAGES, category_label, district_label, format_date, status_label
from civic.workflow import CaseStatus


def test_districts() -> None:
    assert len(DISTRICTS) == 25 and "마포구" in DISTRICTS and "중구" in DISTRICTS
    assert is_district("강남구") and not is_district("강남") and not is_district("Mapo-gu")
    assert all(names.ja_kanji.endswith("区") for names in district_names().values())


@pytest.mark.parametrize(
    ("text", "gu"),
    [("마포구", "마포구"), ("마포", "마포구"), ("Mapo-gu", "마포구"), ("mapo", "마포구"),
     ("麻浦区", "마포구"), ("マポ区", "마포구"), ("Jung-gu", "중구"), ("中区", "중구"),
     ("중", None), ("동작", None), ("부산", None)],
)  # fmt: skip
def test_resolve_district(text: str, gu: str | None) -> None:
    assert resolve_district(text) == gu


def test_labels_exist_in_every_language() -> None:
    for lang in LANGUAGES:
        for status in CaseStatus:
            assert status_label(status, lang) != status.value
        for category in CATEGORIES:
            assert category_label(category, lang) != category


def test_labels() -> None:
    assert status_label(CaseStatus.IN_PROGRESS, "ko") == "처리 중"
    assert category_label("noise", "ja") == "騒音"
    assert district_label("마포구", "en") == "Mapo-gu"
    assert district_label("마포구", "ja") == "麻浦区"
    assert district_label("마포구", "fr") == "마포구"  # unknown language → Korean
    assert status_label("resolved", None) == "처리 완료"


def test_format_date() -> None:
    d = date(2026, 12, 4)
    assert format_date(d, "ko") == "2026년 12월 4일"
    assert format_date(d, "en") == "4 December 2026"
    assert format_date(d, "ja") == "2026年12月4日"
    assert format_date(d, "xx") == "2026년 12월 4일"
