"""Signed checkpoints: signing, verification, exports and keys."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from civic.checkpoints import (
    Checkpoint,
    checkpoint_body,
    checkpoint_timestamp,
    generate_private_key_b64,
    load_private_key,
    load_public_key,
    public_key_b64,
    sign_checkpoint,
    verify_checkpoint,
)
from civic.merkle import EMPTY_ROOT, leaf_hash

ROOT = leaf_hash(b"root")
TIME = "2026-05-01T09:30:00Z"


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return load_private_key(generate_private_key_b64())


def test_body_is_canonical_json_of_the_four_fields() -> None:
    expected = f'{{"log_id":"poll-7","root_hash":"{ROOT.hex()}","size":3,"timestamp":"{TIME}"}}'
    assert checkpoint_body("poll-7", 3, ROOT, TIME) == expected.encode()


def test_sign_and_verify_roundtrip(key: Ed25519PrivateKey) -> None:
    checkpoint = sign_checkpoint(key, "poll-7", 3, ROOT, TIME)
    assert checkpoint == Checkpoint("poll-7", 3, ROOT, TIME, checkpoint.signature)
    assert len(checkpoint.signature) == 64
    assert verify_checkpoint(key.public_key(), checkpoint)
    assert verify_checkpoint(key.public_key(), sign_checkpoint(key, "poll-7", 0, EMPTY_ROOT, TIME))


@pytest.mark.parametrize(
    "change",
    [
        {"log_id": "poll-8"},
        {"size": 4},
        {"root_hash": leaf_hash(b"other root")},
        {"timestamp": "2026-05-01T09:30:01Z"},
        {"signature": bytes(64)},
        {"signature": b""},
        {"size": -1},
        {"timestamp": "2026-05-01 09:30:00"},
    ],
)
def test_any_change_fails_verification(key: Ed25519PrivateKey, change: dict[str, object]) -> None:
    checkpoint = sign_checkpoint(key, "poll-7", 3, ROOT, TIME)
    assert not verify_checkpoint(key.public_key(), dataclasses.replace(checkpoint, **change))  # type: ignore[arg-type]


def test_another_key_fails_verification(key: Ed25519PrivateKey) -> None:
    checkpoint = sign_checkpoint(key, "poll-7", 3, ROOT, TIME)
    assert not verify_checkpoint(Ed25519PrivateKey.generate().public_key(), checkpoint)


def test_dict_roundtrip_through_json(key: Ed25519PrivateKey) -> None:
    checkpoint = sign_checkpoint(key, "poll-7", 3, ROOT, TIME)
    exported = json.loads(json.dumps(checkpoint.to_dict()))
    assert exported["root_hash"] == ROOT.hex()
    assert Checkpoint.from_dict(exported) == checkpoint
    assert verify_checkpoint(key.public_key(), Checkpoint.from_dict(exported))


@pytest.mark.parametrize(
    "change",
    [{"size": "3"}, {"size": True}, {"root_hash": "zz"}, {"signature": 5}, {"log_id": None}, {"timestamp": 1}],
)
def test_from_dict_refuses_malformed_exports(key: Ed25519PrivateKey, change: dict[str, object]) -> None:
    exported = sign_checkpoint(key, "poll-7", 3, ROOT, TIME).to_dict() | change
    with pytest.raises(ValueError):
        Checkpoint.from_dict(exported)
    with pytest.raises(ValueError):
        Checkpoint.from_dict({"log_id": "poll-7"})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", 3, ROOT, TIME), "log_id"),
        (("p", -1, ROOT, TIME), "size"),
        (("p", 3, ROOT[:31], TIME), "root_hash"),
        (("p", 3, ROOT, "2026-05-01T09:30:00+00:00"), "timestamp"),
        (("p", 3, ROOT, "2026-05-01T09:30:00.5Z"), "timestamp"),
        (("p", 3, ROOT, "2026-02-30T09:30:00Z"), "does not match|day is out of range"),
    ],
)
def test_signing_refuses_malformed_fields(key: Ed25519PrivateKey, arguments: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign_checkpoint(key, *arguments)


def test_timestamps_are_utc_whole_seconds() -> None:
    seoul = timezone(timedelta(hours=9))
    assert checkpoint_timestamp(datetime(2026, 5, 1, 18, 30, 0, 999_999, tzinfo=seoul)) == TIME
    assert checkpoint_timestamp().endswith("Z")
    assert checkpoint_timestamp(datetime(2026, 5, 1, tzinfo=UTC)) == "2026-05-01T00:00:00Z"
    with pytest.raises(ValueError):
        checkpoint_timestamp(datetime(2026, 5, 1))


def test_keys_load_from_the_raw_seed_setting() -> None:
    # RFC 8032 §7.1, TEST 1: this seed has this public key.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    key = load_private_key(base64.b64encode(seed).decode())
    assert public_key_b64(key) == base64.b64encode(public).decode()
    checkpoint = sign_checkpoint(key, "poll-7", 3, ROOT, TIME)
    assert verify_checkpoint(load_public_key(public_key_b64(key)), checkpoint)


def test_generated_keys_are_fresh_32_byte_seeds() -> None:
    first, second = generate_private_key_b64(), generate_private_key_b64()
    assert first != second
    assert len(base64.b64decode(first)) == 32
    load_private_key(first)


SHORT_KEY, LONG_KEY = base64.b64encode(bytes(31)).decode(), base64.b64encode(bytes(64)).decode()


@pytest.mark.parametrize("text", ["", "not base64!", SHORT_KEY, LONG_KEY])
def test_bad_key_settings_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError, match="base64 of 32 bytes") as caught:
        load_private_key(text)
    assert caught.value.__cause__ is None and (not text or text not in str(caught.value))
    with pytest.raises(ValueError):
        load_public_key(text)
