"""The operators' live queue over HTTP: who may see it, its JSON, and the event stream that pushes changes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case
from civic.db import session_scope
from civic.models import Department
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import log_in, new_user


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with local_twilio("AC" + "6" * 32, "queue-test-twilio-token") as fake, running_app(db_url, fake) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def file_one(db: sessionmaker[Session], description: str) -> str:
    with session_scope(db) as session:
        case = file_case(
            session, category="noise", district="마포구", place="합정역", description=description, channel="web"
        )
        return case.number


def test_only_operators_and_admins_see_the_queue(client: TestClient, db: sessionmaker[Session]) -> None:
    assert client.get("/console/api/queue").status_code == 401
    assert client.get("/console/queue", follow_redirects=False).status_code == 303
    with session_scope(db) as session:
        code = session.query(Department.code).first()[0]  # type: ignore[index]
    assert log_in(client, new_user(db, "official", code)).status_code == 303
    assert client.get("/console/api/queue").status_code == 403
    client.cookies.clear()
    assert log_in(client, new_user(db, "operator")).status_code == 303
    assert client.get("/console/api/queue").status_code == 200


def test_the_queue_page_and_json_list_a_new_case_with_its_words_escaped(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    number = file_one(db, "<script>alert('x')</script> 밤새 소음")
    log_in(client, new_user(db, "operator"))
    items = client.get("/console/api/queue").json()["items"]
    mine = [item for item in items if item["title"] == number]
    assert mine and mine[0]["kind"] == "case" and mine[0]["waiting_seconds"] >= 0
    page = client.get("/console/queue")
    assert number in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; 밤새 소음" in page.text
    assert "<script>alert('x')</script>" not in page.text


def test_the_event_stream_sends_the_queue_at_once(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db, "맨홀 뚜껑이 열려 있어요")
    log_in(client, new_user(db, "admin"))
    with client.stream("GET", "/console/api/queue/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: queue"
        data = next(lines)
    snapshot = json.loads(data.removeprefix("data: "))
    assert number in [item["title"] for item in snapshot["items"]]
