"""No phone number in plain text: every channel that learns one, in process, then every log line and every column.

A web chat citizen verifies a number by SMS code, a Telegram citizen shares their contact, a caller rings the
120 line and later gets a status SMS, a voter proves a number on the public poll page. Logs are captured at
DEBUG from every logger and the whole database is dumped; no spelling of any of those numbers may appear.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from civic.cases import file_case
from civic.db import make_session_factory, session_scope, utcnow
from civic.models import Conversation, OutboxMessage
from civic.outbox import PENDING
from civic.phones import normalize_phone
from civic.polls import NewPoll, create_poll
from civic.workflow import CaseStatus, transition
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from telephony.local_twilio import serve_in_thread as serve
from tests.fakes import telegram_api as tg
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import new_phone, running_app
from tests.limits import reset_rate_limits

ACCOUNT, TOKEN = "AC" + "4" * 32, "plaintext-test-twilio-token"
PUBLIC = "https://civic.example.kr"
TELEGRAM_SECRET = "plaintext-test-secret"
CHAT_CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')
POLL_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class Phone:
    """One citizen's number and every way it could be written down."""

    typed: str  # 010-XXXX-YYYY

    @property
    def e164(self) -> str:
        return normalize_phone(self.typed)

    def spellings(self) -> set[str]:
        _, middle, last = self.typed.split("-")
        # +8210…, 8210… and 010… all contain the eight digits; separators give the rest.
        return {middle + last, f"{middle}-{last}", f"{middle} {last}", f"{middle}.{last}", self.e164}


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio(ACCOUNT, TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def telegram() -> Iterator[tg.FakeTelegramAPI]:
    fake = tg.FakeTelegramAPI()
    with serve(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture(scope="module")
def client(
    db_url: str, engine: Engine, twilio: FakeTwilioAPI, rasa: FakeRasa, telegram: tg.FakeTelegramAPI
) -> Iterator[TestClient]:
    env = {
        "RASA_URL": rasa.url,
        "PUBLIC_BASE_URL": PUBLIC,
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.url,  # type: ignore[attr-defined]
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
    }
    with running_app(db_url, twilio, **env) as test_client:
        reset_rate_limits(make_session_factory(engine))
        yield test_client


def eventually(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def code_sent_to(twilio: FakeTwilioAPI, phone: Phone) -> str:
    message = eventually(f"an SMS to {phone.e164}", lambda: twilio.messages_to(phone.e164))[-1]
    match = CODE.search(message["body"])
    assert match, message["body"]
    return match.group(1)


def verify_in_web_chat(client: TestClient, twilio: FakeTwilioAPI, phone: Phone) -> None:
    page = client.get("/chat")
    chat_id = client.cookies["civic_chat"]
    client.cookies.clear()
    match = CHAT_CSRF.search(page.text)
    assert match
    headers = {"Cookie": f"civic_chat={chat_id}", "X-CSRF-Token": match.group(1)}
    sent = client.post("/chat/api/phone", json={"phone": phone.typed}, headers=headers)
    assert sent.status_code == 200, sent.text
    code = code_sent_to(twilio, phone)
    verified = client.post("/chat/api/phone/verify", json={"phone": phone.typed, "code": code}, headers=headers)
    assert verified.json() == {"verified": True, "last4": phone.e164[-4:]}
    said = client.post(
        "/chat/api/messages", json={"client_message_id": secrets.token_hex(8), "text": "투표 목록"}, headers=headers
    )
    assert said.status_code == 200, said.text


def share_contact_on_telegram(client: TestClient, telegram: tg.FakeTelegramAPI, phone: Phone) -> None:
    chat = 8_000_000 + secrets.randbelow(10**6)
    update = tg.contact_update(chat, phone.e164.replace("+82", "+82 "), contact_user_id=chat)
    response = client.post(
        "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    )
    assert response.status_code == 200
    reply = eventually("the bot's answer", lambda: telegram.sent_messages(chat))[0]
    assert phone.e164[-4:] in str(reply.params.get("text"))


def call_the_120_line(client: TestClient, twilio: FakeTwilioAPI, phone: Phone) -> str:
    call_sid = "CA" + secrets.token_hex(16)
    twilio.add_call(call_sid, from_number=phone.e164, to_number="+8212000120")
    for path, status in (("/telephony/voice", "ringing"), ("/telephony/status", "completed")):
        params = {"AccountSid": ACCOUNT, "CallSid": call_sid, "From": phone.e164, "To": "+8212000120"}
        params["CallStatus"] = status
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
        answered = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert answered.status_code in (200, 204), answered.text
    return call_sid


def status_sms_to_caller(client: TestClient, twilio: FakeTwilioAPI, call_sid: str, phone: Phone) -> None:
    """The caller's report is accepted: the notice goes by SMS through the outbox and telephony/sms.py."""
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    with session_scope(factory) as session:
        conversation = session.execute(
            select(Conversation).where(Conversation.channel == "phone", Conversation.external_id == call_sid)
        ).scalar_one()
        assert conversation.citizen_id is not None, "the caller's number is the conversation's verified phone"
        case = file_case(
            session,
            category="illegal_dumping",
            district="관악구",
            place="신림역 4번 출구",
            description="쓰레기 무단 투기",
            channel="phone",
            conversation_id=conversation.id,
            citizen_id=conversation.citizen_id,
        )
        transition(session, case=case, to=CaseStatus.ACCEPTED, actor="test")
    eventually("the status SMS", lambda: any(case.number in m["body"] for m in twilio.messages_to(phone.e164)))


def vote_on_the_poll_page(client: TestClient, twilio: FakeTwilioAPI, phone: Phone) -> None:
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    now = utcnow()
    with session_scope(factory) as session:
        new = NewPoll(title="가로등 교체", options=["찬성", "반대"], opens_at=now, closes_at=now + timedelta(hours=1))
        poll, _ = create_poll(session, new, kind="policy", created_by="test")
    page = client.get(f"/polls/{poll.public_id}")
    match = POLL_CSRF.search(page.text)
    assert match
    # Spelled as many people type it: spaces, no country code.
    form = {"csrf_token": match.group(1), "lang": "ko", "phone": phone.typed.replace("-", " "), "option": "1"}
    assert client.post(f"/polls/{poll.public_id}/code", data=form).status_code == 200
    voted = client.post(f"/polls/{poll.public_id}/vote", data=form | {"code": code_sent_to(twilio, phone)})
    assert voted.status_code == 200 and "투표가 접수됐어요" in voted.text, voted.text


def database_text(engine: Engine) -> dict[str, str]:
    """Every row of every table as text, bytes decoded leniently (a number inside a blob would still show)."""
    dump = {}
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            cells = []
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        cells.append(bytes(value).decode("utf-8", "replace") + bytes(value).decode("latin-1"))
                    elif isinstance(value, dict | list):
                        cells.append(json.dumps(value, ensure_ascii=False))
                    else:
                        cells.append(str(value))
            dump[table] = "\n".join(cells)
    return dump


def log_text(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    lines = []
    for record in records:
        line = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + formatter.formatException(record.exc_info)
        lines.append(line)
    return lines


def test_no_phone_number_is_logged_or_stored_in_plain_text(
    client: TestClient,
    engine: Engine,
    twilio: FakeTwilioAPI,
    rasa: FakeRasa,
    telegram: tg.FakeTelegramAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every logger at DEBUG, those with a level of their own too (restored after the test).
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level > logging.DEBUG:
            caplog.set_level(logging.DEBUG, logger=name)
    web, tele, caller, voter = (Phone(new_phone()) for _ in range(4))
    started = utcnow()  # other modules' rows share the database: only this run's must drain

    verify_in_web_chat(client, twilio, web)
    share_contact_on_telegram(client, telegram, tele)
    call_sid = call_the_120_line(client, twilio, caller)
    status_sms_to_caller(client, twilio, call_sid, caller)
    vote_on_the_poll_page(client, twilio, voter)
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]

    def outbox_drained() -> bool:
        with session_scope(factory) as session:
            mine = select(OutboxMessage.id).where(OutboxMessage.status == PENDING, OutboxMessage.created_at >= started)
            return not session.execute(mine).first()

    eventually("the outbox to drain", outbox_drained)

    # The flows really carried the numbers: Twilio got each SMS addressed in E.164.
    assert {m["to"] for m in twilio.messages} >= {web.e164, caller.e164, voter.e164}
    assert len(caplog.records) > 20, "logging must have been captured"
    logs = log_text(caplog.records)
    database = database_text(engine)
    rasa_turns = json.dumps(rasa.turns, ensure_ascii=False)
    for phone in (web, tele, caller, voter):
        for spelling in phone.spellings():
            assert not [line for line in logs if spelling in line], f"{spelling} logged"
            assert not [table for table, cells in database.items() if spelling in cells], f"{spelling} stored"
            assert spelling not in rasa_turns, f"{spelling} sent to Rasa"
