"""SMS codes are never stored or shown in plain text: sealed in the outbox, opened only to send, then dropped."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from civic.db import session_scope
from civic.models import OutboxMessage
from civic.outbox import DEAD, SENT
from civic.phones import normalize_phone
from civic.sms import SEALED_PLACEHOLDER
from civic.verification import send_verification_code
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.inprocess_app import new_phone, running_app
from tests.limits import reset_rate_limits
from tests.operator_console.helpers import log_in, new_user


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "3" * 32, "secrecy-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, twilio: FakeTwilioAPI) -> Iterator[TestClient]:
    with running_app(db_url, twilio) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    reset_rate_limits(factory)
    client.cookies.clear()
    return factory


def queue_code(db: sessionmaker[Session], phone: str, *, dead: bool = False) -> tuple[int, str]:
    """Queues a code's SMS as the web does; `dead` marks it undeliverable in the same transaction (never sent)."""
    codes: list[str] = []

    def sms_text(code: str) -> str:
        codes.append(code)
        return f"[서울시] 인증번호 {code}"

    send_verification_code(
        db, phone_e164=phone, purpose="poll:secrecy", budget="poll:secrecy", client="192.0.2.1",
        sms_text=sms_text, language="ko",
    )  # fmt: skip
    with session_scope(db) as session:
        row = (
            session.execute(
                select(OutboxMessage).where(OutboxMessage.kind == "verification_code").order_by(OutboxMessage.id.desc())
            )
            .scalars()
            .first()
        )
        assert row is not None
        if dead:
            session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(status=DEAD, attempts=8))
        return row.id, codes[0]


def row_as_text(db: sessionmaker[Session], row_id: int) -> tuple[OutboxMessage, str]:
    with session_scope(db) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return row, f"{row.text} {row.data} {row.dedupe_key} {row.last_error}"


def test_the_code_is_sealed_in_the_outbox_and_dropped_once_sent(
    db: sessionmaker[Session], twilio: FakeTwilioAPI
) -> None:
    phone = normalize_phone(new_phone())
    row_id, _ = queue_code(db, phone)
    deadline = time.monotonic() + 10
    while not twilio.messages_to(phone) and time.monotonic() < deadline:
        time.sleep(0.05)
    [message] = twilio.messages_to(phone)
    match = re.search(r"인증번호 (\d{6})", message["body"])
    assert match, "the sender opened the sealed text"
    code = match.group(1)
    while time.monotonic() < deadline:
        row, everything = row_as_text(db, row_id)
        if row.status == SENT:
            break
        time.sleep(0.05)
    assert row.status == SENT and row.text == "" and "sealed_text" not in row.data
    assert code not in everything


def test_an_undelivered_code_is_unreadable_in_the_database_and_on_the_outbox_page(
    client: TestClient, db: sessionmaker[Session], twilio: FakeTwilioAPI
) -> None:
    phone = normalize_phone(new_phone())
    row_id, code = queue_code(db, phone, dead=True)
    row, everything = row_as_text(db, row_id)
    assert row.text == SEALED_PLACEHOLDER and row.data.get("sealed_text")
    assert code not in everything
    assert "인증번호" not in everything  # the SMS's words are sealed with its code
    log_in(client, new_user(db, "operator"))
    page = client.get("/console/outbox")
    assert page.status_code == 200 and f"{row_id}" in page.text
    assert "[verification code]" in page.text and "인증번호" not in page.text and code not in page.text
    assert twilio.messages_to(phone) == []
