"""Properties of phone normalisation (E.164), encryption at rest and the blind index."""

from __future__ import annotations

import re

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import example, given, settings
from hypothesis import strategies as st

from civic.errors import InvalidPhone
from civic.phones import decrypt_phone, encrypt_phone, normalize_phone, phone_blind_index

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
PROFILE = settings(max_examples=200, deadline=None)

# Korean mobile numbers: 010, then a block whose first digit libphonenumber accepts (010-5xxx, 010-0xxx and
# 010-1xxx are not allocated), then four digits.
mobiles = st.tuples(st.sampled_from("2346789"), st.integers(0, 999), st.integers(0, 9999)).map(
    lambda parts: (f"{parts[0]}{parts[1]:03d}", f"{parts[2]:04d}")
)
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def spellings(middle: str, last: str) -> list[str]:
    """The ways people write one Korean mobile number: with or without separators, country code, leading 0."""
    return [
        f"010-{middle}-{last}",
        f"010{middle}{last}",
        f"010 {middle} {last}",
        f"010.{middle}.{last}",
        f"(010) {middle}-{last}",
        f"+82 10 {middle} {last}",
        f"+82-10-{middle}-{last}",
        f"+821{0}{middle}{last}",
        f"+82 (0)10 {middle} {last}",
        f"82-10-{middle}-{last}",
        f"8210{middle}{last}",
        f"  010-{middle}-{last}  ",
        f"010-{middle}-{last}".translate(FULLWIDTH),
    ]


garbage = st.one_of(
    st.text(max_size=60),
    st.text(st.sampled_from("0123456789+-() ."), max_size=30),
    st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True),
    st.binary(max_size=40).map(lambda raw: raw.decode("utf-8", "replace")),
)


@PROFILE
@given(mobiles)
def test_every_spelling_of_a_korean_mobile_gives_the_same_e164(number: tuple[str, str]) -> None:
    middle, last = number
    expected = f"+8210{middle}{last}"
    assert {spelling: normalize_phone(spelling) for spelling in spellings(middle, last)} == dict.fromkeys(
        spellings(middle, last), expected
    )


@PROFILE
@given(garbage)
@example("")
@example("+")
@example("010")
@example("0" * 300)
@example("+82 10 1234 5678 ext. 99999999999999999999")
@example("\x00\u202e010-1234-5678")
def test_any_input_is_e164_or_invalid_phone(text: str) -> None:
    try:
        e164 = normalize_phone(text)
    except InvalidPhone as refusal:
        # The refusal must not quote the input: tracebacks and error messages end up in logs.
        assert (refusal.__cause__ is None and refusal.__context__ is None) or refusal.__suppress_context__
        digits = re.sub(r"\D", "", text)
        assert len(digits) < 4 or digits not in str(refusal)
        return
    assert E164.fullmatch(e164), e164
    assert normalize_phone(e164) == e164


@PROFILE
@given(st.one_of(mobiles.map(lambda n: f"+8210{n[0]}{n[1]}"), st.text(max_size=40)))
def test_encryption_round_trips_and_never_repeats(e164: str) -> None:
    first, second = encrypt_phone(e164), encrypt_phone(e164)
    assert decrypt_phone(first) == decrypt_phone(second) == e164
    assert first != second  # a fresh nonce each time: equal numbers must not look equal at rest
    if len(e164.encode()) >= 8:  # shorter strings turn up in random bytes by chance
        assert e164.encode() not in first
    tampered = bytearray(first)
    tampered[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        decrypt_phone(bytes(tampered))


@PROFILE
@given(mobiles, mobiles)
def test_blind_index_is_deterministic_and_tells_numbers_apart(a: tuple[str, str], b: tuple[str, str]) -> None:
    first, second = f"+8210{a[0]}{a[1]}", f"+8210{b[0]}{b[1]}"
    index = phone_blind_index(first)
    assert re.fullmatch(r"[0-9a-f]{64}", index)
    assert phone_blind_index(first) == index
    assert phone_blind_index(normalize_phone(f"010-{a[0]}-{a[1]}")) == index
    assert (phone_blind_index(second) == index) == (first == second)
    assert a[0] + a[1] not in index
