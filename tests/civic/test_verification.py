"""SMS verification codes: single use, attempt limit, expiry, send rate limits, nothing stored in clear."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import VerificationCode
from civic.phones import phone_blind_index
from civic.verification import MAX_ATTEMPTS, VerificationError, check_code, issue_code

PURPOSE = "poll:test"
CLIENT = "198.51.100.7"
# On a window's edge (whole hours of UTC), so the rate limits' windows are the same on every run.
T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def phone() -> str:
    # A fresh number per test: rate limits are per phone and the session database is shared.
    return f"+82102{random.randrange(10**7):07d}"


def codes_of(session: Session, phone: str) -> list[VerificationCode]:
    query = select(VerificationCode).where(VerificationCode.phone_index == phone_blind_index(phone))
    return list(session.execute(query.order_by(VerificationCode.id)).scalars())


def refused(session: Session, phone: str, code: str, now: datetime, purpose: str = PURPOSE) -> str:
    with pytest.raises(VerificationError) as error:
        check_code(session, phone_e164=phone, purpose=purpose, code=code, budget=PURPOSE, client=CLIENT, now=now)
    return error.value.code


def issue(session: Session, phone: str, *, now: datetime, purpose: str = PURPOSE, client: str = CLIENT) -> str:
    return issue_code(session, phone_e164=phone, purpose=purpose, budget=PURPOSE, client=client, now=now)


def check(session: Session, phone: str, *, code: str, now: datetime, client: str = CLIENT) -> None:
    check_code(session, phone_e164=phone, purpose=PURPOSE, code=code, budget=PURPOSE, client=client, now=now)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_right_code_is_accepted_once_and_only_its_hmac_is_stored(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue(session, phone, now=now)
    assert len(code) == 6 and code.isdigit()
    [row] = codes_of(session, phone)
    assert code not in row.code_hash and phone not in row.phone_index and len(row.code_hash) == 64
    assert row.expires_at == now + timedelta(minutes=5)

    check(session, phone, code=code, now=now + timedelta(seconds=30))
    assert codes_of(session, phone)[0].used_at is not None
    assert refused(session, phone, code, now + timedelta(seconds=31)) == "no_code"


def test_code_is_bound_to_its_purpose_and_phone(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue(session, phone, now=now)
    assert refused(session, phone, code, now, purpose="poll:other") == "no_code"
    other_phone = phone[:-1] + str((int(phone[-1]) + 1) % 10)
    assert refused(session, other_phone, code, now) == "no_code"
    check(session, phone, code=code, now=now)


def test_wrong_codes_count_attempts_and_the_fifth_kills_the_code(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue(session, phone, now=now)
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
    code = issue(session, phone, now=now)
    assert refused(session, phone, wrong(code), now) == "wrong_code"
    check(session, phone, code=f" {code} ", now=now)


def test_expired_code_is_refused(session: Session, phone: str) -> None:
    now = utcnow()
    code = issue(session, phone, now=now)
    assert refused(session, phone, code, now + timedelta(minutes=5)) == "expired"
    assert refused(session, phone, code, now + timedelta(hours=2)) == "expired"


def test_no_code_sent(session: Session, phone: str) -> None:
    assert refused(session, phone, "123456", utcnow()) == "no_code"


def test_a_newer_code_replaces_the_older_one(session: Session, phone: str) -> None:
    now = utcnow()
    first = issue(session, phone, now=now)
    second = issue(session, phone, now=now + timedelta(seconds=61))
    later = now + timedelta(seconds=62)
    if first != second:
        assert refused(session, phone, first, later) == "wrong_code"
    check(session, phone, code=second, now=later)


def test_one_send_per_requester_every_half_minute_and_three_an_hour(session: Session, phone: str) -> None:
    issue(session, phone, now=T0)
    with pytest.raises(VerificationError) as error:
        issue(session, phone, now=T0 + timedelta(seconds=20), purpose="poll:test:another-browser")
    assert error.value.code == "too_many_sends" and 0 < (error.value.retry_after_seconds or 0) <= 60
    issue(session, phone, now=T0 + timedelta(minutes=2))
    issue(session, phone, now=T0 + timedelta(minutes=4))
    with pytest.raises(VerificationError) as error:
        issue(session, phone, now=T0 + timedelta(minutes=6))
    assert error.value.code == "too_many_sends" and (error.value.retry_after_seconds or 0) > 60
    # Another requester (another address) still gets a code for the same phone.
    issue(session, phone, now=T0 + timedelta(minutes=6), client="203.0.113.9")


def test_a_phone_gets_at_most_ten_codes_an_hour_however_many_ask(session: Session, phone: str) -> None:
    for n in range(10):
        issue(session, phone, now=T0 + timedelta(minutes=n), client=f"192.0.2.{n}")
    with pytest.raises(VerificationError) as error:
        issue(session, phone, now=T0 + timedelta(minutes=11), client="192.0.2.200")
    assert error.value.code == "too_many_sends"
    assert len(codes_of(session, phone)) == 10


def test_numbers_codes_do_not_go_to(session: Session) -> None:
    for number in ("+12025550123", "+819012345678", "+8221201234"):  # US, a Japanese mobile, a Seoul landline
        with pytest.raises(VerificationError) as error:
            issue(session, number, now=T0)
        assert error.value.code == "unsupported_number" and error.value.retry_after_seconds is None
