"""The console dashboard's figures: counts by status, category, district and channel, medians, overdue cases."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Float, Select, cast, func, select
from sqlalchemy.orm import Session

from civic.categories import CATEGORIES
from civic.db import utcnow
from civic.districts import DISTRICTS
from civic.models import Case, CaseEvent
from civic.settings import get_settings
from civic.workflow import CaseStatus

CHANNELS: tuple[str, ...] = ("web", "telegram", "phone", "rest")
STATUSES: tuple[str, ...] = tuple(status.value for status in CaseStatus)
# A case stops counting as overdue once nobody has to act on it any more.
CLOSED_STATUSES: tuple[str, ...] = (CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.WITHDRAWN)
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s not in CLOSED_STATUSES)
MEDIAN_WINDOW_DAYS = 30
MEDIAN_CACHE_SECONDS = 60.0
_median_cache: dict[tuple[str, int | None], tuple[float, tuple[float | None, float | None]]] = {}
_median_lock = threading.Lock()


@dataclass(frozen=True)
class DashboardStats:
    """Everything the dashboard shows, for the whole city or one department."""

    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_district: dict[str, int]
    overdue: int
    overdue_by_category: dict[str, int]
    today_by_channel: dict[str, int]
    median_acceptance_seconds: float | None
    median_resolution_seconds: float | None
    today: date  # the city's local date the figures were taken on
    window_days: int = MEDIAN_WINDOW_DAYS

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["today"] = self.today.isoformat()
        return data


def _counts(session: Session, column: Any, keys: tuple[str, ...], scope: ColumnElement[bool] | None) -> dict[str, int]:
    query: Select[Any] = select(column, func.count()).group_by(column)
    if scope is not None:
        query = query.where(scope)
    found = {str(key): int(n) for key, n in session.execute(query).all()}
    # Known keys first, in their usual order and with zeros, so charts keep their shape; strays after.
    return {key: found.pop(key, 0) for key in keys} | found


def local_day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of `day` in the city, as an aware datetime (compared with stored UTC times)."""
    return datetime.combine(day, time.min, tzinfo=zone)


def _seconds_between(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    # SQLite keeps datetimes as ISO text; julianday turns them into fractional days.
    return cast((func.julianday(later) - func.julianday(earlier)) * 86400.0, Float)


def median_seconds(session: Session, to_status: str, since: datetime, department_id: int | None = None) -> float | None:
    """Median time from filing to a case's first `to_status` event among those events since `since`.

    The median is taken in the database (window functions exist on SQLite and PostgreSQL alike), so
    tens of thousands of durations never travel to Python.
    """
    reached = (
        select(CaseEvent.case_id, func.min(CaseEvent.created_at).label("at"))
        .where(CaseEvent.to_status == to_status, CaseEvent.created_at >= since)
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    seconds = _seconds_between(session, reached.c.at, Case.created_at)
    durations = select(seconds.label("d")).select_from(reached).join(Case, Case.id == reached.c.case_id)
    if department_id is not None:
        durations = durations.where(Case.department_id == department_id)
    d = durations.subquery().c.d
    ranked = select(d, func.row_number().over(order_by=d).label("rn"), func.count().over().label("n")).subquery()
    # The middle row, or the two middle rows of an even count, averaged.
    middle = select(func.avg(ranked.c.d)).where(ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))
    value = session.execute(middle).scalar_one_or_none()
    return None if value is None else float(value)


def _medians(
    session: Session, department_id: int | None, now: datetime, *, cached: bool
) -> tuple[float | None, float | None]:
    since = now - timedelta(days=MEDIAN_WINDOW_DAYS)
    key = (str(session.get_bind().engine.url), department_id)
    with _median_lock:
        hit = _median_cache.get(key)
    if cached and hit is not None and hit[0] > monotonic():
        return hit[1]
    medians = (
        median_seconds(session, CaseStatus.ACCEPTED, since, department_id),
        median_seconds(session, CaseStatus.RESOLVED, since, department_id),
    )
    with _median_lock:
        _median_cache[key] = (monotonic() + MEDIAN_CACHE_SECONDS, medians)
    return medians


def dashboard_stats(
    session: Session, department_id: int | None = None, now: datetime | None = None, *, cached: bool = True
) -> DashboardStats:
    """The dashboard's figures, city-wide or for one department (what an official sees).

    Counts are always live. The two medians sort tens of thousands of durations, and over a 30-day window
    they barely move in a minute, so they are reused for MEDIAN_CACHE_SECONDS per database and scope
    (not when `now` is given, as tests do, nor with cached=False).
    """
    cached = cached and now is None
    now = now or utcnow()
    zone = ZoneInfo(get_settings().timezone)
    today = now.astimezone(zone).date()
    scope = None if department_id is None else Case.department_id == department_id

    def where(*conditions: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        return [*conditions, *([] if scope is None else [scope])]

    by_status = _counts(session, Case.status, STATUSES, scope)
    # Grouped by status first so an index on (status, due_at) serves both the filter and the grouping;
    # grouped by category alone, SQLite walks a category index over every case instead.
    overdue_query = (
        select(Case.status, Case.category, func.count())
        .where(*where(Case.status.in_(OPEN_STATUSES), Case.due_at < today))
        .group_by(Case.status, Case.category)
    )
    overdue_by_category = dict.fromkeys(CATEGORIES, 0)
    for _, category, n in session.execute(overdue_query).all():
        overdue_by_category[str(category)] = overdue_by_category.get(str(category), 0) + int(n)
    today_query = (
        select(Case.channel, func.count())
        .where(*where(Case.created_at >= local_day_start(today, zone)))
        .group_by(Case.channel)
    )
    today_found = {str(k): int(n) for k, n in session.execute(today_query).all()}
    medians = _medians(session, department_id, now, cached=cached)
    return DashboardStats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_category=_counts(session, Case.category, CATEGORIES, scope),
        by_district=_counts(session, Case.district, DISTRICTS, scope),
        overdue=sum(overdue_by_category.values()),
        overdue_by_category=overdue_by_category,
        today_by_channel={key: today_found.pop(key, 0) for key in CHANNELS} | today_found,
        median_acceptance_seconds=medians[0],
        median_resolution_seconds=medians[1],
        today=today,
    )
