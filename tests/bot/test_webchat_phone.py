"""The web chat's "📞 Verify my number", in process with its lifespan: SMS codes through a fake Twilio, no Rasa."""

from __future__ import annotations

import json
import random
import re
import time
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.webchat.chat import external_id_of
from civic.db import session_scope
from civic.models import Citizen, Conversation, Message, OutboxMessage, VerificationCode
from civic.phones import decrypt_phone, normalize_phone, phone_blind_index
from civic.settings import get_settings
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import new_phone, running_app
from tests.limits import reset_rate_limits

CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "5" * 32, "chat-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, twilio: FakeTwilioAPI, rasa: FakeRasa) -> Iterator[TestClient]:
    """The real app (create_app + lifespan) on the test database, its SMS going to the fake Twilio."""
    with running_app(db_url, twilio, RASA_URL=rasa.url) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def fresh_ip_limit(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    """Every request here comes from one address; each test starts with that address's budget."""
    reset_rate_limits(session_factory)


class Browser:
    """One browser on /chat: its own cookie and CSRF token (sent explicitly, so several can share the client)."""

    def __init__(self, client: TestClient, twilio: FakeTwilioAPI, phone: str | None = None) -> None:
        self.client = client
        self.twilio = twilio
        client.cookies.clear()
        page = client.get("/chat")
        assert page.status_code == 200
        self.chat_id = client.cookies["civic_chat"]
        client.cookies.clear()
        match = CSRF.search(page.text)
        assert match, "the chat page must carry a CSRF token"
        self.csrf = match.group(1)
        self.external_id = external_id_of(self.chat_id)
        self.phone = phone or new_phone()
        self.e164 = normalize_phone(self.phone)
        self.seen = 0
        self.sent = 0

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"civic_chat={self.chat_id}"}
        return headers | ({"X-CSRF-Token": self.csrf} if csrf else {})

    def state(self) -> dict[str, Any]:
        response = self.client.get("/chat/api/phone", headers=self.headers(csrf=False))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def request_code(self, phone: str | None = None, csrf: bool = True) -> httpx.Response:
        body = {"phone": self.phone if phone is None else phone}
        return self.client.post("/chat/api/phone", json=body, headers=self.headers(csrf))

    def verify(self, code: str, csrf: bool = True, phone: str | None = None) -> httpx.Response:
        body = {"phone": self.phone if phone is None else phone, "code": code}
        return self.client.post("/chat/api/phone/verify", json=body, headers=self.headers(csrf))

    def receive_code(self, timeout: float = 10) -> str:
        """The code from the newest SMS to this phone, once the outbox has delivered it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.twilio.messages_to(self.e164)
            if len(messages) > self.seen:
                self.seen = len(messages)
                match = re.search(r"\b(\d{6})\b", messages[-1]["body"])
                assert match, messages[-1]["body"]
                return match.group(1)
            time.sleep(0.05)
        raise AssertionError("no SMS reached the fake Twilio")

    def get_code(self) -> str:
        response = self.request_code()
        assert response.status_code == 200, response.text
        return self.receive_code()

    def say(self, text: str) -> httpx.Response:
        self.sent += 1
        body = {"client_message_id": f"phone-test-{self.sent}-{random.randint(0, 10**9)}", "text": text}
        return self.client.post("/chat/api/messages", json=body, headers=self.headers())

    def transcript(self) -> list[dict[str, Any]]:
        response = self.client.get("/chat/api/messages", headers=self.headers(csrf=False))
        return list(response.json()["messages"])


@pytest.fixture
def browser(client: TestClient, twilio: FakeTwilioAPI) -> Browser:
    return Browser(client, twilio)


def conversation_of(factory: sessionmaker[Session], browser: Browser) -> Conversation | None:
    with session_scope(factory) as session:
        query = select(Conversation).where(
            Conversation.channel == "web", Conversation.external_id == browser.external_id
        )
        return session.execute(query).scalar_one_or_none()


def codes_of(factory: sessionmaker[Session], phone: str) -> list[VerificationCode]:
    with session_scope(factory) as session:
        query = select(VerificationCode).where(VerificationCode.phone_index == phone_blind_index(phone))
        return list(session.execute(query.order_by(VerificationCode.id)).scalars())


def forms_of(phone: str) -> list[str]:
    """Every way the number could have been written down: as typed, E.164, national digits, the subscriber part."""
    e164 = normalize_phone(phone)
    digits = re.sub(r"\D", "", phone)
    return [phone, e164, e164[1:], digits, digits[3:], phone[4:]]


def test_a_citizen_verifies_their_number_and_the_chat_gets_their_citizen(
    browser: Browser, session_factory: sessionmaker[Session], twilio: FakeTwilioAPI, rasa: FakeRasa
) -> None:
    assert browser.state() == {"verified": False, "last4": None}
    assert browser.say("한강공원 투표 목록 보여 주세요").status_code == 200  # the chat is in use, in Korean

    sent = browser.request_code()
    assert sent.status_code == 200 and sent.json() == {"sent": True, "last4": browser.e164[-4:]}
    code = browser.receive_code()
    [sms] = twilio.messages_to(browser.e164)[-1:]
    assert sms["body"].startswith("[서울 민원 챗봇] 인증번호 ") and "5분" in sms["body"]
    [row] = codes_of(session_factory, browser.e164)
    assert row.purpose == f"chat:{browser.external_id}"

    # Typed on a Japanese keyboard (full-width digits): still the code.
    full_width = code.translate({ord(digit): ord(digit) + 0xFEE0 for digit in "0123456789"})
    assert unicodedata.normalize("NFKC", full_width) == code != full_width
    verified = browser.verify(full_width)
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"verified": True, "last4": browser.e164[-4:]}
    assert browser.state() == {"verified": True, "last4": browser.e164[-4:]}

    conversation = conversation_of(session_factory, browser)
    assert conversation is not None and conversation.citizen_id is not None
    with session_scope(session_factory) as session:
        citizen = session.get(Citizen, conversation.citizen_id)
        assert citizen is not None and decrypt_phone(citizen.phone_ciphertext) == browser.e164
        messages = list(session.execute(select(Message).where(Message.conversation_id == conversation.id)).scalars())
        outbox = list(
            session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == conversation.id)).scalars()
        )

    # The transcript says the chat is verified, with the last four digits only.
    [note] = [m for m in browser.transcript() if m["sender"] == "system"]
    assert browser.e164[-4:] in note["text"] and "인증되었어요" in note["text"] and "투표" in note["text"]
    assert note["buttons"] == [] and note["direction"] == "out"
    assert browser.say("고마워요").status_code == 200

    # The number is nowhere in the chat's messages, its outbox or anything Rasa was sent.
    stored = [m.text + json.dumps(m.data, ensure_ascii=False) for m in messages]
    stored += [o.text + json.dumps(o.data, ensure_ascii=False) for o in outbox]
    turns = [json.dumps(turn, ensure_ascii=False) for turn in rasa.turns]
    assert len(turns) >= 2
    for form in forms_of(browser.phone):
        assert not any(form in line for line in stored + turns), form

    # A code works once.
    again = browser.verify(code)
    assert again.status_code == 422 and again.json()["error"] == "no_code"


def test_a_wrong_code_is_refused_and_each_try_counts(browser: Browser, session_factory: sessionmaker[Session]) -> None:
    code = browser.get_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = browser.verify(wrong)
    assert refused.status_code == 422
    assert refused.json() == {"error": "wrong_code", "message": "인증번호가 맞지 않아요. 다시 입력해 주세요."}
    assert codes_of(session_factory, browser.e164)[-1].attempts == 1

    # Not six digits is no guess: refused without spending a try.
    short = browser.verify("12345")
    assert short.status_code == 422 and short.json()["error"] == "enter_code"
    assert codes_of(session_factory, browser.e164)[-1].attempts == 1

    for _ in range(3):
        assert browser.verify(wrong).json()["error"] == "wrong_code"
    last = browser.verify(wrong)
    assert last.status_code == 422 and last.json()["error"] == "too_many_attempts"
    # The fifth wrong try killed the code: the right one no longer works, and nothing was linked.
    dead = browser.verify(code)
    assert dead.status_code == 422 and dead.json()["error"] == "too_many_attempts"
    assert codes_of(session_factory, browser.e164)[-1].attempts == 5
    conversation = conversation_of(session_factory, browser)
    assert conversation is None or conversation.citizen_id is None
    assert browser.state()["verified"] is False


def test_a_code_verifies_only_the_chat_it_was_sent_for(
    client: TestClient, twilio: FakeTwilioAPI, session_factory: sessionmaker[Session]
) -> None:
    first = Browser(client, twilio)
    other = Browser(client, twilio, phone=first.phone)
    code = first.get_code()
    stolen = other.verify(code)
    assert stolen.status_code == 422 and stolen.json()["error"] == "no_code"
    assert other.state()["verified"] is False
    assert first.verify(code).status_code == 200
    assert first.state()["verified"] is True


def test_requests_without_the_csrf_token_or_cookie_are_refused(browser: Browser, twilio: FakeTwilioAPI) -> None:
    assert browser.request_code(csrf=False).status_code == 403
    forged = browser.headers() | {"X-CSRF-Token": "0" * 64}
    assert browser.client.post("/chat/api/phone", json={"phone": browser.phone}, headers=forged).status_code == 403
    assert browser.verify("123456", csrf=False).status_code == 403
    browser.client.cookies.clear()
    assert browser.client.get("/chat/api/phone").status_code == 401
    assert browser.client.post("/chat/api/phone", json={"phone": browser.phone}).status_code == 401
    time.sleep(0.3)  # what the outbox would have delivered by now
    assert twilio.messages_to(browser.e164) == []


def test_a_bad_number_is_refused_in_the_chats_language(browser: Browser, twilio: FakeTwilioAPI) -> None:
    refused = browser.request_code(phone="12345")
    assert refused.status_code == 422
    assert refused.json() == {"error": "invalid_phone", "message": "휴대전화 번호를 확인해 주세요 (예: 010-1234-5678)."}
    assert browser.verify("123456", phone="not a phone").json()["error"] == "invalid_phone"

    # Once the chat is in English, so are the refusals and the SMS.
    assert browser.say("Hello, which polls are open right now?").status_code == 200
    english = browser.request_code(phone="+82 10 12")
    assert english.status_code == 422 and english.json()["message"].startswith("Please check the phone number")
    assert browser.request_code().status_code == 200
    browser.receive_code()
    assert twilio.messages_to(browser.e164)[-1]["body"].startswith("[Seoul Civic Assistant] Code ")


def test_send_limits_per_phone_and_per_address(
    client: TestClient, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert browser.request_code().status_code == 200
    too_soon = browser.request_code()
    assert too_soon.status_code == 429
    body = too_soon.json()
    assert body["error"] == "too_many_sends" and 0 < body["retry_after"] <= 60
    assert too_soon.headers["Retry-After"] == str(body["retry_after"])
    assert "너무 자주 요청했어요" in body["message"] and "초 후에" in body["message"]

    # The address has sent one code; with a budget of two it may send one more, then no more.
    monkeypatch.setattr(get_settings(), "sms_codes_per_address_per_hour", 2)
    other = Browser(client, browser.twilio)
    assert other.request_code().status_code == 200
    limited = Browser(client, browser.twilio).request_code()
    assert limited.status_code == 429 and limited.json()["error"] == "ip_limited"
    assert int(limited.headers["Retry-After"]) > 0


def test_the_page_has_the_control_and_its_script(client: TestClient) -> None:
    page = client.get("/chat").text
    for element in ('id="phone-button"', 'id="phone-panel"', 'id="phone-input"', 'autocomplete="one-time-code"'):
        assert element in page
    script = client.get("/chat/static/chat.js").text
    assert "/phone/verify" in script and "err_wrong_code" in script and "innerHTML" not in script
