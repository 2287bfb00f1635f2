"""Twilio's inbound SMS webhook in process: a caller answers the "fixed?" SMS; forged or unsigned posts are refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.db import session_scope
from civic.models import Case, CaseFeedback, OutboxMessage
from civic.phones import get_or_create_citizen
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.case_paths import resolve
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app

ACCOUNT = "AC" + "5" * 32
TOKEN = "sms-test-twilio-token"
PUBLIC = "https://civic.example.kr"
PATH = "/telephony/sms"


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa) -> Iterator[TestClient]:
    with local_twilio(ACCOUNT, TOKEN) as twilio:
        fake: FakeTwilioAPI = twilio
        with running_app(db_url, fake, RASA_URL=rasa.url, PUBLIC_BASE_URL=PUBLIC) as test_client:
            yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def resolved_phone_case(db: sessionmaker[Session]) -> tuple[str, str, int]:
    """A caller's case, resolved: (the caller's number, the case number, the call's conversation id)."""
    phone = "+8210" + str(uuid.uuid4().int)[:8]
    with session_scope(db) as session:
        call = get_or_create_conversation(session, channel="phone", external_id="CA" + uuid.uuid4().hex)
        call.citizen_id = get_or_create_citizen(session, phone=phone).id
        case = file_case(
            session,
            category="broken_streetlight",
            district="관악구",
            place="신림역 4번 출구",
            description="가로등이 꺼져 있어요",
            channel="phone",
            conversation_id=call.id,
        )
        resolve(session, case, "전구를 교체했습니다.")
        return phone, case.number, call.id


def sms(phone: str, body: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "To": "+8212000", "Body": body}


def signed_post(client: TestClient, params: dict[str, str]) -> Any:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + PATH, params)
    return client.post(PATH, data=params, headers={"X-Twilio-Signature": signature})


def state_of(db: sessionmaker[Session], number: str) -> tuple[str, str]:
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        question = session.execute(select(CaseFeedback).where(CaseFeedback.case_id == case.id)).scalar_one()
        return case.status, question.state


def sms_texts(db: sessionmaker[Session], conversation_id: int) -> list[str]:
    with session_scope(db) as session:
        rows = session.execute(
            select(OutboxMessage.text)
            .where(OutboxMessage.conversation_id == conversation_id)
            .order_by(OutboxMessage.id)
        )
        return list(rows.scalars())


def test_a_caller_says_not_fixed_by_sms_and_the_case_is_reopened(client: TestClient, db: sessionmaker[Session]) -> None:
    phone, number, call_id = resolved_phone_case(db)
    assert sms_texts(db, call_id)[-1].endswith("해결됐으면 1, 아직이면 2를 답장해 주세요.")
    response = signed_post(client, sms(phone, "2"))
    assert response.status_code == 200 and "<Response>" in response.text
    assert state_of(db, number) == ("resolved", "awaiting_note")
    assert "무엇이 아직 해결되지 않았는지" in sms_texts(db, call_id)[-1]
    assert signed_post(client, sms(phone, "아직도 깜빡거려요")).status_code == 200
    assert state_of(db, number) == ("assigned", "reopened")
    assert "다시 접수했어요" in sms_texts(db, call_id)[-1]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p, h: (p | {"Body": "1"}, h), id="tampered-body"),
        pytest.param(lambda p, h: (p, {}), id="unsigned"),
        pytest.param(lambda p, h: (p, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}), id="wrong-signature"),
    ],
)
def test_forged_or_unsigned_sms_is_refused_before_anything_changes(
    client: TestClient, db: sessionmaker[Session], change: Any
) -> None:
    phone, number, call_id = resolved_phone_case(db)
    before = sms_texts(db, call_id)
    params = sms(phone, "2")
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC + PATH, params)}
    params, headers = change(params, headers)
    assert client.post(PATH, data=params, headers=headers).status_code == 403
    assert state_of(db, number) == ("resolved", "asked")
    assert sms_texts(db, call_id) == before


def test_an_sms_from_a_number_asked_nothing_is_left_alone(client: TestClient, db: sessionmaker[Session]) -> None:
    assert signed_post(client, sms("+821012345678", "1")).status_code == 200
