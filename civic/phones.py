"""Phone numbers: E.164 normalisation, encryption at rest, blind index, citizen lookup."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.errors import InvalidPhone
from civic.models import Citizen
from civic.settings import get_settings

NONCE_BYTES = 12
# Binds ciphertexts to their purpose, so a blob copied into another encrypted column won't decrypt.
_AAD = b"civic.citizens.phone"


def normalize_phone(text: str, default_region: str = "KR") -> str:
    """The E.164 form of a phone number (010-1234-5678 → +821012345678); raises InvalidPhone."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        # No chained cause and no number in the message: tracebacks end up in logs.
        raise InvalidPhone("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _encryption_key() -> bytes:
    key = base64.b64decode(get_settings().phone_encryption_key)
    if len(key) != 32:
        raise ValueError("PHONE_ENCRYPTION_KEY must be base64 of 32 bytes (AES-256)")
    return key


def encrypt_phone(e164: str) -> bytes:
    """AES-256-GCM ciphertext of the number: a random 12-byte nonce, then ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(_encryption_key()).encrypt(nonce, e164.encode(), _AAD)


def decrypt_phone(blob: bytes) -> str:
    """The number `encrypt_phone` encrypted; raises cryptography's InvalidTag if tampered with."""
    nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
    return AESGCM(_encryption_key()).decrypt(nonce, ciphertext, _AAD).decode()


def seal(plaintext: str, aad: bytes) -> bytes:
    """AES-256-GCM with the phone key for other short secrets at rest (an SMS code's text); `aad` names the use."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(_encryption_key()).encrypt(nonce, plaintext.encode(), aad)


def unseal(blob: bytes, aad: bytes) -> str:
    """What `seal` sealed with the same `aad`; raises cryptography's InvalidTag otherwise."""
    return AESGCM(_encryption_key()).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad).decode()


def phone_blind_index(e164: str) -> str:
    """HMAC-SHA256 hex of the number: equal numbers give equal indexes, without decryption."""
    key = get_settings().phone_index_key.encode()
    return hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()


def _find(session: Session, index: str) -> Citizen | None:
    return session.execute(select(Citizen).where(Citizen.phone_index == index)).scalar_one_or_none()


def get_or_create_citizen(session: Session, *, phone: str) -> Citizen:
    """The citizen with this (verified) phone number, created on first sight."""
    e164 = normalize_phone(phone)
    index = phone_blind_index(e164)
    citizen = _find(session, index)
    if citizen is not None:
        return citizen
    citizen = Citizen(phone_ciphertext=encrypt_phone(e164), phone_index=index, created_at=utcnow())
    # The same caller can verify on two channels at once; the unique index picks one row.
    try:
        with session.begin_nested():
            session.add(citizen)
    except IntegrityError:
        existing = _find(session, index)
        if existing is None:
            raise
        return existing
    return citizen
