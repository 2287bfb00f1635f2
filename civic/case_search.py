"""Case search for the console: filters, newest-first pages, and keyset chunks for the CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import normalize_case_number
from civic.console_stats import OPEN_STATUSES, local_day_start
from civic.db import session_scope, utcnow
from civic.models import Case, Department
from civic.settings import get_settings

PAGE_SIZE = 50
EXPORT_CHUNK = 1000
MAX_QUERY_CHARS = 100


@dataclass(frozen=True)
class CaseFilter:
    """What the console asked for; empty strings and None mean "any"."""

    q: str = ""
    status: str = ""
    category: str = ""
    district: str = ""
    channel: str = ""
    date_from: date | None = None  # the city's local dates, both ends included
    date_to: date | None = None
    department: str = ""  # a department code
    overdue: bool = False  # only open cases past their due date

    def to_json(self) -> dict[str, str]:
        """The filters that are set, as query parameters (for links, the audit log and the CSV link)."""
        values = {
            "q": self.q,
            "status": self.status,
            "category": self.category,
            "district": self.district,
            "channel": self.channel,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "department": self.department,
            "overdue": "1" if self.overdue else "",
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class CaseHit:
    """One found case with what the list and the export show."""

    id: int
    number: str
    created_at: datetime
    status: str
    category: str
    district: str
    dong: str | None
    place: str
    description: str
    channel: str
    department_code: str
    department_name: str
    due_at: date


@dataclass(frozen=True)
class SearchPage:
    """One page of hits, newest first."""

    hits: list[CaseHit]
    page: int
    has_next: bool
    filters: CaseFilter = field(default_factory=CaseFilter)


def _like(text: str) -> str:
    # The citizen's % and _ are letters here, not wildcards.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(filters: CaseFilter, department_id: int | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if department_id is not None:  # an official's scope: added to, never replaced by, the department filter
        conditions.append(Case.department_id == department_id)
    q = filters.q.strip()[:MAX_QUERY_CHARS]
    if q:
        number = normalize_case_number(q)
        if number is not None:
            conditions.append(Case.number == number)  # the unique index answers at once
        else:
            pattern = _like(q)
            conditions.append(
                or_(
                    Case.number.ilike(pattern, escape="\\"),
                    Case.place.ilike(pattern, escape="\\"),
                    Case.description.ilike(pattern, escape="\\"),
                )
            )
    for column, value in (
        (Case.status, filters.status),
        (Case.category, filters.category),
        (Case.district, filters.district),
        (Case.channel, filters.channel),
    ):
        if value:
            conditions.append(column == value)
    if filters.department:
        conditions.append(Department.code == filters.department)
    zone = ZoneInfo(get_settings().timezone)
    if filters.overdue:
        conditions += [Case.status.in_(OPEN_STATUSES), Case.due_at < utcnow().astimezone(zone).date()]
    if filters.date_from:
        conditions.append(Case.created_at >= local_day_start(filters.date_from, zone))
    if filters.date_to:
        conditions.append(Case.created_at < local_day_start(filters.date_to + timedelta(days=1), zone))
    return conditions


def _query(filters: CaseFilter, department_id: int | None) -> Select[*tuple[Any, ...]]:
    # Newest by id: ids follow filing order, and the primary key lets a LIMIT stop early.
    query: Select[*tuple[Any, ...]] = (
        select(
            Case.id,
            Case.number,
            Case.created_at,
            Case.status,
            Case.category,
            Case.district,
            Case.dong,
            Case.place,
            Case.description,
            Case.channel,
            Department.code,
            Department.name_ko,
            Case.due_at,
        )
        .join(Department, Department.id == Case.department_id)
        .where(*_conditions(filters, department_id))
        .order_by(Case.id.desc())
    )
    return query


def _hits(session: Session, query: Select[*tuple[Any, ...]]) -> list[CaseHit]:
    return [CaseHit(*row) for row in session.execute(query).all()]


def search_cases(
    session: Session, filters: CaseFilter, *, department_id: int | None = None, page: int = 1, per_page: int = PAGE_SIZE
) -> SearchPage:
    """Page `page` (from 1) of the cases matching `filters`, newest first; `department_id` scopes an official."""
    page = max(1, page)
    # One row more than shown tells whether a next page exists, without counting every match.
    query = _query(filters, department_id).offset((page - 1) * per_page).limit(per_page + 1)
    hits = _hits(session, query)
    return SearchPage(hits=hits[:per_page], page=page, has_next=len(hits) > per_page, filters=filters)


def export_chunks(
    factory: sessionmaker[Session], filters: CaseFilter, *, department_id: int | None = None, chunk: int = EXPORT_CHUNK
) -> Iterator[list[CaseHit]]:
    """Every matching case, newest first, in chunks each read in its own short transaction.

    A long download must not hold a transaction open (on SQLite every transaction takes the write lock),
    so each chunk starts below the last id of the one before.
    """
    before: int | None = None
    while True:
        query = _query(filters, department_id).limit(chunk)
        if before is not None:
            query = query.where(Case.id < before)
        with session_scope(factory) as session:
            hits = _hits(session, query)
        if not hits:
            return
        yield hits
        if len(hits) < chunk:
            return
        before = hits[-1].id
