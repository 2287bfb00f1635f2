"""The live queue's event stream ends with its session: after a logout, an expiry or a deactivation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from civic import console_accounts as accounts
from civic.cases import file_case
from civic.db import session_scope, utcnow
from civic.models import ConsoleSession
from operator_console import live_queue, sessions
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import COOKIE, log_in, new_user

STREAM_TIMEOUT_SECONDS = 20.0


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with (
        local_twilio("AC" + "4" * 32, "stream-sessions-twilio-token") as fake,
        running_app(db_url, fake) as test_client,
    ):
        yield test_client


@pytest.fixture
def db(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> sessionmaker[Session]:
    client.cookies.clear()
    monkeypatch.setattr(live_queue, "SESSION_CHECK_SECONDS", 1.0)  # a quiet stream looks at its session every second
    return client.app.state.session_factory  # type: ignore[attr-defined]


def file_one(db: sessionmaker[Session], description: str) -> str:
    with session_scope(db) as session:
        return file_case(
            session, category="noise", district="마포구", place="합정역", description=description, channel="web"
        ).number


def stream_until_closed(client: TestClient, end_session: Callable[[], None], filed_after: Callable[[], str]) -> str:
    """Opens the stream, ends the session after the first event, files a case; returns all the stream sent."""
    received: list[str] = []
    late: list[str] = []

    def read() -> None:
        with client.stream("GET", "/console/api/queue/events") as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                received.append(line)
                if line.startswith("data: ") and len([x for x in received if x.startswith("data: ")]) == 1:
                    end_session()
                    late.append(filed_after())  # a change the hub pushes: must not reach the ended session

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(STREAM_TIMEOUT_SECONDS)
    assert not reader.is_alive(), f"the stream did not close: {received[-5:]}"
    text = "\n".join(received)
    assert late and late[0] not in text
    return text


def test_the_stream_closes_after_logout(client: TestClient, db: sessionmaker[Session]) -> None:
    log_in(client, new_user(db, "operator"))
    token = client.cookies.get(COOKIE)

    def log_out() -> None:
        with session_scope(db) as session:
            assert sessions.log_out(session, token)

    text = stream_until_closed(client, log_out, lambda: file_one(db, "로그아웃 뒤의 민원"))
    assert text.startswith("event: queue") and "event: ended" in text


def test_the_stream_closes_after_deactivation(client: TestClient, db: sessionmaker[Session]) -> None:
    email = new_user(db, "operator")
    log_in(client, email)

    def deactivate() -> None:
        with session_scope(db) as session:
            accounts.deactivate_user(session, email=email)

    assert "event: ended" in stream_until_closed(client, deactivate, lambda: file_one(db, "비활성화 뒤의 민원"))


def test_the_stream_closes_when_the_session_expires(client: TestClient, db: sessionmaker[Session]) -> None:
    log_in(client, new_user(db, "admin"))
    session_id = sessions.session_id_of(client.cookies.get(COOKIE) or "")

    def expire() -> None:
        with session_scope(db) as session:
            row = session.get(ConsoleSession, session_id)
            assert row is not None
            row.last_seen_at = utcnow() - timedelta(days=1)  # idle past CONSOLE_IDLE_MINUTES

    assert "event: ended" in stream_until_closed(client, expire, lambda: file_one(db, "만료 뒤의 민원"))


def test_a_live_session_keeps_its_stream_and_is_not_kept_alive_by_it(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    log_in(client, new_user(db, "operator"))
    session_id = sessions.session_id_of(client.cookies.get(COOKIE) or "")
    with client.stream("GET", "/console/api/queue/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: queue"
        next(lines), next(lines)  # the first snapshot and its blank line
        # Opening the stream was a request (it counted as use); from here on only the stream's checks run.
        with session_scope(db) as session:
            row = session.get(ConsoleSession, session_id)
            assert row is not None
            row.last_seen_at = seen = utcnow() - timedelta(minutes=5)
        with session_scope(db) as session:
            filed = file_case(
                session, category="noise", district="마포구", place="합정역", description="열린 세션", channel="web"
            )
            # The queue shows the 200 oldest; once the whole suite has filed more, a new case is not among them.
            # Made the oldest of all in the same transaction, it is in the very next push.
            filed.created_at = utcnow() - timedelta(days=3650)
            number = filed.number
        for line in lines:
            if line.startswith("data: ") and number in line:
                break  # pushed, after the session was checked again
            assert line != "event: ended"
    with session_scope(db) as session:
        row = session.get(ConsoleSession, session_id)
        assert row is not None and row.last_seen_at == seen  # the stream's checks do not count as use
