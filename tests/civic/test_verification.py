"""SMS verification codes: single use, attempt limit, expiry, send rate limits, nothing stored in clear."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import VerificationCode
from civic.phones import phone_blind_index
from civic.verification import MAX_ATTEMPTS, VerificationError, check_code, issue_code

PURPOSE = "poll:test"


@pytest.fixture
def phone() -> str:
    # A fresh number per test: rate limits are per phone and the session database is shared.
    return f"+82102{random.randrange(10**7):07d}"


def codes_of(session: Session, phone: str) -> list[VerificationCode]:
    query = select(VerificationCode).where(VerificationCode.phone_index == phone_blind_index(phone))
    return list(session.execute(query.order_by(VerificationCode.id)).scalars())


def refused(session: Session, phone: str, code: str, now: datetime, purpose: str = PURPOSE) -> str:
    with pytest.raises(VerificationError) as error:
        check_code(session, phone_e164=phone, purpose=purpose, code=code, now=now)
    return error.value.code


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_right_code_is_accepted_once_and_only_its_hmac_is_stored(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    assert len(code) == 6 and code.isdigit()
    [row] = codes_of(session, phone)
    assert code not in row.code_hash and phone not in row.phone_index and len(row.code_hash) == 64
    assert row.expires_at == now + timedelta(minutes=5)

    check_code(session, phone_e164=phone, purpose=PURPOSE, code=code, now=now + timedelta(seconds=30))
    assert codes_of(session, phone)[0].used_at is not None
    assert refused(session, phone, code, now + timedelta(seconds=31)) == "no_code"


def test_code_is_bound_to_its_purpose_and_phone(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    assert refused(session, phone, code, now, purpose="poll:other") == "no_code"
    other_phone = phone[:-1] + str((int(phone[-1]) + 1) % 10)
    assert refused(session, other_phone, code, now) == "no_code"
    check_code(session, phone_e164=phone, purpose=PURPOSE, code=code, now=now)


def test_wrong_codes_count_attempts_and_the_fifth_kills_the_code(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    for attempt in range(1, MAX_ATTEMPTS):
        assert refused(session, phone, wrong(code), now) == "wrong_code"
        assert codes_of(session, phone)[0].attempts == attempt
    assert refused(session, phone, wrong(code), now) == "too_many_attempts"
    # Dead: even the right code is refused now, and further tries are not counted.
    assert refused(session, phone, code, now) == "too_many_attempts"
    assert codes_of(session, phone)[0].attempts == MAX_ATTEMPTS
    assert codes_of(session, phone)[0].used_at is None


def test_a_wrong_try_then_the_right_code_still_works(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    assert refused(session, phone, wrong(code), now) == "wrong_code"
    check_code(session, phone_e164=phone, purpose=PURPOSE, code=f" {code} ", now=now)


def test_expired_code_is_refused(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    assert refused(session, phone, code, now + timedelta(minutes=5)) == "expired"
    assert refused(session, phone, code, now + timedelta(hours=2)) == "expired"


def test_no_code_sent(session: Session, phone: str) -> None:
    assert refused(session, phone, "123456", utcnow()) == "no_code"


def test_a_newer_code_replaces_the_older_one(session: Session, phone: str) -> None:
    now = utcnow()
    first = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    second = issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now + timedelta(seconds=61))
    later = now + timedelta(seconds=62)
    if first != second:
        assert refused(session, phone, first, later) == "wrong_code"
    check_code(session, phone_e164=phone, purpose=PURPOSE, code=second, now=later)


def test_one_send_per_minute(session: Session, phone: str) -> None:
    now = utcnow()
    issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now)
    with pytest.raises(VerificationError) as error:
        issue_code(session, phone_e164=phone, purpose="poll:another", now=now + timedelta(seconds=20))
    assert error.value.code == "too_many_sends"
    assert error.value.retry_after_seconds == 40
    issue_code(session, phone_e164=phone, purpose=PURPOSE, now=now + timedelta(seconds=60))


def test_five_sends_per_hour(session: Session, phone: str) -> None:
    start = utcnow()
    for minute in range(0, 50, 10):
        issue_code(session, phone_e164=phone, purpose=PURPOSE, now=start + timedelta(minutes=minute))
    with pytest.raises(VerificationError) as error:
        issue_code(session, phone_e164=phone, purpose=PURPOSE, now=start + timedelta(minutes=55))
    assert error.value.code == "too_many_sends"
    # The oldest of the five leaves the window at start + 60 min.
    assert error.value.retry_after_seconds == 5 * 60
    issue_code(session, phone_e164=phone, purpose=PURPOSE, now=start + timedelta(minutes=60, seconds=1))
    assert len(codes_of(session, phone)) == 6
