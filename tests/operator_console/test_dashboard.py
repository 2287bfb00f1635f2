"""The dashboard, search and CSV export over HTTP: who sees what, the district map, escaping and auditing."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case
from civic.db import session_scope
from civic.models import AuditEntry, Case, Department
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import log_in, new_user

GU_PATH = re.compile(r'<path class="gu q(\d)" d="[^"]+" data-gu="([^"]+)" data-count="(\d+)">')


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with local_twilio("AC" + "7" * 32, "dashboard-test-twilio-token") as fake, running_app(db_url, fake) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def file_one(db: sessionmaker[Session], *, district: str, category: str = "noise", **fields: str) -> tuple[str, int]:
    values = {"place": "합정역", "description": "밤새 소음", "channel": "web"} | fields
    with session_scope(db) as session:
        case = file_case(session, category=category, district=district, **values)
        return case.number, case.department_id


def listed(page_text: str, number: str) -> bool:
    """Whether a result row links to the case (the search box echoes the query, so the number alone says nothing)."""
    return f'href="/console/cases/{number}"' in page_text


def department_code(db: sessionmaker[Session], department_id: int) -> str:
    with session_scope(db) as session:
        return session.execute(select(Department.code).where(Department.id == department_id)).scalar_one()


def test_anonymous_requests_are_sent_to_login_or_refused(client: TestClient, db: sessionmaker[Session]) -> None:
    for path in ("/console/dashboard", "/console/search?q=x", "/console/search.csv"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=")
    assert client.get("/console/api/dashboard").status_code == 401


def test_every_role_sees_the_dashboard_with_25_districts_on_the_map(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    for _ in range(3):
        file_one(db, district="도봉구")
    _, department_id = file_one(db, district="도봉구")
    for role, code in (("operator", None), ("admin", None), ("official", department_code(db, department_id))):
        client.cookies.clear()
        assert log_in(client, new_user(db, role, code)).status_code == 303
        page = client.get("/console/dashboard")
        assert page.status_code == 200, role
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        areas = GU_PATH.findall(page.text)
        assert len(areas) == 25 and len({gu for _, gu, _ in areas}) == 25
        counts = client.get("/console/api/dashboard").json()["by_district"]
        busiest = max(counts, key=counts.__getitem__)
        classes = {gu: int(cls) for cls, gu, _ in areas}
        assert classes[busiest] == 4  # the gu with most cases is in the darkest class
        assert {gu: int(n) for _, gu, n in areas} == {gu: counts.get(gu, 0) for gu in classes}
        assert "<title>도봉구 Dobong-gu:" in page.text
        assert 'style="' not in page.text  # the CSP forbids inline styles: colours come from classes


def test_an_official_sees_only_their_departments_figures(client: TestClient, db: sessionmaker[Session]) -> None:
    mine, my_department = file_one(db, district="마포구", category="noise")
    theirs, their_department = file_one(db, district="강남구", category="sewer")
    assert my_department != their_department
    code = department_code(db, my_department)
    log_in(client, new_user(db, "official", code))
    figures = client.get("/console/api/dashboard").json()
    with session_scope(db) as session:
        my_total = session.execute(select(func.count()).where(Case.department_id == my_department)).scalar_one()
    assert figures["department"] == code
    assert figures["total"] == my_total
    assert figures["by_district"]["강남구"] == 0 or department_code(db, their_department) == code
    assert listed(client.get("/console/search", params={"q": mine}).text, mine)
    assert not listed(client.get("/console/search", params={"q": theirs}).text, theirs)
    # Asking for another department's code adds to the official's scope; it never widens it.
    other = client.get("/console/search", params={"department": department_code(db, their_department)})
    assert not listed(other.text, theirs)
    client.cookies.clear()
    log_in(client, new_user(db, "operator"))
    assert listed(client.get("/console/search", params={"q": theirs}).text, theirs)
    assert client.get("/console/api/dashboard").json()["department"] is None


def test_search_renders_citizen_text_escaped_and_pages(client: TestClient, db: sessionmaker[Session]) -> None:
    token = uuid.uuid4().hex[:12]
    number, _ = file_one(db, district="종로구", description=f"<script>alert(1)</script> {token}")
    log_in(client, new_user(db, "operator"))
    page = client.get("/console/search", params={"q": token, "district": "종로구", "status": "received"})
    assert page.status_code == 200
    assert listed(page.text, number)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert f"/console/search.csv?q={token}" in page.text  # the export link carries the filters
    assert not listed(client.get("/console/search", params={"q": token, "district": "중구"}).text, number)
    # A bad date in a hand-edited URL is ignored rather than failing.
    assert client.get("/console/search", params={"q": token, "from": "yesterday"}).status_code == 200


def test_csv_export_escapes_formulas_streams_and_is_audited(client: TestClient, db: sessionmaker[Session]) -> None:
    token = uuid.uuid4().hex[:12]
    number, department_id = file_one(
        db, district="마포구", place='=HYPERLINK("http://evil.example","x")', description=f"@SUM(A1) {token}"
    )
    other, _ = file_one(db, district="강남구", category="sewer", place="+1-2", description=f"-3 {token}")
    code = department_code(db, department_id)
    email = new_user(db, "official", code)
    log_in(client, email)
    response = client.get("/console/search.csv", params={"q": token})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert rows[0] == [
        "number", "created_at", "status", "category", "district", "dong",
        "place", "description", "channel", "department", "due_at",
    ]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [number]  # the official's department only
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["place"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["description"] == f"'@SUM(A1) {token}"
    assert row["department"] == code
    with session_scope(db) as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "cases.export", AuditEntry.actor == email)
        ).scalar_one()
        assert entry.details["filters"] == {"q": token}
        assert entry.details["department_scope"] == code
    client.cookies.clear()
    log_in(client, new_user(db, "admin"))
    rows = list(csv.reader(io.StringIO(client.get("/console/search.csv", params={"q": token}).text[1:])))
    by_number = {row[0]: row for row in rows[1:]}
    assert set(by_number) == {number, other}
    assert by_number[other][6] == "'+1-2" and by_number[other][7] == f"'-3 {token}"
