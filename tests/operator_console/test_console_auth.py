"""The console over HTTP in the real app: redirects and 401s, login and logout, cookies, CSRF, escaping, roles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from civic import console_accounts as accounts
from civic.cases import file_case
from civic.db import session_scope
from civic.models import AuditEntry, Department
from civic.settings import get_settings
from operator_console.auth import require_csrf, set_session_cookie
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import COOKIE, CSRF, PASSWORD, api_routes, log_in, login_form_token, new_user
from tests.production_secrets import PRODUCTION_SECRETS


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "5" * 32, "console-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def app_client(db_url: str, engine: Engine, twilio: FakeTwilioAPI) -> Iterator[TestClient]:
    with running_app(db_url, twilio) as test_client:
        yield test_client


@pytest.fixture
def client(app_client: TestClient) -> Iterator[TestClient]:
    """The app with an empty cookie jar: every test starts as a stranger."""
    app_client.cookies.clear()
    yield app_client
    app_client.cookies.clear()


@pytest.fixture
def db(app_client: TestClient) -> sessionmaker[Session]:
    return app_client.app.state.session_factory  # type: ignore[attr-defined]


def plant(client: TestClient, token: str) -> None:
    """Puts `token` in the jar where the app's own cookie lives (so it replaces it, as in a browser)."""
    client.cookies.set(COOKIE, token, domain="testserver.local", path="/console")


def page_csrf(client: TestClient) -> str:
    match = CSRF.search(client.get("/console").text)
    assert match
    return match.group(1)


def audit_entries(db: sessionmaker[Session], action: str) -> list[AuditEntry]:
    with session_scope(db) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


# ---- anonymous ----------------------------------------------------------------------------------------------------


def test_anonymous_pages_redirect_to_login(client: TestClient) -> None:
    response = client.get("/console/cases", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fcases"
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_anonymous_json_gets_401(client: TestClient) -> None:
    assert client.get("/console/api/whoami").status_code == 401
    assert client.get("/console/cases", headers={"Accept": "application/json"}).status_code == 401


def test_login_page_is_korean_first_and_never_cached(client: TestClient) -> None:
    page = client.get("/console/login")
    assert "로그인" in page.text and "Log in" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


# ---- login, pages, logout -----------------------------------------------------------------------------------------


def test_operator_logs_in_and_sees_the_newest_cases_escaped(client: TestClient, db: sessionmaker[Session]) -> None:
    with session_scope(db) as session:
        case = file_case(
            session,
            category="illegal_parking",
            district="마포구",
            place="<b>합정역</b>",
            description="<script>alert('xss')</script> 소화전 앞 주차",
            channel="web",
        )
        number = case.number
    email = new_user(db)
    response = log_in(client, email.upper(), next_path="/console/cases")
    assert response.status_code == 303 and response.headers["location"] == "/console/cases"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # ENVIRONMENT=test; production adds it (see test below)
    page = client.get("/console/cases")
    assert page.status_code == 200
    assert number in page.text
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "&lt;b&gt;합정역&lt;/b&gt;" in page.text
    assert client.get("/console/api/whoami").json() == {"email": email, "role": "operator", "department": None}
    home = client.get("/console")
    assert email in home.text and "operator" in home.text


def test_secure_cookie_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name, value in PRODUCTION_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    try:
        response = Response()
        set_session_cookie(response, "token")
        assert "Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]
    finally:
        get_settings.cache_clear()


def test_wrong_password_shows_an_error_and_is_audited(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    response = log_in(client, email, "not the password")
    assert response.status_code == 401
    assert "이메일 또는 비밀번호가 올바르지 않습니다" in response.text and COOKIE not in response.cookies
    [entry] = [entry for entry in audit_entries(db, "login.failed") if entry.actor == email]
    assert entry.ip == "testclient" and entry.details == {"reason": "wrong_password"}


def test_throttled_login_says_how_long_to_wait(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    for _ in range(accounts.FREE_FAILURES_PER_EMAIL_AND_ADDRESS):
        assert log_in(client, email, "not the password").status_code == 401
    response = log_in(client, email)  # the right password, refused without being checked: back off one second
    assert response.status_code == 429
    assert "1초 후에 다시 시도하세요" in response.text and "Try again in 1 second." in response.text
    assert response.headers["retry-after"] == "1"
    time.sleep(1.1)
    assert log_in(client, email).status_code == 303  # a back-off, not a lock


def test_login_gives_a_new_session_and_the_old_one_is_useless(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    form = {"csrf_token": login_form_token(client), "email": email, "password": PASSWORD}
    assert client.post("/console/login", data=form, follow_redirects=False).status_code == 303
    before = client.cookies[COOKIE]
    # Logging in again from a login page opened earlier (a second tab, a shared workstation).
    assert client.post("/console/login", data=form, follow_redirects=False).status_code == 303
    after = client.cookies[COOKIE]
    assert after != before
    plant(client, before)
    assert client.get("/console/api/whoami").status_code == 401
    plant(client, after)
    assert client.get("/console/api/whoami").status_code == 200


def test_a_planted_cookie_never_becomes_a_session(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    plant(client, "attacker-chosen-value")
    assert log_in(client, email).status_code == 303
    assert client.cookies[COOKIE] != "attacker-chosen-value"
    plant(client, "attacker-chosen-value")
    assert client.get("/console/api/whoami").status_code == 401


def test_logout_ends_the_session(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    log_in(client, email)
    token = client.cookies[COOKIE]
    response = client.post("/console/logout", data={"csrf_token": page_csrf(client)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    plant(client, token)  # the browser forgot it; a copy of it must be worthless too
    assert client.get("/console/api/whoami").status_code == 401
    assert any(entry.actor == email and entry.ip == "testclient" for entry in audit_entries(db, "logout"))
    assert any(entry.actor == email for entry in audit_entries(db, "login"))


def test_logout_is_never_a_get(client: TestClient, db: sessionmaker[Session]) -> None:
    log_in(client, new_user(db))
    assert client.get("/console/logout").status_code == 405
    assert client.get("/console/api/whoami").status_code == 200


# ---- CSRF ---------------------------------------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused_and_audited(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    log_in(client, email)
    assert client.post("/console/logout", data={}).status_code == 403
    assert client.post("/console/logout", data={"csrf_token": "0" * 64}).status_code == 403
    assert client.get("/console/api/whoami").status_code == 200  # the session survived
    refused = [entry for entry in audit_entries(db, "csrf.refused") if entry.actor == email]
    assert len(refused) == 2
    assert refused[0].target == "/console/logout" and refused[0].ip == "testclient" and refused[0].user_id
    # The header works as well as the form field (for scripts and htmx).
    headers = {"X-CSRF-Token": page_csrf(client)}
    assert client.post("/console/logout", headers=headers, follow_redirects=False).status_code == 303


def test_login_form_needs_its_token_too(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db)
    response = client.post("/console/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403 and COOKIE not in client.cookies
    assert any(entry.target == "/console/login" for entry in audit_entries(db, "csrf.refused"))


def test_every_unsafe_console_route_checks_csrf(app_client: TestClient) -> None:
    routes = list(api_routes(app_client.app.routes))  # type: ignore[attr-defined]
    unsafe = [
        (route, deps)
        for route, deps in routes
        if route.path.startswith("/console") and (route.methods or set()) - {"GET", "HEAD"}
    ]
    assert {route.path for route, _ in unsafe} >= {"/console/login", "/console/logout"}
    for route, dependencies in unsafe:
        assert any(dependency.dependency is require_csrf for dependency in dependencies), route.path


# ---- roles --------------------------------------------------------------------------------------------------------


def test_audit_log_is_for_admins_only(client: TestClient, db: sessionmaker[Session]) -> None:
    operator = new_user(db)
    log_in(client, operator)
    assert client.get("/console/api/audit").status_code == 403
    assert any(entry.actor == operator for entry in audit_entries(db, "access.denied"))
    client.cookies.clear()
    log_in(client, new_user(db, role="admin"))
    entries: list[dict[str, Any]] = client.get("/console/api/audit").json()
    assert any(entry["action"] == "access.denied" and entry["actor"] == operator for entry in entries)


def test_officials_see_only_their_department(client: TestClient, db: sessionmaker[Session]) -> None:
    with session_scope(db) as session:
        theirs = file_case(
            session, category="illegal_parking", district="마포구", place="합정역", description="x", channel="web"
        )
        other = file_case(session, category="noise", district="강남구", place="강남역", description="y", channel="web")
        assert theirs.department_id != other.department_id
        department = session.get_one(Department, theirs.department_id)
        numbers = theirs.number, other.number
    log_in(client, new_user(db, role="official", department_code=department.code))
    page = client.get("/console/cases").text
    assert numbers[0] in page and numbers[1] not in page
    assert client.get("/console/api/whoami").json()["department"] == department.code
