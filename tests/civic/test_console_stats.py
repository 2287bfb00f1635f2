"""Dashboard figures and case search on a small known set of cases, kept apart in a department of their own."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from civic.case_search import CaseFilter, export_chunks, search_cases
from civic.console_stats import dashboard_stats
from civic.models import Case, CaseEvent, Department

# 12:00 in Seoul; the city's day began at 15:00 UTC the day before.
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
PAST = date(2000, 1, 1)  # due dates far from any "today" the tests might run on
FUTURE = date(2100, 1, 1)
_numbers = itertools.count(random.randint(0, 900_000))


def new_department(session: Session) -> Department:
    code = f"test-{uuid.uuid4().hex[:10]}"
    department = Department(code=code, name_ko=f"시험 {code}", name_en=code, name_ja=code)
    session.add(department)
    session.flush()
    return department


def add_case(
    session: Session,
    department: Department,
    *,
    created: datetime,
    status: str,
    category: str = "noise",
    district: str = "마포구",
    channel: str = "web",
    due: date = FUTURE,
    place: str = "합정역",
    description: str = "밤새 소음",
    events: tuple[tuple[str, timedelta], ...] = (),
) -> Case:
    case = Case(
        number=f"SR-1999-{next(_numbers) % 1_000_000:06d}",
        category=category,
        district=district,
        place=place,
        description=description,
        status=status,
        channel=channel,
        department_id=department.id,
        due_at=due,
        created_at=created,
        updated_at=created,
    )
    session.add(case)
    session.flush()
    session.add(CaseEvent(case_id=case.id, actor="bot", to_status="received", created_at=created))
    for to_status, after in events:
        session.add(CaseEvent(case_id=case.id, actor="t", to_status=to_status, created_at=created + after))
    session.flush()
    return case


@pytest.fixture
def known(session: Session) -> tuple[Department, list[Case]]:
    department = new_department(session)
    hour, day = timedelta(hours=1), timedelta(days=1)
    cases = [
        # 00:30 in Seoul today, though still yesterday in UTC: counts as today.
        add_case(session, department, created=datetime(2026, 11, 24, 15, 30, tzinfo=UTC), status="received"),
        add_case(
            session,
            department,
            created=NOW - 2 * hour,
            status="accepted",
            channel="telegram",
            events=(("accepted", timedelta(minutes=30)),),
        ),
        add_case(
            session,
            department,
            created=NOW - 5 * day,
            status="resolved",
            category="sewer",
            district="강남구",
            channel="phone",
            due=PAST,  # past due but resolved: not overdue
            events=(("accepted", hour), ("resolved", 2 * day)),
        ),
        add_case(
            session,
            department,
            created=NOW - 10 * day,
            status="in_progress",
            category="sewer",
            channel="rest",
            due=PAST,
            events=(("accepted", 3 * hour), ("in_progress", day)),
        ),
        # Accepted 40 days ago (outside the window), resolved 20 days ago (inside it).
        add_case(
            session,
            department,
            created=NOW - 40 * day,
            status="resolved",
            category="safety",
            district="종로구",
            events=(("accepted", 2 * hour), ("resolved", 20 * day)),
        ),
        # 23:30 in Seoul yesterday: not today; withdrawn, so never overdue.
        add_case(
            session,
            department,
            created=datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
            status="withdrawn",
            category="safety",
            district="종로구",
            due=PAST,
        ),
    ]
    return department, cases


def test_counts_by_status_category_and_district(session: Session, known: tuple[Department, list[Case]]) -> None:
    stats = dashboard_stats(session, department_id=known[0].id, now=NOW)
    assert stats.total == 6
    assert {k: v for k, v in stats.by_status.items() if v} == {
        "received": 1,
        "accepted": 1,
        "in_progress": 1,
        "resolved": 2,
        "withdrawn": 1,
    }
    assert list(stats.by_status)[:3] == ["received", "accepted", "assigned"]  # every status, zeros included
    assert {k: v for k, v in stats.by_category.items() if v} == {"noise": 2, "sewer": 2, "safety": 2}
    assert len(stats.by_category) == 10
    assert {k: v for k, v in stats.by_district.items() if v} == {"마포구": 3, "강남구": 1, "종로구": 2}
    assert len(stats.by_district) == 25


def test_medians_overdue_and_todays_channels(session: Session, known: tuple[Department, list[Case]]) -> None:
    stats = dashboard_stats(session, department_id=known[0].id, now=NOW)
    # Acceptances in the last 30 days took 30 min, 1 h and 3 h; the one 40 days ago is out.
    assert stats.median_acceptance_seconds == pytest.approx(3600, abs=1)
    # Two resolutions (2 days, 20 days): the median of an even count is the mean of the middle two.
    assert stats.median_resolution_seconds == pytest.approx(11 * 86400, abs=1)
    assert stats.overdue == 1
    assert stats.overdue_by_category["sewer"] == 1
    assert stats.today_by_channel == {"web": 1, "telegram": 1, "phone": 0, "rest": 0}
    assert stats.today == date(2026, 11, 25)
    assert stats.to_json()["today"] == "2026-11-25"


def test_empty_department_has_no_medians(session: Session) -> None:
    stats = dashboard_stats(session, department_id=new_department(session).id, now=NOW)
    assert stats.total == 0 and stats.overdue == 0
    assert stats.median_acceptance_seconds is None and stats.median_resolution_seconds is None


def test_a_department_sees_only_its_own_cases(session: Session, known: tuple[Department, list[Case]]) -> None:
    other = new_department(session)
    add_case(session, other, created=NOW - timedelta(minutes=5), status="received", channel="phone")
    mine = dashboard_stats(session, department_id=known[0].id, now=NOW)
    theirs = dashboard_stats(session, department_id=other.id, now=NOW)
    city = dashboard_stats(session, now=NOW)
    assert mine.today_by_channel["phone"] == 0 and mine.total == 6
    assert theirs.total == 1 and theirs.today_by_channel["phone"] == 1
    assert city.total >= 7


def test_search_filters_and_scopes(session: Session, known: tuple[Department, list[Case]]) -> None:
    department, cases = known
    scoped = search_cases(session, CaseFilter(), department_id=department.id)
    assert [hit.number for hit in scoped.hits] == [case.number for case in reversed(cases)]  # newest filed first
    assert not scoped.has_next
    by_number = search_cases(session, CaseFilter(q=cases[2].number.lower().replace("-", "")))
    assert [hit.number for hit in by_number.hits] == [cases[2].number]
    sewer = search_cases(session, CaseFilter(category="sewer"), department_id=department.id)
    assert {hit.number for hit in sewer.hits} == {cases[2].number, cases[3].number}
    overdue = search_cases(session, CaseFilter(overdue=True), department_id=department.id)
    assert [hit.number for hit in overdue.hits] == [cases[3].number]
    # The city's date: the case filed at 00:30 Seoul time on the 25th is on the 25th, the 23:30 one on the 24th.
    on_25th = search_cases(
        session, CaseFilter(date_from=date(2026, 11, 25), date_to=date(2026, 11, 25)), department_id=department.id
    )
    assert {hit.number for hit in on_25th.hits} == {cases[0].number, cases[1].number}
    assert search_cases(session, CaseFilter(department="no-such-dept"), department_id=department.id).hits == []


def test_search_words_are_literal_and_pages_are_fifty(session: Session) -> None:
    department = new_department(session)
    add_case(session, department, created=NOW, status="received", description="100% 막힘")
    add_case(session, department, created=NOW, status="received", description="1000 막힘")
    hits = search_cases(session, CaseFilter(q="100%"), department_id=department.id).hits
    assert [hit.description for hit in hits] == ["100% 막힘"]  # % is a letter, not a wildcard
    for _ in range(50):
        add_case(session, department, created=NOW, status="received")
    first = search_cases(session, CaseFilter(), department_id=department.id)
    second = search_cases(session, CaseFilter(), department_id=department.id, page=2)
    assert len(first.hits) == 50 and first.has_next
    assert len(second.hits) == 2 and not second.has_next


def test_export_chunks_cover_every_match_newest_first(
    session: Session, bound_factory: sessionmaker[Session], known: tuple[Department, list[Case]]
) -> None:
    department, cases = known
    session.commit()  # a savepoint: other sessions on the test's connection see the cases
    chunks = list(export_chunks(bound_factory, CaseFilter(), department_id=department.id, chunk=4))
    assert [len(chunk) for chunk in chunks] == [4, 2]
    assert [hit.number for chunk in chunks for hit in chunk] == [case.number for case in reversed(cases)]
