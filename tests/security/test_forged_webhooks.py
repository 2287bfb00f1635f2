"""Forged Twilio and Telegram webhooks against the real app: each refused before anything is written."""

from __future__ import annotations

import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from civic import inbox
from civic.db import session_scope
from civic.models import Conversation, InboundUpdate, Message, PhoneCall
from civic.settings import PLACEHOLDER_TELEGRAM_SECRET
from telephony.local_twilio import FakeTwilioAPI, local_twilio, serve_in_thread
from tests.fakes import telegram_api as tg
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.security.helpers import nothing_written

ACCOUNT = "AC" + "9" * 32
TOKEN = "security-test-twilio-token"
OTHER_TOKEN = "another-accounts-twilio-token"
PUBLIC = "https://civic.example.kr"
STREAM_PATH = "/telephony/stream"
TELEGRAM_SECRET = "security-test-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SIGNATURE = "X-Twilio-Signature"
WEBHOOKS = ("/telephony/voice", "/telephony/resume", "/telephony/status", "/telephony/operator-done")


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio(ACCOUNT, TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def telegram() -> Iterator[tg.FakeTelegramAPI]:
    fake = tg.FakeTelegramAPI()
    with serve_in_thread(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture(scope="module")
def client(
    db_url: str, engine: Engine, twilio: FakeTwilioAPI, telegram: tg.FakeTelegramAPI, rasa: FakeRasa
) -> Iterator[TestClient]:
    env = {
        "RASA_URL": rasa.url,
        "PUBLIC_BASE_URL": PUBLIC,
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.url,  # type: ignore[attr-defined]
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_MODE": "webhook",
    }
    with running_app(db_url, twilio, **env) as test_client:
        front_door = test_client.app.state.telegram  # type: ignore[attr-defined]
        telegram.wait_for(front_door.ready.is_set, timeout=15)
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


# ---- Twilio ---------------------------------------------------------------------------------------------------------


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def call_params(call_sid: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "CallSid": call_sid, "From": "+821027771234", "To": "+8212000120", **extra}


def answered_call(client: TestClient) -> tuple[str, str]:
    """A call that has been answered (its row exists), and the path of the stream its greeting opens (with token)."""
    call_sid = "CA" + secrets.token_hex(16)
    params = call_params(call_sid, CallStatus="ringing")
    response = client.post(
        "/telephony/voice", data=params, headers={SIGNATURE: sign(PUBLIC + "/telephony/voice", params)}
    )
    assert response.status_code == 200, response.text
    url = ET.fromstring(response.text).find("Connect/Stream").get("url", "")  # type: ignore[union-attr]
    return call_sid, url.removeprefix("wss://civic.example.kr")


def active_call(client: TestClient) -> str:
    """A call that has been answered, so a forged callback would have something to change."""
    return answered_call(client)[0]


def call_state(db: sessionmaker[Session], call_sid: str) -> tuple[Any, ...] | None:
    with session_scope(db) as session:
        call = session.execute(select(PhoneCall).where(PhoneCall.call_sid == call_sid)).scalar_one_or_none()
        if call is None:
            return None
        return call.status, call.turn, call.silences, call.misses, call.updated_at, call.ended_at


Sent = tuple[dict[str, str], dict[str, str]]  # the form posted and its headers
Forgery = Callable[[str, dict[str, str]], Sent]


def signed_over(url: str, params: dict[str, str], **headers: str) -> dict[str, str]:
    return {SIGNATURE: sign(url, params), **headers}


# Each takes the webhook's path and the true parameters and returns what the forger sends.
TWILIO_FORGERIES: dict[str, Forgery] = {
    "tampered-parameter": lambda path, p: (p | {"From": "+821099999999"}, signed_over(PUBLIC + path, p)),
    "added-parameter": lambda path, p: (p | {"Digits": "0"}, signed_over(PUBLIC + path, p)),
    "signed-over-another-path": lambda path, p: (p, signed_over(PUBLIC + "/telephony/voice-other", p)),
    "signed-over-another-host": lambda path, p: (p, signed_over("https://civic.example.kr.evil.test" + path, p)),
    "signed-over-http-when-public-is-https": lambda path, p: (p, signed_over("http://civic.example.kr" + path, p)),
    "signed-over-the-url-the-app-sees": lambda path, p: (p, signed_over("http://testserver" + path, p)),
    "forwarded-headers-name-the-signed-url": lambda path, p: (
        p,
        signed_over(
            "https://attacker.test" + path, p, **{"X-Forwarded-Host": "attacker.test", "X-Forwarded-Proto": "https"}
        ),
    ),
    "missing-header": lambda path, p: (p, {}),
    "empty-header": lambda path, p: (p, {SIGNATURE: ""}),
    "garbage-header": lambda path, p: (p, {SIGNATURE: "bm90IGEgc2lnbmF0dXJl"}),
    "another-accounts-auth-token": lambda path, p: (p, {SIGNATURE: sign(PUBLIC + path, p, OTHER_TOKEN)}),
    "validly-signed-for-another-account-sid": lambda path, p: (
        p | {"AccountSid": "AC" + "0" * 32},
        signed_over(PUBLIC + path, p | {"AccountSid": "AC" + "0" * 32}),
    ),
}


@pytest.mark.parametrize("forgery", list(TWILIO_FORGERIES.values()), ids=list(TWILIO_FORGERIES))
@pytest.mark.parametrize("path", WEBHOOKS, ids=[path.rsplit("/", 1)[1] for path in WEBHOOKS])
def test_forged_twilio_webhook_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], twilio: FakeTwilioAPI, path: str, forgery: Forgery
) -> None:
    # A new call for /voice (accepting it would create rows); the others would end or advance a live call.
    call_sid = "CA" + secrets.token_hex(16) if path == "/telephony/voice" else active_call(client)
    before = call_state(db, call_sid)
    updates_before = len(twilio.call_updates)
    params, headers = forgery(path, call_params(call_sid, CallStatus="completed"))
    with nothing_written(db):
        response = client.post(path, data=params, headers=headers)
    assert response.status_code == 403
    assert call_state(db, call_sid) == before
    assert len(twilio.call_updates) == updates_before


@pytest.mark.parametrize("path", WEBHOOKS, ids=[path.rsplit("/", 1)[1] for path in WEBHOOKS])
def test_non_utf8_twilio_form_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], path: str
) -> None:
    headers = {SIGNATURE: "x", "Content-Type": "application/x-www-form-urlencoded"}
    with nothing_written(db):
        response = client.post(path, content=b"CallSid=CA%FF%FE&From=\xff", headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [pytest.param(path, 204 if path.endswith("status") else 200, id=path.rsplit("/", 1)[1]) for path in WEBHOOKS],
)
def test_https_signature_arriving_as_http_behind_the_proxy_passes(client: TestClient, path: str, status: int) -> None:
    """The TLS-terminating proxy forwards http://…; Twilio signed https://PUBLIC_BASE_URL/…, which is what counts."""
    call_sid = "CA" + secrets.token_hex(16) if path == "/telephony/voice" else active_call(client)
    params = call_params(call_sid, CallStatus="in-progress")
    headers = {SIGNATURE: sign(PUBLIC + path, params), "X-Forwarded-Proto": "https"}
    response = client.post(path, data=params, headers=headers)
    assert response.request.url.scheme == "http"
    assert response.status_code == status, response.text


# How each forged upgrade is signed, given the real stream path (with its token) of the call.
STREAM_SIGNATURES: dict[str, Callable[[str], str | None]] = {
    "missing": lambda path: None,
    "empty": lambda path: "",
    "garbage": lambda path: "bm90IGEgc2lnbmF0dXJl",
    "https-form": lambda path: sign(PUBLIC + path, {}),
    "ws-form-of-the-url-the-app-sees": lambda path: sign("ws://testserver" + path, {}),
    "another-path": lambda path: sign("wss://civic.example.kr/telephony/voice", {}),
    "another-accounts-auth-token": lambda path: sign("wss://civic.example.kr" + path, {}, OTHER_TOKEN),
    "the-url-without-its-token": lambda path: sign("wss://civic.example.kr" + STREAM_PATH, {}),
}


@pytest.mark.parametrize("signed", list(STREAM_SIGNATURES.values()), ids=list(STREAM_SIGNATURES))
def test_unsigned_or_forged_stream_upgrade_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], twilio: FakeTwilioAPI, signed: Callable[[str], str | None]
) -> None:
    call_sid, path = answered_call(client)
    before, updates_before = call_state(db, call_sid), len(twilio.call_updates)
    signature = signed(path)
    headers = {} if signature is None else {SIGNATURE: signature}
    with nothing_written(db):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path, headers=headers):
            pass
        assert refused.value.code == 1008
    assert call_state(db, call_sid) == before and len(twilio.call_updates) == updates_before


def test_a_signed_upgrade_without_a_token_is_refused(client: TestClient) -> None:
    headers = {SIGNATURE: sign("wss://civic.example.kr" + STREAM_PATH, {})}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(STREAM_PATH, headers=headers):
        pass
    assert refused.value.code == 1008


def test_signed_stream_with_another_accounts_start_is_ignored(
    client: TestClient, db: sessionmaker[Session], twilio: FakeTwilioAPI
) -> None:
    call_sid, path = answered_call(client)
    before, updates_before = call_state(db, call_sid), len(twilio.call_updates)
    headers = {SIGNATURE: sign("wss://civic.example.kr" + path, {})}
    start = {"accountSid": "AC" + "0" * 32, "callSid": call_sid, "customParameters": {"turn": "0"}}
    with client.websocket_connect(path, headers=headers) as ws:
        ws.send_text(json.dumps({"event": "start", "start": start}))
        ws.send_text(json.dumps({"event": "dtmf", "dtmf": {"digit": "0"}}))  # "an operator", if it were heard
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    assert call_state(db, call_sid) == before and len(twilio.call_updates) == updates_before


# ---- Telegram -------------------------------------------------------------------------------------------------------


def telegram_post(client: TestClient, body: Any, secret: str | None = TELEGRAM_SECRET) -> Any:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    if isinstance(body, bytes):
        return client.post("/telegram/webhook", content=body, headers=headers)
    return client.post("/telegram/webhook", json=body, headers=headers)


def new_chat() -> int:
    return 8_000_000 + secrets.randbelow(1_000_000)


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong", PLACEHOLDER_TELEGRAM_SECRET, TELEGRAM_SECRET[:-1], TELEGRAM_SECRET + "x"],
    ids=["missing", "empty", "wrong", "placeholder", "truncated", "extended"],
)
def test_telegram_update_without_the_secret_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], telegram: tg.FakeTelegramAPI, rasa: FakeRasa, secret: str | None
) -> None:
    chat = new_chat()
    with nothing_written(db):
        assert telegram_post(client, tg.text_update(chat, "hello"), secret).status_code == 403
        time.sleep(0.2)  # the dialogue runs behind the webhook: give a wrongly accepted update time to land
    assert not telegram.sent_messages(chat)
    assert not [turn for turn in rasa.turns if turn["sender"] == f"telegram:{chat}"]


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00{", b"{not json", b"[1, 2]", b'{"update_id": "7"}', b'{"update_id": 1.5}', b"null"],
    ids=["non-utf8", "invalid-json", "not-an-object", "string-update-id", "float-update-id", "null"],
)
def test_malformed_telegram_update_is_400_before_any_write(
    client: TestClient, db: sessionmaker[Session], body: bytes
) -> None:
    with nothing_written(db):
        assert telegram_post(client, body).status_code == 400


def test_oversized_telegram_update_is_413_before_any_write(client: TestClient, db: sessionmaker[Session]) -> None:
    update = tg.text_update(new_chat(), "x" * 70_000)
    with nothing_written(db):
        assert telegram_post(client, json.dumps(update).encode()).status_code == 413


def test_a_replayed_telegram_update_is_handled_once(
    client: TestClient, db: sessionmaker[Session], telegram: tg.FakeTelegramAPI, rasa: FakeRasa
) -> None:
    chat = new_chat()
    update = tg.text_update(chat, "가로등이 나갔어요")
    for _ in range(3):  # Telegram's retries arrive before the first is handled
        assert telegram_post(client, update).status_code == 200
    telegram.wait_for(lambda: bool(telegram.sent_messages(chat)))
    wait_until_handled(db, update["update_id"])
    assert telegram_post(client, update).status_code == 200  # and a replay long after
    time.sleep(0.5)
    with session_scope(db) as session:
        stored = session.scalar(
            select(func.count()).select_from(InboundUpdate).where(InboundUpdate.update_key == str(update["update_id"]))
        )
        conversation = session.execute(
            select(Conversation).where(Conversation.channel == "telegram", Conversation.external_id == str(chat))
        ).scalar_one()
        citizen_messages = session.scalar(
            select(func.count()).where(Message.conversation_id == conversation.id, Message.direction == "in")
        )
    assert (stored, citizen_messages) == (1, 1)
    assert [call.params.get("text") for call in telegram.sent_messages(chat)] == ["echo: 가로등이 나갔어요"]
    assert len([turn for turn in rasa.turns if turn["sender"] == f"telegram:{chat}"]) == 1


def wait_until_handled(db: sessionmaker[Session], update_id: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db) as session:
            status = session.scalar(select(InboundUpdate.status).where(InboundUpdate.update_key == str(update_id)))
        if status == inbox.HANDLED:
            return
        time.sleep(0.05)
    raise AssertionError(f"update {update_id} not handled within {timeout} s")
