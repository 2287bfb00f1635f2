"""Forged console requests against the real app: no CSRF token, the wrong role or department, media paths."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case, get_case
from civic.conversations import get_or_create_conversation, record_message
from civic.db import session_scope
from civic.media import store_photo
from civic.models import CaseEvent, ConsoleUser, OutboxMessage
from civic.routing import department_for
from civic.settings import get_settings
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import COOKIE, CSRF, api_routes, log_in, new_user
from tests.security.helpers import (
    CANARY,
    ESCAPING_STORED_PATHS,
    ID_SUFFIXES,
    PNG,
    TRAVERSALS,
    asgi_request,
    attachment_stored_at,
    audit_since,
    http_scope,
    last_audit_id,
    media_store,
    nothing_written,
)


def console_post_paths() -> list[str]:
    """Every unsafe route under /console of the app as built, read at collection time: one row each."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVIRONMENT", "test")  # whatever a developer's .env says, building the app must not fail
        patch.setenv("TELEGRAM_BOT_TOKEN", "")
        get_settings.cache_clear()
        from webapp.main import create_app

        routes = list(api_routes(create_app().routes))
    get_settings.cache_clear()
    return sorted(
        route.path
        for route, _ in routes
        if route.path.startswith("/console") and (route.methods or set()) - {"GET", "HEAD", "OPTIONS"}
    )


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_store(tmp_path_factory)


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, media_dir: Path) -> Iterator[TestClient]:
    with engine.connect() as connection:
        before = connection.execute(select(func.coalesce(func.max(OutboxMessage.id), 0))).scalar_one()
    with (
        local_twilio("AC" + "3" * 32, "console-security-twilio-token") as twilio,
        running_app(db_url, twilio, MEDIA_DIR=str(media_dir)) as test_client,
    ):
        yield test_client
    with engine.begin() as connection:  # notices queued here must not be left for the outbox tests to deliver
        connection.execute(delete(OutboxMessage).where(OutboxMessage.id > before))


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class Staff:
    """A logged-in console user: their session cookie and the CSRF token of that session."""

    email: str
    token: str
    csrf: str

    def headers(self, csrf: str | None = None) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.token}"} | ({"X-CSRF-Token": csrf} if csrf is not None else {})


def logged_in(client: TestClient, db: sessionmaker[Session], role: str, department: str | None = None) -> Staff:
    client.cookies.clear()
    email = new_user(db, role, department)
    assert log_in(client, email).status_code == 303
    token = client.cookies[COOKIE]
    match = CSRF.search(client.get("/console").text)
    assert match
    client.cookies.clear()
    return Staff(email, token, match.group(1))


@dataclass(frozen=True)
class Targets:
    """Real things for the routes' path parameters to name, so a wrongly accepted POST would change them."""

    number: str
    conversation_id: int
    department: str
    photo_id: str

    def fill(self, path: str) -> str:
        """The path with each {parameter} naming a real thing (or "1" for one the targets have nothing for)."""
        values = {
            "number": self.number,
            "conversation_id": str(self.conversation_id),
            "code": self.department,
            "category": "noise",
        }
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


@pytest.fixture(scope="module")
def staff(client: TestClient) -> dict[str, Staff]:
    """One logged-in user per kind, shared by the module (logging in hashes a password: slow on purpose)."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with session_scope(factory) as session:
        own = department_for(session, category="noise", district="마포구").code
        other = department_for(session, category="sewer", district="강남구").code
    return {
        "admin": logged_in(client, factory, "admin"),
        "another-admin": logged_in(client, factory, "admin"),
        "operator": logged_in(client, factory, "operator"),
        "official": logged_in(client, factory, "official", own),
        "official-of-another-department": logged_in(client, factory, "official", other),
    }


@pytest.fixture(scope="module")
def targets(client: TestClient) -> Targets:
    """A received case with its conversation and photo, waiting in the queue."""
    with session_scope(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
        record_message(session, conversation=conversation, direction="in", sender="citizen", text="밤새 공사 소음")
        photo = store_photo(session, conversation_id=conversation.id, content=PNG).id
        case = file_case(
            session,
            category="noise",
            district="마포구",
            place="합정역",
            description="공사 소음",
            channel="web",
            conversation_id=conversation.id,
            attachment_ids=[photo],
        )
        return Targets(case.number, conversation.id, case.department.code, photo)


# ---- CSRF on every console POST -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "another-sessions"])
@pytest.mark.parametrize("path", console_post_paths())
def test_console_post_without_its_csrf_token_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], staff: dict[str, Staff], targets: Targets, path: str, token: str
) -> None:
    admin = staff["admin"]
    csrf = staff["another-admin"].csrf if token == "another-sessions" else None
    first = last_audit_id(db)
    url = targets.fill(path)
    with nothing_written(db):
        response = client.post(
            url, data={"answer": "x", "text": "x"}, headers=admin.headers(csrf), follow_redirects=False
        )
    assert response.status_code == 403, response.text
    assert audit_since(db, first) == [("csrf.refused", url)]


# ---- roles and departments ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def assigned(client: TestClient, staff: dict[str, Staff]) -> str:
    """A case assigned to its department, where start, resolve, reject and return are all possible moves."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    operator = staff["operator"]
    with session_scope(factory) as session:
        case = file_case(
            session, category="noise", district="마포구", place="망원역", description="소음", channel="web"
        )
        number = case.number
    for action in ("accept", "assign"):
        response = client.post(
            f"/console/cases/{number}/{action}", headers=operator.headers(operator.csrf), follow_redirects=False
        )
        assert response.status_code == 303 and "done=" in response.headers["location"]
    return number


def case_status_and_events(db: sessionmaker[Session], number: str) -> tuple[str, int]:
    with session_scope(db) as session:
        case = get_case(session, number)
        assert case is not None
        events = session.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.id))
        return case.status, events or 0


FORBIDDEN_CASE_ACTIONS = [
    *[
        pytest.param("official-of-another-department", a, id=f"other-department-official-{a}")
        for a in ("start", "resolve", "reject", "return")
    ],
    *[pytest.param("official", a, id=f"official-{a}") for a in ("accept", "assign", "merge")],
    *[pytest.param("operator", a, id=f"operator-{a}") for a in ("start", "resolve", "reject", "return")],
]


@pytest.mark.parametrize(("who", "action"), FORBIDDEN_CASE_ACTIONS)
def test_a_case_action_outside_ones_role_or_department_is_403_with_no_case_event(
    client: TestClient,
    db: sessionmaker[Session],
    staff: dict[str, Staff],
    targets: Targets,
    assigned: str,
    who: str,
    action: str,
) -> None:
    user = staff[who]
    form = {"answer": "처리했습니다", "reason": "관할 아님", "responsible": "국토부", "into": targets.number}
    before = case_status_and_events(db, assigned)
    first = last_audit_id(db)
    with nothing_written(db):
        response = client.post(
            f"/console/cases/{assigned}/{action}", data=form, headers=user.headers(user.csrf), follow_redirects=False
        )
    assert response.status_code == 403
    assert case_status_and_events(db, assigned) == before
    assert audit_since(db, first) == [("case.denied", assigned)]


FORBIDDEN_ROUTES = [
    pytest.param("official", "/console/conversations/{conversation_id}/file", id="official-files-a-case"),
    pytest.param("official", "/console/conversations/{conversation_id}/take", id="official-takes-a-conversation"),
    pytest.param("operator", "/console/admin/users", id="operator-creates-a-user"),
    pytest.param("official", "/console/admin/users", id="official-creates-a-user"),
    pytest.param("operator", "/console/admin/routing", id="operator-changes-routing"),
]


@pytest.mark.parametrize(("role", "path"), FORBIDDEN_ROUTES)
def test_a_route_of_another_role_is_403_before_any_write(
    client: TestClient, db: sessionmaker[Session], staff: dict[str, Staff], targets: Targets, role: str, path: str
) -> None:
    user = staff[role]
    form = {
        "form_key": uuid.uuid4().hex,
        "category": "noise",
        "district": "마포구",
        "place": "합정역",
        "description": "소음",
        "email": f"intruder-{uuid.uuid4().hex[:8]}@seoul.example.kr",
        "role": "admin",
        "password": "a long enough password",
        "department": targets.department,
    }
    users_before = count_users(db)
    with nothing_written(db):
        response = client.post(targets.fill(path), data=form, headers=user.headers(user.csrf), follow_redirects=False)
    assert response.status_code == 403
    assert count_users(db) == users_before


def count_users(db: sessionmaker[Session]) -> int:
    with session_scope(db) as session:
        return session.scalar(select(func.count()).select_from(ConsoleUser)) or 0


# ---- media paths ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
def test_path_traversal_in_a_console_media_url_is_404(
    client: TestClient, db: sessionmaker[Session], staff: dict[str, Staff], raw: bytes
) -> None:
    admin = staff["admin"]
    cookie = (b"cookie", f"{COOKIE}={admin.token}".encode())
    with nothing_written(db):
        response = asgi_request(
            client, http_scope("GET", b"/console/media/" + raw, [cookie, (b"accept", b"application/json")])
        )
    assert response.status == 404
    assert CANARY not in response.body and b"root:" not in response.body


@pytest.mark.parametrize("suffix", list(ID_SUFFIXES.values()), ids=list(ID_SUFFIXES))
def test_a_real_media_id_with_anything_after_it_is_404(
    client: TestClient, staff: dict[str, Staff], targets: Targets, suffix: str
) -> None:
    admin = staff["admin"]
    assert client.get(f"/console/media/{targets.photo_id}", headers=admin.headers()).status_code == 200
    assert client.get(f"/console/media/{targets.photo_id}{suffix}", headers=admin.headers()).status_code == 404


@pytest.mark.parametrize("stored_path", list(ESCAPING_STORED_PATHS.values()), ids=list(ESCAPING_STORED_PATHS))
def test_a_stored_path_outside_the_media_dir_is_never_served_to_staff(
    client: TestClient,
    db: sessionmaker[Session],
    staff: dict[str, Staff],
    media_dir: Path,
    targets: Targets,
    stored_path: str,
) -> None:
    attachment_id = attachment_stored_at(db, targets.conversation_id, stored_path.format(root=media_dir))
    response = client.get(f"/console/media/{attachment_id}", headers=staff["admin"].headers())
    assert response.status_code == 404
    assert CANARY not in response.content and b"root:" not in response.content
