"""Dead letters in the console: who sees them, secrets kept hidden, and sending one again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from civic.conversations import get_or_create_conversation
from civic.db import session_scope
from civic.models import AuditEntry, Message, OutboxMessage
from civic.outbox import DEAD, enqueue
from civic.routing import department_for
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import CSRF, log_in, new_user


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with local_twilio("AC" + "4" * 32, "outbox-test-token") as fake, running_app(db_url, fake) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def dead_letter(db: sessionmaker[Session], text: str, *, secret: bool = False) -> tuple[int, int]:
    with session_scope(db) as session:
        conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
        session.flush()
        row = enqueue(
            session,
            conversation_id=conversation.id,
            channel="web",
            kind="status",
            text=text,
            data={"secret": True} if secret else {},
            dedupe_key=uuid.uuid4().hex,
        )
        assert row is not None
        row.status, row.attempts, row.last_error = DEAD, 8, "TimedOut: <b>upstream</b>"
        session.flush()
        return row.id, conversation.id


def test_operators_see_dead_letters_escaped_and_secrets_hidden(client: TestClient, db: sessionmaker[Session]) -> None:
    visible, _ = dead_letter(db, "<script>alert(1)</script> 처리되었습니다")
    hidden, _ = dead_letter(db, "영수증 0123456789abcdef0123456789abcdef", secret=True)
    with session_scope(db) as session:
        department = department_for(session, category="noise", district="마포구").code
    log_in(client, new_user(db, "official", department))
    assert client.get("/console/outbox").status_code == 403
    client.cookies.clear()
    log_in(client, new_user(db, "operator"))
    page = client.get("/console/outbox").text
    assert f'data-outbox="{visible}"' in page and f'data-outbox="{hidden}"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 처리되었습니다" in page and "<script>alert(1)" not in page
    assert "0123456789abcdef0123456789abcdef" not in page
    assert "&lt;b&gt;upstream&lt;/b&gt;" in page


def test_a_dead_letter_is_sent_again_on_request(client: TestClient, db: sessionmaker[Session]) -> None:
    message_id, conversation_id = dead_letter(db, "다시 보낼 안내")
    log_in(client, new_user(db, "operator"))
    assert client.post(f"/console/outbox/{message_id}/retry").status_code == 403  # no CSRF token
    token = CSRF.search(client.get("/console/outbox").text).group(1)  # type: ignore[union-attr]
    retried = client.post(f"/console/outbox/{message_id}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert retried.status_code == 303
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with session_scope(db) as session:
            row = session.get(OutboxMessage, message_id)
            assert row is not None
            if row.status == "sent":
                break
        time.sleep(0.05)
    with session_scope(db) as session:
        assert session.get(OutboxMessage, message_id).status == "sent"  # type: ignore[union-attr]
        delivered = session.execute(select(Message.text).where(Message.conversation_id == conversation_id)).scalars()
        assert list(delivered) == ["다시 보낼 안내"]
        audit = session.execute(select(AuditEntry.action).where(AuditEntry.target == str(message_id))).scalars()
        assert "outbox.retry" in list(audit)
    again = client.post(f"/console/outbox/{message_id}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert again.status_code == 404  # only dead letters are retried
