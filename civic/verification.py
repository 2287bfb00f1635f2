"""SMS verification codes: issue (rate-limited), check (expiring, attempt-limited, single use); only HMACs stored."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import VerificationCode
from civic.phones import phone_blind_index
from civic.settings import get_settings

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
RESEND_INTERVAL = timedelta(seconds=60)
SENDS_PER_HOUR = 5
MAX_ATTEMPTS = 5


class VerificationError(Exception):
    """A code that cannot be sent or accepted; `code` names why (no phone number in the message)."""

    def __init__(self, code: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after_seconds = retry_after_seconds


def _code_hash(phone_index: str, purpose: str, code: str) -> str:
    # Keyed and bound to the phone and purpose: a leaked table neither reveals codes (10⁶ guesses
    # would be trivial without the key) nor lets a row be replayed for another number or poll.
    message = f"verification:{purpose}:{phone_index}:{code}".encode()
    return hmac.new(get_settings().secret_key.encode(), message, hashlib.sha256).hexdigest()


def _serialise_per_phone(session: Session, phone_index: str) -> None:
    """Two requests for one phone at once must not both pass the limits: PostgreSQL takes a
    transaction-scoped advisory lock per phone; SQLite's BEGIN IMMEDIATE already serialises writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(phone_index[:15], 16)})


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def issue_code(session: Session, *, phone_e164: str, purpose: str, now: datetime | None = None) -> str:
    """A fresh 6-digit code for this phone and purpose, valid 5 minutes; the newest code replaces older ones.

    Raises VerificationError("too_many_sends") past 1 send per minute or 5 per hour per phone
    (whatever the purpose: each send costs an SMS, and the limit is what stops SMS pumping).
    """
    now = now or utcnow()
    phone_index = phone_blind_index(phone_e164)
    _serialise_per_phone(session, phone_index)
    recent = list(
        session.execute(
            select(VerificationCode.created_at)
            .where(VerificationCode.phone_index == phone_index, VerificationCode.created_at > now - timedelta(hours=1))
            .order_by(VerificationCode.created_at)
        ).scalars()
    )
    if recent and now - recent[-1] < RESEND_INTERVAL:
        raise VerificationError("too_many_sends", _seconds_until(recent[-1] + RESEND_INTERVAL, now))
    if len(recent) >= SENDS_PER_HOUR:
        raise VerificationError("too_many_sends", _seconds_until(recent[-SENDS_PER_HOUR] + timedelta(hours=1), now))
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(
        VerificationCode(
            phone_index=phone_index,
            purpose=purpose,
            code_hash=_code_hash(phone_index, purpose, code),
            attempts=0,
            expires_at=now + CODE_TTL,
            created_at=now,
        )
    )
    session.flush()
    return code


def check_code(session: Session, *, phone_e164: str, purpose: str, code: str, now: datetime | None = None) -> None:
    """Accepts the newest code for this phone and purpose once, or raises VerificationError.

    Codes: `no_code` (none sent, or already used), `expired`, `wrong_code`, `too_many_attempts` (the
    fifth wrong try kills the code). The caller must commit even when this raises: a wrong try is
    counted in the session, and rolling it back would give guessers unlimited attempts.
    """
    now = now or utcnow()
    phone_index = phone_blind_index(phone_e164)
    query = (
        select(VerificationCode)
        .where(VerificationCode.phone_index == phone_index, VerificationCode.purpose == purpose)
        .order_by(VerificationCode.created_at.desc(), VerificationCode.id.desc())
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # concurrent guesses must not lose each other's attempt counts
    row = session.execute(query).scalar_one_or_none()
    if row is None or row.used_at is not None:
        raise VerificationError("no_code")
    if row.attempts >= MAX_ATTEMPTS:
        raise VerificationError("too_many_attempts")
    if now >= row.expires_at:
        raise VerificationError("expired")
    given = _code_hash(phone_index, purpose, code.strip())
    if not hmac.compare_digest(given, row.code_hash):
        row.attempts += 1
        session.flush()
        raise VerificationError("too_many_attempts" if row.attempts >= MAX_ATTEMPTS else "wrong_code")
    row.used_at = now
    session.flush()
