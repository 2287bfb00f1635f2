"""The admin screens over HTTP in the real app: who may see them, CSRF, each form, its audit entry, escaping."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case
from civic.db import session_scope
from civic.models import AuditEntry, CannedAnswer, CategoryDeadline, ConsoleUser, Department, RoutingOverride
from civic.routing import route_table
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import CSRF, PASSWORD, log_in, new_user

PAGES = ("", "/users", "/departments", "/routing", "/deadlines", "/canned", "/api-keys")
TEST_CODES = "test-admin-"  # departments these tests create, removed after each test


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with local_twilio("AC" + "8" * 32, "admin-pages-twilio-token") as fake, running_app(db_url, fake) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> Iterator[sessionmaker[Session]]:
    """The app's sessions (they commit); what a test changes in the shared tables is undone after it."""
    client.cookies.clear()
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    with session_scope(factory) as session:
        last_answer = session.execute(select(func.coalesce(func.max(CannedAnswer.id), 0))).scalar_one()
        routes = {
            (category, district)
            for category, district in session.execute(select(RoutingOverride.category, RoutingOverride.district))
        }
        deadlines = set(session.execute(select(CategoryDeadline.category)).scalars())
    yield factory
    # Overrides left behind would route and date every later test's cases differently.
    with session_scope(factory) as session:
        for override in session.execute(select(RoutingOverride)).scalars():
            if (override.category, override.district) not in routes:
                session.delete(override)
        session.execute(delete(CategoryDeadline).where(CategoryDeadline.category.not_in(deadlines)))
        session.execute(delete(CannedAnswer).where(CannedAnswer.id > last_answer))
        session.execute(delete(Department).where(Department.code.startswith(TEST_CODES)))


def as_admin(client: TestClient, db: sessionmaker[Session]) -> str:
    email = new_user(db, "admin")
    assert log_in(client, email).status_code == 303
    return email


def csrf_of(client: TestClient, page: str = "/console/admin") -> str:
    match = CSRF.search(client.get(page).text)
    assert match
    return match.group(1)


def post(client: TestClient, path: str, **form: str) -> Any:
    data = {"csrf_token": csrf_of(client), **form}
    return client.post(f"/console/admin{path}", data=data, follow_redirects=False)


def audit_of(db: sessionmaker[Session], actor: str, action: str) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.actor == actor, AuditEntry.action == action).order_by(AuditEntry.id)
    with session_scope(db) as session:
        return list(session.execute(query).scalars())


def user_row(db: sessionmaker[Session], email: str) -> ConsoleUser:
    with session_scope(db) as session:
        return session.execute(select(ConsoleUser).where(ConsoleUser.email == email)).scalar_one()


# ---- who may ------------------------------------------------------------------------------------------------------


def test_every_admin_page_renders_for_an_admin(client: TestClient, db: sessionmaker[Session]) -> None:
    as_admin(client, db)
    titles = {
        "": "Admin",
        "/users": "Users and roles",
        "/departments": "Departments",
        "/routing": "Routing table",
        "/deadlines": "Category deadlines",
        "/canned": "Canned answers",
        "/api-keys": "Open311 API keys",
    }
    for path, title in titles.items():
        page = client.get(f"/console/admin{path}")
        assert page.status_code == 200, path
        assert title in page.text and page.headers["cache-control"] == "no-store"
    routing = client.get("/console/admin/routing").text
    assert routing.count('<td class="" title=') == len(route_table())  # the whole grid, nothing overridden


@pytest.mark.parametrize("role", ["operator", "official"])
def test_other_roles_get_403_and_change_nothing(client: TestClient, db: sessionmaker[Session], role: str) -> None:
    email = new_user(db, role, route_table()[("sewer", "강남구")].code if role == "official" else None)
    log_in(client, email)
    for path in PAGES:
        assert client.get(f"/console/admin{path}").status_code == 403, path
    token = csrf_of(client, "/console")
    refused = client.post(
        "/console/admin/canned", data={"csrf_token": token, "language": "ko", "title": "t", "text": "x"}
    )
    assert refused.status_code == 403
    refused = client.post("/console/admin/deadlines/noise", data={"csrf_token": token, "days": "30"})
    assert refused.status_code == 403
    with session_scope(db) as session:
        assert session.execute(select(CannedAnswer).where(CannedAnswer.title == "t")).first() is None
        assert session.get(CategoryDeadline, "noise") is None
    assert len(audit_of(db, email, "access.denied")) == len(PAGES) + 2


def test_strangers_are_sent_to_the_login_page(client: TestClient) -> None:
    client.cookies.clear()
    page = client.get("/console/admin/users", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/console/login?next=%2Fconsole%2Fadmin%2Fusers"
    assert client.get("/console/admin", headers={"Accept": "application/json"}).status_code == 401


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    email = as_admin(client, db)
    title = f"csrf-{uuid.uuid4().hex[:8]}"
    form = {"language": "ko", "title": title, "text": "x"}
    assert client.post("/console/admin/canned", data=form).status_code == 403
    assert client.post("/console/admin/canned", data={**form, "csrf_token": "0" * 64}).status_code == 403
    with session_scope(db) as session:
        assert session.execute(select(CannedAnswer).where(CannedAnswer.title == title)).first() is None
    assert [entry.target for entry in audit_of(db, email, "csrf.refused")] == ["/console/admin/canned"] * 2


# ---- users --------------------------------------------------------------------------------------------------------


def test_user_forms(client: TestClient, db: sessionmaker[Session]) -> None:
    me = as_admin(client, db)
    email = f"new-{uuid.uuid4().hex[:8]}@seoul.example.kr"
    created = post(client, "/users", email=email, role="operator", password="a long enough password")
    assert created.headers["location"] == "/console/admin/users?done=user_created"
    assert "사용자를 만들었습니다" in client.get(created.headers["location"]).text
    user = user_row(db, email)
    assert user.role == "operator" and audit_of(db, me, "user.created")[0].target == email

    official = route_table()[("sewer", "강남구")].code
    changed = post(client, f"/users/{user.id}/role", role="official", department=official)
    assert changed.headers["location"].endswith("done=role_changed")
    assert user_row(db, email).role == "official" and audit_of(db, me, "user.role_changed")
    post(client, f"/users/{user.id}/role", role="operator")

    assert post(client, f"/users/{user.id}/desk-phone", phone="010-2345-6789").status_code == 303
    assert "+82 10-****-6789" in client.get("/console/admin/users").text
    assert "2345" not in client.get("/console/admin/users").text
    assert audit_of(db, me, "user.desk_phone_set")[0].details == {"phone": "+82 10-****-6789"}
    post(client, f"/users/{user.id}/desk-phone/clear")
    assert user_row(db, email).desk_phone_ciphertext is None

    assert post(client, f"/users/{user.id}/password", password="another long password").status_code == 303
    assert audit_of(db, me, "user.password_reset")
    assert post(client, f"/users/{user.id}/deactivate").headers["location"].endswith("done=user_deactivated")
    assert not user_row(db, email).active and audit_of(db, me, "user.deactivated")
    assert post(client, f"/users/{user.id}/reactivate").status_code == 303
    assert user_row(db, email).active and audit_of(db, me, "user.reactivated")

    client.cookies.clear()
    assert log_in(client, email, "another long password").status_code == 303  # the reset password works


def test_refusals_come_back_as_messages(client: TestClient, db: sessionmaker[Session]) -> None:
    me = as_admin(client, db)
    my_id = user_row(db, me).id
    demoted = post(client, f"/users/{my_id}/role", role="operator")
    assert demoted.headers["location"] == "/console/admin/users?error=self_demotion"
    assert "자신의 관리자 역할은 바꿀 수 없습니다" in client.get(demoted.headers["location"]).text
    assert user_row(db, me).role == "admin"
    weak = post(client, "/users", email="weak@seoul.example.kr", role="operator", password=PASSWORD[:5])
    assert weak.headers["location"].endswith("error=weak_password")
    # A message is picked from a table by key: whatever else the URL says is never shown.
    page = client.get("/console/admin/users?error=<b>owned</b>&done=<i>x</i>").text
    assert "owned" not in page and "<i>x" not in page


# ---- departments, routes, deadlines -------------------------------------------------------------------------------


def test_department_forms(client: TestClient, db: sessionmaker[Session]) -> None:
    me = as_admin(client, db)
    code = f"{TEST_CODES}{uuid.uuid4().hex[:6]}"
    names = {"name_ko": "마포구청 주차관리과", "name_en": "Parking", "name_ja": "駐車管理課"}
    assert post(client, "/departments", code=code, **names).headers["location"].endswith("done=department_created")
    assert code in client.get("/console/admin/departments").text
    renamed = post(client, f"/departments/{code}/rename", **{**names, "name_en": "Parking <Admin>"})
    assert renamed.headers["location"].endswith("done=department_renamed")
    assert "Parking &lt;Admin&gt;" in client.get("/console/admin/departments").text
    assert [entry.action for entry in audit_of(db, me, "department.renamed")] == ["department.renamed"]
    bad = post(client, "/departments", code="No Spaces", **names)
    assert bad.headers["location"].endswith("error=bad_code")


def test_routing_form_overrides_filing_and_clear_restores(client: TestClient, db: sessionmaker[Session]) -> None:
    me = as_admin(client, db)
    target = route_table()[("sewer", "강남구")].code
    done = post(client, "/routing", category="noise", district="마포구", department=target)
    assert done.headers["location"] == "/console/admin/routing?done=route_set"
    page = client.get("/console/admin/routing").text
    assert page.count('class="overridden"') == 1 and "Overridden routes" in page
    with session_scope(db) as session:
        case = file_case(session, category="noise", district="마포구", place="합정역", description="x", channel="web")
        assert case.department.code == target
    assert audit_of(db, me, "routing.override_set")[0].target == "noise/마포구"
    assert post(client, "/routing/clear", category="noise", district="마포구").status_code == 303
    with session_scope(db) as session:
        assert session.get(RoutingOverride, ("noise", "마포구")) is None
    assert audit_of(db, me, "routing.override_cleared")
    again = post(client, "/routing/clear", category="noise", district="마포구")
    assert again.headers["location"].endswith("error=no_override")


def test_deadline_forms(client: TestClient, db: sessionmaker[Session]) -> None:
    me = as_admin(client, db)
    assert post(client, "/deadlines/noise", days="21").headers["location"].endswith("done=deadline_set")
    with session_scope(db) as session:
        assert session.get_one(CategoryDeadline, "noise").days == 21
    assert "<strong>21일</strong>" in client.get("/console/admin/deadlines").text
    assert post(client, "/deadlines/noise", days="5").headers["location"].endswith("error=bad_days")
    assert post(client, "/deadlines/noise/reset").headers["location"].endswith("done=deadline_reset")
    with session_scope(db) as session:
        assert session.get(CategoryDeadline, "noise") is None
    assert [e.details for e in audit_of(db, me, "deadline.reset")] == [{"previous_override": 21}]


# ---- canned answers -----------------------------------------------------------------------------------------------


def test_canned_answer_forms_and_escaping(client: TestClient, db: sessionmaker[Session]) -> None:
    me = as_admin(client, db)
    title = f"<script>alert('{uuid.uuid4().hex[:6]}')</script>"
    assert post(client, "/canned", language="ko", title=title, text="<b>안내</b>").status_code == 303
    page = client.get("/console/admin/canned?language=ko").text
    assert "&lt;script&gt;alert(" in page and "<script>alert" not in page
    assert "&lt;b&gt;안내&lt;/b&gt;" in page
    with session_scope(db) as session:
        answer = session.execute(select(CannedAnswer).where(CannedAnswer.title == title)).scalar_one()
    edited = post(client, f"/canned/{answer.id}", language="en", title="Greeting", text="Hello.")
    assert edited.headers["location"].endswith("done=answer_edited")
    assert post(client, f"/canned/{answer.id}/deactivate").status_code == 303
    assert "Greeting" not in client.get("/console/admin/canned?state=active").text
    assert "Greeting" in client.get("/console/admin/canned?state=inactive&language=en").text
    assert post(client, f"/canned/{answer.id}/reactivate").status_code == 303
    with session_scope(db) as session:
        stored = session.get_one(CannedAnswer, answer.id)
        assert (stored.language, stored.title, stored.active) == ("en", "Greeting", True)
    actions = [e.action for e in audit_of(db, me, "canned_answer.created")]
    actions += [e.action for e in audit_of(db, me, "canned_answer.edited")]
    actions += [e.action for e in audit_of(db, me, "canned_answer.deactivated")]
    actions += [e.action for e in audit_of(db, me, "canned_answer.reactivated")]
    assert len(actions) == 4
    empty = post(client, "/canned", language="ko", title=" ", text="x")
    assert empty.headers["location"].endswith("error=title_required")


# ---- Open311 API keys ---------------------------------------------------------------------------------------------


def test_api_key_forms(client: TestClient, db: sessionmaker[Session]) -> None:
    from civic.api_keys import hash_key, verify_key
    from civic.models import ApiKey

    me = as_admin(client, db)
    name = f"FixMyStreet <b>{uuid.uuid4().hex[:6]}</b>"
    created = post(client, "/api-keys", name=name, rate_limit_per_minute="120")
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    match = re.search(r'<code class="secret">(o311_[A-Za-z0-9_-]+)</code>', created.text)
    assert match and "&lt;b&gt;" in created.text and "<b>" not in created.text
    secret = match.group(1)
    with session_scope(db) as session:
        key = session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).scalar_one()
        assert key.rate_limit_per_minute == 120 and key.created_by == me and key.last_used_at is None
        key_id = key.id
    listing = client.get("/console/admin/api-keys").text
    assert secret not in listing and secret[:12] in listing  # shown once, then only its prefix
    refused = post(client, "/api-keys", name="", rate_limit_per_minute="")
    assert refused.headers["location"].endswith("error=name_required")
    refused = post(client, "/api-keys", name="x", rate_limit_per_minute="-5")
    assert refused.headers["location"].endswith("error=bad_rate")
    revoked = post(client, f"/api-keys/{key_id}/revoke")
    assert revoked.headers["location"] == "/console/admin/api-keys?done=key_revoked"
    with session_scope(db) as session:
        assert verify_key(session, secret=secret) is None
    assert [e.target for e in audit_of(db, me, "api_key.created")] == [f"api_key:{key_id}"]
    assert [e.target for e in audit_of(db, me, "api_key.revoked")] == [f"api_key:{key_id}"]
    assert post(client, "/api-keys/999999/revoke").headers["location"].endswith("error=unknown_key")
