"""Live takeover over HTTP: the operator takes a web chat, the bot pauses, both sides talk, the bot resumes."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from civic.db import session_scope
from civic.models import AuditEntry, Conversation, Message, OutboxMessage
from telephony.local_twilio import local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.operator_console.helpers import CSRF, log_in, new_user

CHAT_CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa) -> Iterator[TestClient]:
    env = {"RASA_URL": rasa.url}
    with local_twilio("AC" + "5" * 32, "takeover-test-token") as fake, running_app(db_url, fake, **env) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


class Citizen:
    """A web chat citizen talking through the real /chat API (its cookie lives beside the console's, on /chat)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        client.cookies.delete("civic_chat")
        page = client.get("/chat")
        match = CHAT_CSRF.search(page.text)
        assert match, "the chat page embeds its CSRF token"
        self.csrf, self.chat_id = match.group(1), page.cookies["civic_chat"]

    def _cookie(self) -> None:
        self.client.cookies.set("civic_chat", self.chat_id)

    def say(self, text: str) -> Any:
        self._cookie()
        body = {"client_message_id": secrets.token_hex(8), "text": text}
        return self.client.post("/chat/api/messages", json=body, headers={"X-CSRF-Token": self.csrf})

    def transcript(self) -> list[dict[str, Any]]:
        self._cookie()
        messages: list[dict[str, Any]] = self.client.get("/chat/api/messages").json()["messages"]
        return messages


def conversation_of(db: sessionmaker[Session], text: str) -> int:
    with session_scope(db) as session:
        message = session.execute(select(Message).where(Message.text == text)).scalars().first()
        assert message is not None
        return message.conversation_id


def console_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match
    return match.group(1)


def operator_on(client: TestClient, db: sessionmaker[Session], role: str = "operator") -> str:
    email = new_user(db, role)
    assert log_in(client, email).status_code == 303
    return email


def test_officials_cannot_open_conversations_and_anonymous_users_log_in_first(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    assert client.get("/console/conversations", follow_redirects=False).status_code == 303
    assert client.get("/console/api/conversations/1/messages").status_code == 401
    official = new_user(db, "official", department_code=_a_department(db))
    log_in(client, official)
    assert client.get("/console/conversations").status_code == 403


def _a_department(db: sessionmaker[Session]) -> str:
    from civic.routing import department_for

    with session_scope(db) as session:
        return department_for(session, category="noise", district="마포구").code


def test_take_talk_and_hand_back_a_web_chat(client: TestClient, db: sessionmaker[Session], rasa: FakeRasa) -> None:
    citizen = Citizen(client)
    assert citizen.say("상담사 연결해 주세요 takeover-1").status_code == 200
    conversation_id = conversation_of(db, "상담사 연결해 주세요 takeover-1")
    page_path = f"/console/conversations/{conversation_id}"
    operator = operator_on(client, db)
    token = console_token(client, page_path)

    # A POST without the CSRF token changes nothing.
    refused = client.post(f"{page_path}/take", follow_redirects=False)
    assert refused.status_code == 403
    with session_scope(db) as session:
        assert session.get(Conversation, conversation_id).held_by_user_id is None  # type: ignore[union-attr]

    taken = client.post(f"{page_path}/take", data={"csrf_token": token}, follow_redirects=False)
    assert taken.status_code == 303 and taken.headers["location"].endswith("?done=take")
    with session_scope(db) as session:
        sender = "web:" + session.get(Conversation, conversation_id).external_id  # type: ignore[union-attr]
    assert (sender, {"event": "pause"}) in rasa.events

    # The citizen's message reaches the console, not the bot.
    turns_before = len(rasa.turns)
    held = citizen.say("<script>alert(1)</script> 아직 차가 있어요")
    assert held.status_code == 200 and held.json()["replies"] == []
    assert len(rasa.turns) == turns_before
    feed = client.get(f"/console/api/conversations/{conversation_id}/messages", params={"after": 0}).json()
    assert feed["held_by"] == operator
    assert feed["messages"][-1]["text"] == "<script>alert(1)</script> 아직 차가 있어요"
    page = client.get(page_path).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)</script>" not in page

    # The operator's message reaches the citizen's chat; a resend with the same key is one message.
    form = {"csrf_token": token, "form_key": "f" * 32, "text": "단속반을 보냈습니다."}
    sent = client.post(f"{page_path}/messages", data=form, headers={"Accept": "application/json"})
    assert sent.status_code == 200 and sent.json()["ok"] is True
    client.post(f"{page_path}/messages", data=form, headers={"Accept": "application/json"})
    operator_lines = [m for m in citizen.transcript() if m["sender"] == "operator"]
    assert [m["text"] for m in operator_lines] == ["단속반을 보냈습니다."]
    _wait_for_outbox_sent(db, conversation_id)

    # Handing back resumes the bot and lets it ask for what the report misses.
    rasa.answer = lambda turn: [{"text": "어느 자치구인가요?", "buttons": [{"title": "마포구", "payload": "/inform"}]}]
    released = client.post(
        f"{page_path}/release", data={"csrf_token": token, "collect_missing": "1"}, follow_redirects=False
    )
    assert released.status_code == 303 and released.headers["location"].endswith("?done=release")
    assert rasa.events[-1] == (sender, {"event": "resume"})
    assert rasa.turns[-1]["message"].startswith("/report_complaint") and rasa.turns[-1]["sender"] == sender
    texts = [m["text"] for m in citizen.transcript()]
    assert texts[-2:] == ["상담이 끝났습니다. 이제 다시 챗봇이 도와드립니다.", "어느 자치구인가요?"]
    answered = citizen.say("마포구요")
    assert answered.status_code == 200 and rasa.turns[-1]["message"] == "마포구요"
    with session_scope(db) as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.target == str(conversation_id)).order_by(AuditEntry.id)
        ).scalars()
        assert list(actions) == ["conversation.take", "conversation.say", "conversation.say", "conversation.release"]


def _wait_for_outbox_sent(db: sessionmaker[Session], conversation_id: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with session_scope(db) as session:
            statuses = set(
                session.execute(
                    select(OutboxMessage.status).where(OutboxMessage.conversation_id == conversation_id)
                ).scalars()
            )
        if statuses == {"sent"}:
            return
        time.sleep(0.05)
    raise AssertionError(f"outbox of conversation {conversation_id} not drained: {statuses}")


def test_a_second_operator_sees_who_holds_it_and_cannot_write(client: TestClient, db: sessionmaker[Session]) -> None:
    citizen = Citizen(client)
    citizen.say("도와주세요 takeover-2")
    conversation_id = conversation_of(db, "도와주세요 takeover-2")
    page_path = f"/console/conversations/{conversation_id}"
    first = operator_on(client, db)
    client.post(f"{page_path}/take", data={"csrf_token": console_token(client, page_path)})
    client.cookies.clear()
    operator_on(client, db)
    token = console_token(client, page_path)
    page = client.get(page_path).text
    assert first in page and "/take" not in page
    again = client.post(f"{page_path}/take", data={"csrf_token": token}, follow_redirects=False)
    assert again.headers["location"].endswith("?error=held_by_other")
    form = {"csrf_token": token, "form_key": "e" * 32, "text": "제가 대신 답합니다"}
    written = client.post(f"{page_path}/messages", data=form, headers={"Accept": "application/json"})
    assert written.status_code == 409 and written.json()["error"] == "not_holding"
    assert all(m["text"] != "제가 대신 답합니다" for m in citizen.transcript())


@pytest.mark.parametrize(
    "path",
    [
        "/console/conversations/2147483648",
        "/console/conversations/99999999999999999999",
        "/console/conversations/0",
        "/console/conversations/2147483648/file",
        "/console/api/conversations/1/messages?after=2147483648",
        "/console/api/audit?before=2147483648",
        "/console/search?page=9223372036854775808",
    ],
)
def test_ids_past_what_the_database_holds_are_refused_not_a_server_error(
    client: TestClient, db: sessionmaker[Session], path: str
) -> None:
    operator_on(client, db, "admin")
    assert client.get(path).status_code == 422
