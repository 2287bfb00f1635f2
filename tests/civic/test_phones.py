"""Phone numbers: E.164, encryption at rest, blind index, citizens."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy.orm import Session

from civic.errors import InvalidPhone
from civic.phones import (
    decrypt_phone,
    encrypt_phone,
    get_or_create_citizen,
    normalize_phone,
    phone_blind_index,
)


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("010-1234-5678", "+821012345678"),
        ("01012345678", "+821012345678"),
        ("+82 10 1234 5678", "+821012345678"),
        ("02-2133-0120", "+82221330120"),
        ("+81 90-1234-5678", "+819012345678"),
    ],
)
def test_normalize_phone(text: str, e164: str) -> None:
    assert normalize_phone(text) == e164


@pytest.mark.parametrize("text", ["hello", "123", "010-1234", ""])
def test_invalid_phone(text: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(text)
    assert info.value.__cause__ is None  # no chained parser error that could echo the number


def test_encryption_round_trip_with_fresh_nonce() -> None:
    one, two = encrypt_phone("+821012345678"), encrypt_phone("+821012345678")
    assert one != two and b"1012345678" not in one
    assert decrypt_phone(one) == decrypt_phone(two) == "+821012345678"
    tampered = one[:-1] + bytes([one[-1] ^ 1])
    with pytest.raises(InvalidTag):
        decrypt_phone(tampered)


def test_blind_index_is_stable() -> None:
    index = phone_blind_index("+821012345678")
    assert index == phone_blind_index("+821012345678") != phone_blind_index("+821012345679")
    assert len(index) == 64 and "1012345678" not in index


def test_get_or_create_citizen(session: Session) -> None:
    citizen = get_or_create_citizen(session, phone="010-9876-5432")
    same = get_or_create_citizen(session, phone="+82 10 9876 5432")
    assert same.id == citizen.id
    assert decrypt_phone(citizen.phone_ciphertext) == "+821098765432"
