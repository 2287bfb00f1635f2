"""Open311 GeoReport v2 over our cases: services, service definitions, request queries and the public mapping."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.cases import normalize_case_number
from civic.categories import CATEGORIES
from civic.db import utcnow
from civic.districts import DISTRICTS
from civic.i18n import category_label, district_label, language
from civic.models import Case, CaseEvent, Department
from civic.settings import get_settings
from civic.workflow import CaseStatus

SERVICES_FILE = Path(__file__).resolve().parent / "data" / "open311_services.yml"
CLOSED_STATUSES = frozenset({CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.WITHDRAWN})
DEFAULT_DAYS = 90
MAX_PAGE_SIZE = 1000
MAX_IDS = 1000
# A chat report may carry a phone number or an email in its text: never published (PIPA).
# Korean numbers only (mobile, Seoul 02, regions, 070), so dates and case numbers in the text stay readable.
_PERSONAL = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?<!\d)(?:\+82[-.\s]?|0)(?:1[016789]|2|[3-6][1-5]|70)[-.\s)]?\d{3,4}[-.\s]?\d{4}(?!\d)"
)
REDACTED = "[개인정보 삭제]"


class Open311Error(Exception):
    """A GeoReport error: the HTTP status (also the error's code) and a description for the client."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@cache
def _service_texts() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(SERVICES_FILE.read_text(encoding="utf-8"))
    return raw


def check_jurisdiction(jurisdiction_id: str | None) -> None:
    """jurisdiction_id is optional (we serve one city); when given it must be ours (404 otherwise)."""
    if jurisdiction_id and jurisdiction_id != get_settings().open311_jurisdiction_id:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id!r} not found: this endpoint serves seoul.go.kr")


def check_service(service_code: str) -> str:
    """The category `service_code` names; Open311Error 404 when it names none."""
    if service_code not in CATEGORIES:
        raise Open311Error(404, f"service_code {service_code!r} not found")
    return service_code


def services(*, lang: str) -> list[dict[str, Any]]:
    """GET services: the ten categories, named in `lang`."""
    texts, lang = _service_texts(), language(lang)
    return [
        {
            "service_code": code,
            "service_name": category_label(code, lang),
            "description": texts["services"][code]["description"][lang],
            "metadata": True,
            "type": "realtime",
            "keywords": ", ".join(texts["services"][code]["keywords"][lang]),
            "group": texts["groups"][texts["services"][code]["group"]][lang],
        }
        for code in CATEGORIES
    ]


def service_definition(*, service_code: str, lang: str) -> dict[str, Any]:
    """GET service definition: what the chat asks besides the category (the gu, and the place in words)."""
    check_service(service_code)
    texts, lang = _service_texts()["attributes"], language(lang)
    district = {
        "variable": True,
        "code": "district",
        "datatype": "singlevaluelist",
        "required": False,  # required only without lat/long: the point's gu is found on the map
        "datatype_description": texts["district"]["datatype_description"][lang],
        "order": 1,
        "description": texts["district"]["description"][lang],
        "values": [{"key": gu, "name": district_label(gu, lang)} for gu in DISTRICTS],
    }
    place = {
        "variable": True,
        "code": "place",
        "datatype": "string",
        "required": False,
        "datatype_description": texts["place"]["datatype_description"][lang],
        "order": 2,
        "description": texts["place"]["description"][lang],
    }
    return {"service_code": service_code, "attributes": [district, place]}


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' filters, already parsed; `numbers` overrides every other filter."""

    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()  # "open", "closed"
    page: int = 1
    page_size: int = MAX_PAGE_SIZE


def parse_date(value: str, name: str) -> datetime | None:
    """An ISO 8601 date and time with its zone from a query string; None when empty; Open311Error 400 otherwise."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))  # a raw "+" in a query string is a space
    except ValueError:
        raise Open311Error(400, f"{name} must be an ISO 8601 date and time, e.g. 2026-12-01T00:00:00+09:00") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} must include its time zone (Z or +09:00)")
    return moment


def whole_number(value: str, name: str, default: int, high: int) -> int:
    """A whole number from 1 to `high` from a query string; `default` when empty; Open311Error 400 otherwise."""
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {high}")
    return int(value)


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def request_query(
    *,
    service_request_id: str = "",
    service_code: str = "",
    start_date: str = "",
    end_date: str = "",
    status: str = "",
    page: str = "",
    page_size: str = "",
) -> RequestQuery:
    """GET requests' query string (strings as sent, "" when absent) checked and parsed; Open311Error 400 otherwise."""
    statuses = _list(status.lower())
    if not set(statuses) <= {"open", "closed"}:
        raise Open311Error(400, "status must be open, closed or both (comma-separated)")
    numbers = tuple(normalize_case_number(n) or n for n in _list(service_request_id))
    if len(numbers) > MAX_IDS:
        raise Open311Error(400, f"at most {MAX_IDS} service_request_id values at once")
    return RequestQuery(
        numbers=numbers,
        service_codes=_list(service_code),
        start=parse_date(start_date, "start_date"),
        end=parse_date(end_date, "end_date"),
        statuses=statuses,
        page=whole_number(page, "page", 1, 1_000_000),
        page_size=whole_number(page_size, "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE),
    )


_COLUMNS = (
    Case.id,
    Case.number,
    Case.category,
    Case.status,
    Case.description,
    Case.district,
    Case.dong,
    Case.place,
    Case.latitude,
    Case.longitude,
    Case.due_at,
    Case.created_at,
    Case.updated_at,
    Department.name_ko,
    Department.name_en,
    Department.name_ja,
)


def date_window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """start_date to end_date: by default the 90 days up to now (or to end, or from start), at most 90 days."""
    span = timedelta(days=DEFAULT_DAYS)
    if start is None:
        end = end or utcnow()
        start = end - span
    else:
        end = end or start + span
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > span:
        raise Open311Error(400, f"start_date to end_date may span at most {DEFAULT_DAYS} days")
    return start, end


def find_requests(session: Session, *, query: RequestQuery, lang: str) -> list[dict[str, Any]]:
    """GET requests: newest first, the last 90 days (or the dates given), a page of at most 1,000."""
    statement = select(*_COLUMNS).join(Department, Department.id == Case.department_id)
    if query.numbers:
        statement = statement.where(Case.number.in_(query.numbers[:MAX_IDS]))
    else:
        start, end = date_window(query.start, query.end)
        statement = statement.where(Case.created_at >= start, Case.created_at <= end)
        if query.service_codes:
            statement = statement.where(Case.category.in_([check_service(c) for c in query.service_codes]))
        if set(query.statuses) == {"open"}:
            statement = statement.where(Case.status.not_in([s.value for s in CLOSED_STATUSES]))
        elif set(query.statuses) == {"closed"}:
            statement = statement.where(Case.status.in_([s.value for s in CLOSED_STATUSES]))
        statement = statement.offset((query.page - 1) * query.page_size)
    statement = statement.order_by(Case.created_at.desc(), Case.id.desc()).limit(query.page_size)
    rows = session.execute(statement).all()
    notes = _public_notes(session, [row for row in rows if row.status in (CaseStatus.RESOLVED, CaseStatus.REJECTED)])
    publish = _Publisher(lang)
    return [publish(row, notes.get(row.id)) for row in rows]


def _public_notes(session: Session, rows: Sequence[Any]) -> dict[int, str]:
    """The official's public answer (resolved) or reason (rejected) of each closed case, in one query."""
    if not rows:
        return {}
    status_of = {row.id: row.status for row in rows}
    events = session.execute(
        select(CaseEvent.case_id, CaseEvent.to_status, CaseEvent.note)
        .where(CaseEvent.case_id.in_(list(status_of)), CaseEvent.note.is_not(None))
        .order_by(CaseEvent.id)
    )
    notes: dict[int, str] = {}
    for case_id, to_status, note in events:
        if note is not None and to_status == status_of[case_id]:
            notes[case_id] = note  # the latest one wins
    return notes


def get_request(session: Session, *, number: str, lang: str) -> dict[str, Any]:
    """GET request: the one case numbered `number`; Open311Error 404 when there is none."""
    canonical = normalize_case_number(number) or number  # "sr2026000123" is SR-2026-000123, as in the chat
    found = find_requests(session, query=RequestQuery(numbers=(canonical,), page_size=1), lang=lang)
    if not found:
        raise Open311Error(404, f"service_request_id {number!r} not found")
    return found[0]


def redact(text: str) -> str:
    """`text` with phone numbers and email addresses replaced: GET answers carry no personal data."""
    return _PERSONAL.sub(REDACTED, text)


class _Publisher:
    """Maps case rows to public GeoReport requests; what every row shares is worked out once per page."""

    def __init__(self, lang: str) -> None:
        self.lang = language(lang)
        self.zone = ZoneInfo(get_settings().timezone)
        self.names = {code: category_label(code, self.lang) for code in CATEGORIES}
        self.closed = frozenset(status.value for status in CLOSED_STATUSES)
        self.due: dict[date, str] = {}

    def _end_of(self, day: date) -> str:
        # A due date is a day: the request is expected by the end of it, Seoul time.
        if day not in self.due:
            self.due[day] = datetime.combine(day, time(23, 59, 59), tzinfo=self.zone).isoformat()
        return self.due[day]

    def __call__(self, row: Any, note: str | None) -> dict[str, Any]:
        """One case as a request: only what may be published (no contact, no conversation, no photos)."""
        agency = row.name_en if self.lang == "en" else row.name_ja if self.lang == "ja" else row.name_ko
        return {
            "service_request_id": row.number,
            "status": "closed" if row.status in self.closed else "open",
            "status_notes": redact(note) if note else None,
            "service_name": self.names.get(row.category, row.category),
            "service_code": row.category,
            "description": redact(row.description)[:4000],
            "agency_responsible": agency,
            "service_notice": None,
            "requested_datetime": row.created_at.astimezone(self.zone).isoformat(timespec="seconds"),
            "updated_datetime": row.updated_at.astimezone(self.zone).isoformat(timespec="seconds"),
            "expected_datetime": self._end_of(row.due_at),
            "address": ", ".join(part for part in (row.place, row.dong, row.district) if part),
            "address_id": None,
            "zipcode": None,
            "lat": row.latitude,
            "long": row.longitude,
            "media_url": None,
        }
