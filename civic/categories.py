"""Complaint categories and their due dates in Korean working days (data/categories.yml, admins' overrides)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from civic.errors import UnknownCategory
from civic.models import CategoryDeadline
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
# An admin's period above this is almost surely a typo: the Act's periods for these complaints are weeks, not months.
MAX_DAYS = 90


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


def _last_day(filed_at: datetime, days: int) -> date:
    if filed_at.tzinfo is None:
        raise ValueError("filed_at must be timezone-aware")
    local_day = filed_at.astimezone(ZoneInfo(get_settings().timezone)).date()
    return add_working_days(local_day, days)


def due_date(category: str, filed_at: datetime) -> date:
    """The last day of the period categories.yml gives a complaint filed at `filed_at` (no database needed)."""
    check_category(category)
    return _last_day(filed_at, processing_days()[category])


# Read at every filing, never cached, so a change holds at once in every process; built once, like routing's.
_OVERRIDE_LOOKUP = select(CategoryDeadline.days).where(CategoryDeadline.category == bindparam("category"))


def overridden_days(session: Session, category: str) -> int | None:
    """The period an admin set for the category in the console (category_deadlines), if any."""
    return session.execute(_OVERRIDE_LOOKUP, {"category": category}).scalar_one_or_none()


def processing_days_for(session: Session, category: str) -> int:
    """The category's period in working days: an admin's override, else categories.yml's."""
    check_category(category)
    days = overridden_days(session, category)
    return days if days is not None else processing_days()[category]


def due_date_for(session: Session, category: str, filed_at: datetime) -> date:
    """The last day of the legal processing period of a complaint filed at `filed_at`, honouring admins' periods."""
    return _last_day(filed_at, processing_days_for(session, category))
