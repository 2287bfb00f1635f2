"""Due dates in Korean working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from civic.categories import CATEGORIES, due_date, holidays, is_working_day, processing_days
from civic.errors import UnknownCategory

KST = timezone(timedelta(hours=9))


def test_every_category_has_a_period() -> None:
    assert len(CATEGORIES) == 10
    assert set(processing_days()) == set(CATEGORIES)
    assert processing_days()["illegal_parking"] == 7
    assert processing_days()["broken_sidewalk"] == 14


def test_holidays_include_substitutes() -> None:
    days = holidays()
    for day in (date(2026, 2, 17), date(2026, 3, 2), date(2026, 5, 25), date(2027, 2, 9), date(2027, 10, 11)):
        assert day in days
    assert not is_working_day(date(2026, 3, 2)) and is_working_day(date(2026, 3, 3))


@pytest.mark.parametrize(
    ("filed", "category", "due"),
    [
        # Ordinary week: Mon + 6 working days, weekend skipped.
        (datetime(2026, 4, 6, 10, tzinfo=KST), "noise", date(2026, 4, 14)),
        # Friday before Seollal: the 16th–18th do not count.
        (datetime(2026, 2, 13, 10, tzinfo=KST), "illegal_parking", date(2026, 2, 26)),
        # Filed on a Saturday: counting starts on the next working day.
        (datetime(2026, 2, 14, 10, tzinfo=KST), "illegal_parking", date(2026, 2, 27)),
        # Filed on the substitute holiday for 삼일절.
        (datetime(2026, 3, 2, 9, tzinfo=KST), "illegal_dumping", date(2026, 3, 11)),
        # 16:00 UTC on the 12th is already the 13th in Seoul.
        (datetime(2026, 2, 12, 16, tzinfo=UTC), "illegal_parking", date(2026, 2, 26)),
        # 14 working days across Chuseok, the 개천절 substitute holiday and 한글날.
        (datetime(2026, 9, 21, 9, tzinfo=KST), "broken_sidewalk", date(2026, 10, 14)),
    ],
)
def test_due_date(filed: datetime, category: str, due: date) -> None:
    assert due_date(category, filed) == due


def test_due_date_refuses_bad_input() -> None:
    with pytest.raises(UnknownCategory):
        due_date("graffiti", datetime(2026, 4, 6, tzinfo=KST))
    with pytest.raises(ValueError):
        due_date("noise", datetime(2026, 4, 6))
