"""Signed checkpoints: C2SP signed notes and tlog-checkpoint bodies, keys, and known answers from Go's note package."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from civic import checkpoints
from civic.checkpoints import (
    KEY_NAME,
    Checkpoint,
    NoteError,
    checkpoint_timestamp,
    generate_private_key_b64,
    load_private_key,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from civic.merkle import EMPTY_ROOT, leaf_hash

ROOT = leaf_hash(b"root")
STATEMENT = leaf_hash(b"statement")
TIME = "2026-05-01T09:30:00Z"
ORIGIN = "seoul-civic/polls/Xq3v9TnB1cL0aZ7d"

# golang.org/x/mod/sumdb/note, note_test.go (TestSign, TestOpen): a signer key, its verifier key and the note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
# A real tlog checkpoint by sum.golang.org (transparency-dev/formats, log/checkpoint_test.go) and Go's pinned key.
SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n"
    "— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n"
)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return load_private_key(generate_private_key_b64())


def go_signer() -> Ed25519PrivateKey:
    """The Ed25519 seed inside Go's PRIVATE+KEY string (after the 0x01 type byte)."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(GO_SIGNER.split("+", 4)[4])[1:])


def a_checkpoint(**changes: object) -> Checkpoint:
    return dataclasses.replace(Checkpoint(ORIGIN, 3, ROOT, STATEMENT, TIME), **changes)  # type: ignore[arg-type]


def test_signing_matches_go_note_sign_byte_for_byte() -> None:
    signer = go_signer()
    assert str(verifier_key(signer, "PeterNeumann")) == GO_VERIFIER
    assert f"{verifier_key(signer, 'PeterNeumann').key_id:08x}" == "c74f20a3"
    assert sign_note(GO_TEXT, signer, "PeterNeumann") == GO_TEXT + "\n" + GO_PETER_SIG


def test_opening_matches_go_note_open() -> None:
    peter = parse_verifier_key(GO_VERIFIER)
    # One known signature and one from a key we do not know: the unknown one is ignored (signed-note).
    assert open_note(GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG, peter) == GO_TEXT
    enoch = parse_verifier_key("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop")
    assert open_note(GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG, enoch) == GO_TEXT
    with pytest.raises(NoteError, match=r"not signed by the city's key PeterNeumann\+c74f20a3"):
        open_note(GO_TEXT + "\n" + GO_ENOCH_SIG, peter)
    with pytest.raises(NoteError, match="bad signature by PeterNeumann"):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:], peter)
    # Go's badMsgs: no signature block, an unterminated one, control characters, a bad name, an extra line.
    for bad in [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + GO_PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + GO_PETER_SIG,
        GO_TEXT + "\n" + GO_PETER_SIG.replace("PeterNeumann", "Bad Name"),
        GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n",
    ]:
        with pytest.raises(NoteError, match="malformed note"):
            open_note(bad, peter)


def test_a_real_sum_golang_org_checkpoint_verifies() -> None:
    sumdb = parse_verifier_key(SUMDB_KEY)
    assert (sumdb.name, f"{sumdb.key_id:08x}") == ("sum.golang.org", "033de0ae")
    assert (
        open_note(SUMDB_NOTE, sumdb) == "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n"
    )
    with pytest.raises(NoteError, match="bad signature"):
        open_note(SUMDB_NOTE.replace("31700353", "31700354"), sumdb)


def test_verifier_keys_are_checked_like_go_new_verifier() -> None:
    assert str(parse_verifier_key(GO_VERIFIER)) == GO_VERIFIER
    for bad in [
        GO_VERIFIER[:-1],
        GO_VERIFIER.replace("c74f20a3", "c74f20a4"),  # key ID does not match
        GO_VERIFIER.replace("c74f20a3", "c74f20a"),
        GO_VERIFIER.replace("PeterNeumann", "Peter Neumann"),
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # Go: wrong length
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # Go: unknown algorithm
        "",
    ]:
        with pytest.raises(ValueError, match="not a verifier key"):
            parse_verifier_key(bad)


def test_checkpoint_body_is_a_tlog_checkpoint_with_our_extension_lines(key: Ed25519PrivateKey) -> None:
    root_b64 = base64.b64encode(ROOT).decode()
    assert a_checkpoint().text() == f"{ORIGIN}\n3\n{root_b64}\nstatement {STATEMENT.hex()}\ntime {TIME}\n"
    assert a_checkpoint(final=True).text().endswith(f"time {TIME}\nfinal\n")
    note = sign_checkpoint(key, a_checkpoint())
    text, signature_line = note.split("\n\n")
    assert text + "\n" == a_checkpoint().text()
    assert signature_line.startswith(f"— {KEY_NAME} ") and signature_line.endswith("\n")
    raw = base64.b64decode(signature_line.split(" ")[2])
    assert int.from_bytes(raw[:4], "big") == verifier_key(key).key_id and len(raw) == 68


def test_sign_and_open_roundtrip(key: Ed25519PrivateKey) -> None:
    city = verifier_key(key)
    for checkpoint in (a_checkpoint(), a_checkpoint(final=True), a_checkpoint(size=0, root_hash=EMPTY_ROOT)):
        assert open_checkpoint(sign_checkpoint(key, checkpoint), city) == checkpoint
    assert open_checkpoint(json.loads(json.dumps(sign_checkpoint(key, a_checkpoint()))), city) == a_checkpoint()


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n3\n", "\n4\n"), ("statement ", "statement 0"), (TIME, "2026-05-01T09:30:01Z"), ("Xq3v", "Xq3w")],
)
def test_any_change_to_the_signed_text_fails(key: Ed25519PrivateKey, old: str, new: str) -> None:
    note = sign_checkpoint(key, a_checkpoint())
    with pytest.raises(NoteError):
        open_checkpoint(note.replace(old, new, 1), verifier_key(key))


def test_adding_or_dropping_the_final_line_fails(key: Ed25519PrivateKey) -> None:
    city = verifier_key(key)
    with pytest.raises(NoteError, match="bad signature"):
        open_checkpoint(sign_checkpoint(key, a_checkpoint()).replace("Z\n\n", "Z\nfinal\n\n"), city)
    with pytest.raises(NoteError, match="bad signature"):
        open_checkpoint(sign_checkpoint(key, a_checkpoint(final=True)).replace("\nfinal\n", "\n"), city)


def test_another_key_fails(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(NoteError, match="not signed by the city's key"):
        open_checkpoint(sign_checkpoint(other, a_checkpoint()), verifier_key(key))
    # The city's name and key ID on another key's signature: the signature is checked and fails, not skipped.
    text = a_checkpoint().text()
    forged_signature = verifier_key(key).key_id.to_bytes(4, "big") + other.sign(text.encode())
    forged = f"{text}\n— {KEY_NAME} {base64.b64encode(forged_signature).decode()}\n"
    with pytest.raises(NoteError, match="bad signature by seoul-civic/polls"):
        open_checkpoint(forged, verifier_key(key))


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\n",  # no statement, no time
        f"{ORIGIN}\n03\n{base64.b64encode(ROOT).decode()}\nstatement {STATEMENT.hex()}\ntime {TIME}\n",
        f"{ORIGIN}\n3\n{ROOT.hex()}\nstatement {STATEMENT.hex()}\ntime {TIME}\n",
        f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\nstatement {STATEMENT.hex()}\ntime {TIME}\nfinal\nmore\n",
        f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\ntime {TIME}\nstatement {STATEMENT.hex()}\n",
        f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\nstatement {STATEMENT.hex()}\ntime 2026-02-30T09:30:00Z\n",
        f"a b\n3\n{base64.b64encode(ROOT).decode()}\nstatement {STATEMENT.hex()}\ntime {TIME}\n",
    ],
)
def test_parsing_refuses_anything_but_the_canonical_form(text: str) -> None:
    with pytest.raises(NoteError, match="malformed checkpoint"):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"origin": ""}, "origin"),
        ({"origin": "a+b"}, "origin"),
        ({"size": -1}, "size"),
        ({"root_hash": ROOT[:31]}, "root_hash"),
        ({"statement_hash": b""}, "statement_hash"),
        ({"timestamp": "2026-05-01T09:30:00+00:00"}, "timestamp"),
        ({"timestamp": "2026-02-30T09:30:00Z"}, "does not match|day is out of range"),
    ],
)
def test_signing_refuses_malformed_fields(key: Ed25519PrivateKey, change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign_checkpoint(key, a_checkpoint(**change))


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
    city = verifier_key(load_private_key(base64.b64encode(seed).decode()))
    assert city.public_key == public and city.name == KEY_NAME
    assert str(city).endswith("+" + base64.b64encode(b"\x01" + public).decode())
    assert parse_verifier_key(str(city)) == city
    assert city.fingerprint == hashlib.sha256(public).hexdigest()


def test_public_key_command_prints_the_settings_key(capsys: pytest.CaptureFixture[str]) -> None:
    from civic.ledger import city_key

    assert checkpoints.main(["public-key"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"verifier_key": str(city_key()), "fingerprint": city_key().fingerprint}
    assert checkpoints.main([]) == 0 and len(base64.b64decode(capsys.readouterr().out)) == 32
    assert checkpoints.main(["nonsense"]) == 2


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
