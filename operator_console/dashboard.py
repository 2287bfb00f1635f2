"""Console dashboard (charts and a district map), case search, and the CSV export of a search."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from bot.app_state import sessions_of
from civic.case_search import CaseFilter, CaseHit, export_chunks, search_cases
from civic.categories import CATEGORIES
from civic.console_accounts import ConsoleIdentity
from civic.console_stats import CHANNELS, OPEN_STATUSES, STATUSES, DashboardStats, dashboard_stats
from civic.db import session_scope, utcnow
from civic.districts import DISTRICTS
from civic.i18n import category_label, district_label, status_label
from civic.settings import get_settings
from operator_console.audit import audit
from operator_console.auth import CONSOLE_PATH, PageNumber, User, require_csrf
from operator_console.charts import bar_chart, choropleth
from operator_console.routes import SECURITY_HEADERS, render_page

router = APIRouter(prefix=CONSOLE_PATH, tags=["console"], dependencies=[Depends(require_csrf)])
CHANNEL_LABELS = {"web": "웹", "telegram": "텔레그램", "phone": "전화", "rest": "API"}
CSV_COLUMNS = (
    "number", "created_at", "status", "category", "district", "dong",
    "place", "description", "channel", "department", "due_at",
)  # fmt: skip
# A spreadsheet runs a cell starting with these as a formula (OWASP CSV injection); tab and CR too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _scope(user: ConsoleIdentity) -> int | None:
    """The department an official is bound to; None (the whole city) for operators and admins."""
    return user.department_id if user.role == "official" else None


def _stats(request: Request, user: ConsoleIdentity) -> DashboardStats:
    with session_scope(sessions_of(request)) as session:
        return dashboard_stats(session, department_id=_scope(user))


def duration_text(seconds: float | None) -> str:
    """A median duration as people say it: 45분, 3시간 10분, 2일 4시간; "—" when nothing was measured."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}일 {hours}시간"
    return f"{hours}시간 {minutes}분" if hours else f"{minutes}분"


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, user: User) -> HTMLResponse:
    stats = _stats(request, user)
    return render_page(
        request,
        "dashboard.html",
        user=user,
        stats=stats,
        acceptance=duration_text(stats.median_acceptance_seconds),
        resolution=duration_text(stats.median_resolution_seconds),
        status_chart=bar_chart(stats.by_status, {s: status_label(s, "ko") for s in stats.by_status}),
        category_chart=bar_chart(stats.by_category, {c: category_label(c, "ko") for c in stats.by_category}),
        district_chart=bar_chart(stats.by_district, {d: district_label(d, "ko") for d in stats.by_district}),
        channel_chart=bar_chart(stats.today_by_channel, CHANNEL_LABELS),
        overdue_chart=bar_chart(
            {c: n for c, n in stats.overdue_by_category.items() if n},
            {c: category_label(c, "ko") for c in stats.overdue_by_category},
        ),
        seoul=choropleth(stats.by_district),
    )


@router.get("/api/dashboard")
def dashboard_json(request: Request, user: User) -> dict[str, object]:
    return _stats(request, user).to_json() | {"department": user.department_code if _scope(user) else None}


def _date(value: str) -> date | None:
    # A hand-edited URL with a bad date searches without that bound rather than failing.
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def case_filter(
    q: str = "",
    status: str = "",
    category: str = "",
    district: str = "",
    channel: str = "",
    date_from: Annotated[str, Query(alias="from")] = "",
    date_to: Annotated[str, Query(alias="to")] = "",
    department: str = "",
    overdue: str = "",
) -> CaseFilter:
    """The search filters from the query string (a FastAPI dependency shared by the page and the export)."""
    return CaseFilter(
        q=q.strip(),
        status=status,
        category=category,
        district=district,
        channel=channel,
        date_from=_date(date_from),
        date_to=_date(date_to),
        department=department.strip(),
        overdue=overdue in ("1", "on", "true"),
    )


Filters = Annotated[CaseFilter, Depends(case_filter)]


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, user: User, filters: Filters, page: PageNumber = 1) -> HTMLResponse:
    with session_scope(sessions_of(request)) as session:
        result = search_cases(session, filters, department_id=_scope(user), page=page)
    query = filters.to_json()
    zone = ZoneInfo(get_settings().timezone)
    return render_page(
        request,
        "search.html",
        user=user,
        result=result,
        filters=filters,
        query=query,
        zone=zone,
        today=utcnow().astimezone(zone).date(),
        open_statuses=OPEN_STATUSES,
        statuses=[(s, status_label(s, "ko")) for s in STATUSES],
        categories=[(c, category_label(c, "ko")) for c in CATEGORIES],
        districts=[(d, district_label(d, "ko")) for d in DISTRICTS],
        channels=[(c, CHANNEL_LABELS[c]) for c in CHANNELS],
        labels={"status": status_label, "category": category_label},
    )


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ (a formula) gets a quote in front."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_row(hit: CaseHit, zone: ZoneInfo) -> list[str]:
    values: list[object] = [
        hit.number,
        f"{hit.created_at.astimezone(zone):%Y-%m-%d %H:%M}",
        hit.status,
        hit.category,
        hit.district,
        hit.dong,
        hit.place,
        hit.description,
        hit.channel,
        hit.department_code,
        hit.due_at.isoformat(),
    ]
    return [safe_cell(value) for value in values]


def csv_lines(chunks: Iterator[list[CaseHit]], zone: ZoneInfo) -> Iterator[str]:
    """The export as text pieces: a BOM (so Excel reads Hangul as UTF-8), the header, then a piece per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(_csv_row(hit, zone) for hit in chunk)
        yield buffer.getvalue()


@router.get("/search.csv")
def export_csv(request: Request, user: User, filters: Filters) -> StreamingResponse:
    """The search's cases as CSV, streamed chunk by chunk; every export is audited before it starts."""
    audit(
        request,
        "cases.export",
        by=user,
        target="search.csv",
        details={"filters": filters.to_json(), "department_scope": user.department_code if _scope(user) else None},
    )
    zone = ZoneInfo(get_settings().timezone)
    chunks = export_chunks(sessions_of(request), filters, department_id=_scope(user))
    stamp = f"{utcnow().astimezone(zone):%Y%m%d-%H%M}"
    headers = SECURITY_HEADERS | {"Content-Disposition": f'attachment; filename="cases-{stamp}.csv"'}
    return StreamingResponse(csv_lines(chunks, zone), media_type="text/csv; charset=utf-8", headers=headers)
