"""SMS through the outbox: the real twilio client against a fake Twilio REST API on a local port."""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException

from civic import outbox
from civic.conversations import get_or_create_conversation
from civic.db import utcnow
from civic.errors import InvalidPhone
from civic.models import OutboxMessage
from civic.phones import decrypt_phone, normalize_phone
from civic.settings import Settings, get_settings
from civic.sms import CHANNEL, queue_sms
from telephony.local_twilio import FakeTwilioAPI
from telephony.local_twilio import serve_in_thread as serve
from telephony.sms import SmsDelivery, make_twilio_client
from tests.inprocess_app import new_phone

KOREAN_TEXT = "[서울시] 민원 SR-2026-000123 처리가 완료되었습니다."
CALL_SID = "CA" + "0" * 32
Register = Callable[..., SmsDelivery]


@pytest.fixture
def fake_twilio() -> FakeTwilioAPI:
    settings = get_settings()
    return FakeTwilioAPI(settings.twilio_account_sid, settings.twilio_auth_token)


@pytest.fixture
def twilio_settings(fake_twilio: FakeTwilioAPI) -> Iterator[Settings]:
    """The test settings with the Twilio API base URL pointing at the fake."""
    with serve(fake_twilio.app) as url:
        yield get_settings().model_copy(update={"twilio_api_base_url": url})


@pytest.fixture
def register(twilio_settings: Settings) -> Iterator[Register]:
    """Registers an SmsDelivery (with optional setting overrides) as the `sms` sender; undone after the test."""
    deliveries: list[SmsDelivery] = []

    def make(**overrides: object) -> SmsDelivery:
        delivery = SmsDelivery(twilio_settings.model_copy(update=overrides))
        delivery.register()
        deliveries.append(delivery)
        return delivery

    yield make
    outbox.unregister_sender(CHANNEL)
    for delivery in deliveries:
        delivery.close()


def _phone() -> str:
    """A fresh Korean mobile number in E.164, so no two tests share a recipient (010-5xxx is not allocated)."""
    return normalize_phone(new_phone())


def _queue(session: Session, phone: str, text: str = KOREAN_TEXT) -> OutboxMessage:
    conversation = get_or_create_conversation(session, channel="phone", external_id=uuid.uuid4().hex)
    row = queue_sms(
        session,
        conversation_id=conversation.id,
        phone_e164=phone,
        text=text,
        kind="case_status",
        dedupe_key=uuid.uuid4().hex,
    )
    assert row is not None
    session.commit()
    return row


async def _deliver(factory: sessionmaker[Session], session: Session, row: OutboxMessage, now: datetime) -> None:
    await outbox.deliver_due(factory, now=now)
    session.refresh(row)


async def test_queued_sms_is_delivered(
    session: Session, bound_factory: sessionmaker[Session], fake_twilio: FakeTwilioAPI, register: Register
) -> None:
    delivery = register()
    phone = _phone()
    row = _queue(session, phone)
    now = utcnow() + timedelta(seconds=1)
    await _deliver(bound_factory, session, row, now)

    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, now, None)
    [sent] = fake_twilio.messages_to(phone)
    assert (sent["from"], sent["body"]) == (delivery.settings.twilio_phone_number, KOREAN_TEXT)
    assert re.fullmatch(r"SM[0-9a-f]{32}", sent["sid"])
    assert (sent["status"], sent["num_segments"]) == ("queued", "1")


async def test_number_is_stored_encrypted_and_never_logged(
    session: Session,
    bound_factory: sessionmaker[Session],
    fake_twilio: FakeTwilioAPI,
    register: Register,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    register()
    delivered, refused = _phone(), _phone()
    # Real Twilio error texts can quote the number: the refusal must not carry it into logs or the row.
    fake_twilio.reject_number(refused, message=f"The 'To' number {refused} is not a valid phone number.")
    rows = [_queue(session, delivered), _queue(session, refused)]
    now = utcnow() + timedelta(seconds=1)
    await outbox.deliver_due(bound_factory, now=now)

    for row, phone in zip(rows, (delivered, refused), strict=True):
        session.refresh(row)
        assert set(row.data) == {"to_ciphertext"}
        assert decrypt_phone(base64.b64decode(row.data["to_ciphertext"])) == phone
        digits = phone.removeprefix("+82")  # the national significant number, however it is written
        stored = json.dumps(row.data) + row.text + (row.last_error or "")
        for text in (stored, caplog.text):
            assert digits not in text and digits[2:] not in text
    assert [row.status for row in rows] == ["sent", "dead"]
    assert "Messages.json" in caplog.text  # the library's request log was captured, so the check above means something


async def test_wrong_auth_token_is_retried_not_dropped(
    session: Session, bound_factory: sessionmaker[Session], fake_twilio: FakeTwilioAPI, register: Register
) -> None:
    # An operator's mistake that retrying alone won't fix, but the citizen's message must survive until the
    # token is corrected (or outbox_max_attempts runs out), so it stays retryable.
    register(twilio_auth_token="not-the-token")
    phone = _phone()
    row = _queue(session, phone)
    now = utcnow() + timedelta(seconds=1)
    await _deliver(bound_factory, session, row, now)

    assert (row.status, row.attempts) == ("failed", 1)
    assert row.next_attempt_at == now + outbox.backoff(1)
    assert row.last_error == "SmsFailed: twilio HTTP 401 code 20003"
    assert fake_twilio.messages_to(phone) == []

    register()  # the operator fixes the token
    await _deliver(bound_factory, session, row, row.next_attempt_at)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(fake_twilio.messages_to(phone)) == 1


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        (21211, "The 'To' number is not a valid phone number.", "dead"),
        (21610, "Attempt to send to unsubscribed recipient", "dead"),
        (21614, "'To' number is not a valid mobile number", "dead"),
        # Our From number cannot send SMS: fixed in the Twilio console, after which the message must still go.
        (21606, "The 'From' phone number provided is not a valid message-capable Twilio phone number.", "failed"),
    ],
)
async def test_refused_recipient(
    session: Session,
    bound_factory: sessionmaker[Session],
    fake_twilio: FakeTwilioAPI,
    register: Register,
    code: int,
    message: str,
    status: str,
) -> None:
    register()
    phone = _phone()
    fake_twilio.reject_number(phone, code=code, message=message)
    row = _queue(session, phone)
    now = utcnow() + timedelta(seconds=1)
    await _deliver(bound_factory, session, row, now)

    assert (row.status, row.attempts) == (status, 1)
    if status == "dead":
        assert row.last_error == f"undeliverable: twilio HTTP 400 code {code}"
    else:
        assert row.next_attempt_at == now + outbox.backoff(1)


@pytest.mark.parametrize(("http_status", "code"), [(500, 20500), (429, 20429)])
async def test_server_error_or_rate_limit_is_retried(
    session: Session,
    bound_factory: sessionmaker[Session],
    fake_twilio: FakeTwilioAPI,
    register: Register,
    http_status: int,
    code: int,
) -> None:
    register()
    phone = _phone()
    fake_twilio.fail_next(http_status)
    row = _queue(session, phone)
    now = utcnow() + timedelta(seconds=1)
    await _deliver(bound_factory, session, row, now)

    assert (row.status, row.attempts) == ("failed", 1)
    assert row.next_attempt_at == now + outbox.backoff(1)
    assert row.last_error == f"SmsFailed: twilio HTTP {http_status} code {code}"

    await _deliver(bound_factory, session, row, row.next_attempt_at)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(fake_twilio.messages_to(phone)) == 1


async def test_row_without_recipient_is_dead(
    session: Session, bound_factory: sessionmaker[Session], register: Register
) -> None:
    register()
    conversation = get_or_create_conversation(session, channel="phone", external_id=uuid.uuid4().hex)
    row = outbox.enqueue(
        session, conversation_id=conversation.id, channel=CHANNEL, kind="t", text="x", dedupe_key=uuid.uuid4().hex
    )
    assert row is not None
    session.commit()
    await _deliver(bound_factory, session, row, utcnow() + timedelta(seconds=1))
    assert (row.status, row.last_error) == ("dead", "undeliverable: no readable to_ciphertext")


def test_queue_sms_normalises_dedupes_and_refuses_bad_numbers(session: Session) -> None:
    conversation = get_or_create_conversation(session, channel="phone", external_id=uuid.uuid4().hex)
    key = uuid.uuid4().hex

    def queue(phone: str, dedupe_key: str = key) -> OutboxMessage | None:
        return queue_sms(
            session, conversation_id=conversation.id, phone_e164=phone, text="hi", kind="code", dedupe_key=dedupe_key
        )

    row = queue("010-2345-6789")
    assert row is not None and row.channel == "sms"
    assert decrypt_phone(base64.b64decode(row.data["to_ciphertext"])) == "+821023456789"
    assert queue("+821023456789") is None
    with pytest.raises(InvalidPhone):
        queue("12345", uuid.uuid4().hex)


def test_fake_refuses_bad_credentials(fake_twilio: FakeTwilioAPI, twilio_settings: Settings) -> None:
    url = f"{twilio_settings.twilio_api_base_url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    form = {"To": "+821023456789", "From": twilio_settings.twilio_phone_number, "Body": "hi"}
    expected = {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    for auth in [
        (fake_twilio.account_sid, "wrong"),
        ("ACsomeoneelse0000000000000000000", fake_twilio.auth_token),
        None,
    ]:
        response = httpx.post(url, data=form, auth=auth)
        assert (response.status_code, response.json()) == (401, expected)
    assert fake_twilio.messages == []

    response = httpx.post(url, data=form, auth=(fake_twilio.account_sid, fake_twilio.auth_token))
    assert response.status_code == 201
    assert (
        response.json()["uri"]
        == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages/{response.json()['sid']}.json"
    )

    client = make_twilio_client(twilio_settings.model_copy(update={"twilio_auth_token": "wrong"}))
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to="+821023456789", from_=twilio_settings.twilio_phone_number, body="hi")
    assert (refused.value.status, refused.value.code) == (401, 20003)


def test_client_reaches_the_base_url_whatever_the_environment(
    fake_twilio: FakeTwilioAPI, twilio_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # twilio-python would otherwise rewrite the host from these (api.twilio.com → api.dublin.ie1.twilio.com).
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    client = make_twilio_client(twilio_settings)
    assert client.api.base_url == twilio_settings.twilio_api_base_url

    fake_twilio.add_call(CALL_SID, from_number="+821023456789", to_number="+8220120")
    call = client.calls(CALL_SID).update(twiml="<Response><Hangup/></Response>")
    assert (call.sid, call.status, call._from) == (CALL_SID, "in-progress", "+821023456789")
    call = client.calls(CALL_SID).update(status="completed")
    assert call.status == "completed" and call.end_time is not None
    assert [update["params"] for update in fake_twilio.call_updates] == [
        {"Twiml": "<Response><Hangup/></Response>"},
        {"Status": "completed"},
    ]
