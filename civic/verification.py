"""SMS verification codes: issued with their SMS (rate-limited), checked (expiring, single use); only HMACs stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import rate_limits
from civic.conversations import get_or_create_conversation
from civic.db import session_scope, utcnow
from civic.models import VerificationCode
from civic.phones import phone_blind_index
from civic.settings import get_settings
from civic.sms import VERIFICATION_KIND, queue_sms

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5  # wrong tries that kill one code
HOUR = 3600.0
MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class Budget:
    """One shared rate limit of codes: its bucket, what it counts by, how many per how long, and the refusal."""

    bucket: str
    limit: int
    per_seconds: float
    refusal: str


# Sends, checked in this order in the sender's transaction (a refusal rolls the others' counts back). The
# requester's own budgets come first and the phone's ceiling last, so that a requester refused by their own
# budget never spends the phone's: from one address an attacker takes at most 3 of a victim's 10 an hour,
# and the victim, asking from their own address, still gets a code.
SEND_GAP = Budget("sms_send_gap", 1, 30, "too_many_sends")  # (purpose, phone, client): one code per 30-60 s
SENDS_PER_REQUESTER = Budget("sms_send_phone_client", 3, HOUR, "too_many_sends")  # (purpose, phone, client)
SENDS_PER_PHONE = Budget("sms_send_phone", 10, HOUR, "too_many_sends")  # (purpose, phone): the ceiling
# (client): SMS_CODES_PER_ADDRESS_PER_HOUR, read when used.
SENDS_PER_CLIENT_BUCKET = "sms_send_client"
# Checks (right or wrong), before the code is looked at. Per requester, never per phone alone: a phone-wide
# bound would let anyone block a victim's right code by guessing wrong from elsewhere. Codes are also bound
# to the requesting chat or browser (the purpose), so another requester's guesses never reach this code.
CHECKS_PER_REQUESTER = Budget("sms_check_phone_client", 10, HOUR, "check_limited")  # (purpose, phone, client)
CHECKS_PER_CLIENT = Budget("sms_check_client", 30, HOUR, "check_limited")  # (client)


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


def allowed_destination(phone_e164: str) -> bool:
    """Whether codes may be sent to this number: a mobile number of SMS_VERIFICATION_REGIONS (default Korea only).

    Fixed lines cannot read an SMS, and numbers abroad are what SMS pumping uses (premium-rate routes).
    """
    regions = {region.strip().upper() for region in get_settings().sms_verification_regions.split(",")}
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.region_code_for_number(number) in regions and phonenumbers.number_type(number) in MOBILE_TYPES


def _spend(session: Session, budget: Budget, key: str, now: datetime, limit: int | None = None) -> None:
    decision = rate_limits.allow(
        session, bucket=budget.bucket, key=key, limit=limit or budget.limit, per_seconds=budget.per_seconds, now=now
    )
    if not decision.allowed:
        raise VerificationError(budget.refusal, decision.retry_after_seconds)


def issue_code(
    session: Session, *, phone_e164: str, purpose: str, budget: str, client: str, now: datetime | None = None
) -> str:
    """A fresh 6-digit code for this phone and purpose, valid 5 minutes; the newest code replaces older ones.

    `purpose` binds the code to the chat or browser that asked; `budget` is what the send limits count by (the
    poll, or all web chats), `client` the requester's address. Raises VerificationError: "unsupported_number"
    (see allowed_destination), "too_many_sends" (this phone from this client: one per 30-60 s, 3 an hour; this
    phone from anywhere: 10 an hour) or "ip_limited" (this client: SMS_CODES_PER_ADDRESS_PER_HOUR). Counts are
    kept in the caller's transaction, which must roll back on the error so that a refused send counts nowhere.
    """
    now = now or utcnow()
    if not allowed_destination(phone_e164):
        raise VerificationError("unsupported_number")
    phone_index = phone_blind_index(phone_e164)
    requester = f"{budget}|{phone_index}|{client}"
    _spend(session, SEND_GAP, requester, now)
    _spend(session, SENDS_PER_REQUESTER, requester, now)
    per_client = get_settings().sms_codes_per_address_per_hour
    _spend(session, Budget(SENDS_PER_CLIENT_BUCKET, per_client, HOUR, "ip_limited"), client, now)
    _spend(session, SENDS_PER_PHONE, f"{budget}|{phone_index}", now)
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


def check_code(
    session: Session,
    *,
    phone_e164: str,
    purpose: str,
    code: str,
    budget: str,
    client: str,
    now: datetime | None = None,
) -> None:
    """Accepts the newest code for this phone and purpose once, or raises VerificationError.

    Codes: `check_limited` (this client tried too often: 10 an hour for this phone, 30 an hour in all),
    `no_code` (none sent, or already used), `expired`, `wrong_code`, `too_many_attempts` (the fifth wrong
    try kills the code). The caller must commit even when this raises: a wrong try is counted in the
    session, and rolling it back would give guessers unlimited attempts.
    """
    now = now or utcnow()
    phone_index = phone_blind_index(phone_e164)
    _spend(session, CHECKS_PER_REQUESTER, f"{budget}|{phone_index}|{client}", now)
    _spend(session, CHECKS_PER_CLIENT, client, now)
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


def send_verification_code(
    factory: sessionmaker[Session],
    *,
    phone_e164: str,
    purpose: str,
    budget: str,
    client: str,
    sms_text: Callable[[str], str],
    language: str,
) -> None:
    """A code and its SMS in one transaction: a code is never stored without its message, nor sent unstored.

    Raises VerificationError for a number codes do not go to and past the send limits (then nothing is
    kept, not even the limits' counts). The SMS's text, code included, is stored sealed.
    """
    now = utcnow()
    with session_scope(factory) as session:
        code = issue_code(session, phone_e164=phone_e164, purpose=purpose, budget=budget, client=client, now=now)
        # The SMS belongs to the phone's own conversation (keyed by its blind index), not to the chat's.
        conversation = get_or_create_conversation(
            session, channel="sms", external_id=phone_blind_index(phone_e164), language=language
        )
        queue_sms(
            session,
            conversation_id=conversation.id,
            phone_e164=phone_e164,
            text=sms_text(code),
            kind=VERIFICATION_KIND,
            secret=True,
            # Two requesters may ask for one phone at the same moment: a random part keeps their codes apart.
            dedupe_key=f"sms-code:{conversation.id}:{now:%Y%m%dT%H%M%S}:{secrets.token_hex(8)}",
        )
