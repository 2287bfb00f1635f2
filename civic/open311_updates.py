"""mySociety's Open311 extension GET servicerequestupdates: our cases' public status changes and answers, by date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, not_, select
from sqlalchemy.orm import Session

from civic.models import Case, CaseEvent
from civic.open311 import MAX_PAGE_SIZE, date_window, parse_date, redact, whole_number
from civic.settings import get_settings
from civic.workflow import CaseStatus

# FixMyStreet reads these besides open and closed (its Open311->map_state): the same words its own updates use.
STATUSES = {
    CaseStatus.IN_PROGRESS: "in_progress",
    CaseStatus.RESOLVED: "fixed",
    CaseStatus.REJECTED: "closed",
    CaseStatus.WITHDRAWN: "closed",
}
# The official's answer (resolved) or reason (rejected) is sent to the citizen; other notes are the staff's own.
PUBLIC_NOTES = frozenset({CaseStatus.RESOLVED, CaseStatus.REJECTED})
# A department sending a case back to the 120 operators: the citizen is not told (console_cases.return_to_operators).
_INTERNAL = and_(CaseEvent.from_status == CaseStatus.ASSIGNED.value, CaseEvent.to_status == CaseStatus.ACCEPTED.value)


@dataclass(frozen=True)
class UpdateQuery:
    """The dates (checked and defaulted as for GET requests: at most 90 days) and the page asked for."""

    start: datetime
    end: datetime
    page: int
    page_size: int


def update_query(*, start_date: str = "", end_date: str = "", page: str = "", page_size: str = "") -> UpdateQuery:
    """The query string (strings as sent, "" when absent) checked and parsed; Open311Error 400 otherwise."""
    start, end = date_window(parse_date(start_date, "start_date"), parse_date(end_date, "end_date"))
    return UpdateQuery(
        start=start,
        end=end,
        page=whole_number(page, "page", 1, 1_000_000),
        page_size=whole_number(page_size, "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE),
    )


def find_updates(session: Session, *, query: UpdateQuery) -> list[dict[str, Any]]:
    """Each status change (after filing) from start to end, oldest first: what a poller applies in order.

    A page holds at most page_size; a full page means the client asks for the next one. Nothing personal: the
    note is published only for resolved and rejected, with phone numbers and email addresses removed as in GET.
    """
    rows = session.execute(
        select(CaseEvent.id, Case.number, CaseEvent.to_status, CaseEvent.note, CaseEvent.created_at)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(
            CaseEvent.created_at >= query.start,
            CaseEvent.created_at <= query.end,
            CaseEvent.from_status.is_not(None),  # the filing itself is the request, not an update of it
            not_(_INTERNAL),
        )
        .order_by(CaseEvent.created_at, CaseEvent.id)
        .offset((query.page - 1) * query.page_size)
        .limit(query.page_size)
    ).all()
    zone = ZoneInfo(get_settings().timezone)
    return [
        {
            "update_id": str(row.id),
            "service_request_id": row.number,
            "status": STATUSES.get(CaseStatus(row.to_status), "open"),
            "external_status_code": row.to_status,
            "updated_datetime": row.created_at.astimezone(zone).isoformat(timespec="seconds"),
            "description": redact(row.note) if row.note and row.to_status in PUBLIC_NOTES else "",
            "media_url": None,  # photos are the citizen's and stay unpublished, as in GET requests
        }
        for row in rows
    ]
