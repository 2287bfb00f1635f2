"""Complaint categories and their due dates in Korean working days."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from civic.errors import UnknownCategory
from civic.settings import get_settings

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"

CATEGORIES: tuple[str, ...] = (
    "illegal_parking",
    "illegal_banner",
    "illegal_dumping",
    "broken_sidewalk",
    "broken_streetlight",
    "noise",
    "sewer",
    "urban_facility",
    "construction",
    "safety",
)

# The Act counts periods of 5 days or fewer in office hours; day counting is only right above that.
MIN_DAYS = 6


def is_category(name: str) -> bool:
    """Whether `name` is one of the canonical category values."""
    return name in CATEGORIES


def check_category(name: str) -> str:
    """Return `name` if it is a category, else raise UnknownCategory."""
    if name not in CATEGORIES:
        raise UnknownCategory(name)
    return name


@cache
def processing_days() -> dict[str, int]:
    """Processing period of each category in working days, from data/categories.yml."""
    raw = yaml.safe_load((DATA_DIR / "categories.yml").read_text(encoding="utf-8"))
    days = {name: int(raw[name]["days"]) for name in CATEGORIES}
    short = [name for name, n in days.items() if n < MIN_DAYS]
    if short:
        raise ValueError(f"categories.yml: periods under {MIN_DAYS} days are counted in hours: {short}")
    return days


@cache
def holidays() -> frozenset[date]:
    """Korean public holidays (with substitute holidays) from data/holidays.yml."""
    raw = yaml.safe_load((DATA_DIR / "holidays.yml").read_text(encoding="utf-8"))
    return frozenset(day for year in raw.values() for day in year)


@cache
def _check_year_listed(year: int) -> None:
    # Once per year and process: a missing year silently shortens every due date, so say it loudly.
    if all(day.year != year for day in holidays()):
        log.warning("holidays.yml has no entries for %s; only weekends are skipped", year)


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a public holiday."""
    _check_year_listed(day.year)
    return day.weekday() < 5 and day not in holidays()


def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day counting `start` itself as the first when it is a working day."""
    day = start
    counted = 0
    while True:
        if is_working_day(day):
            counted += 1
            if counted == days:
                return day
        day += timedelta(days=1)


def due_date(category: str, filed_at: datetime) -> date:
    """The last day of the legal processing period of a complaint filed at `filed_at`."""
    check_category(category)
    if filed_at.tzinfo is None:
        raise ValueError("filed_at must be timezone-aware")
    local_day = filed_at.astimezone(ZoneInfo(get_settings().timezone)).date()
    return add_working_days(local_day, processing_days()[category])
