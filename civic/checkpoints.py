"""Signed checkpoints in the C2SP formats: tlog-checkpoint bodies in Ed25519 signed notes, and verifier keys.

A checkpoint of a poll's log is a signed note (c2sp.org/signed-note) whose text is a tlog-checkpoint
(c2sp.org/tlog-checkpoint) with three extension lines of ours:

    seoul-civic/polls/Xq3v9TnB1cL0aZ7d          origin: one log per poll
    5                                           tree size
    GRb3Vvtl8hZrRzXbcJQUJBP3TnpYbcozIHwfHaYgJ6o=   root hash, base64
    statement 4c0a…(64 hex)                     SHA-256 of the poll statement (question, options, window, rule)
    time 2026-05-01T09:30:00Z                   when it was signed (UTC, whole seconds)
    final                                       only on the checkpoint signed when the poll closed

    — seoul-civic/polls <base64(4-byte key ID || 64-byte Ed25519 signature)>

`python -m civic.checkpoints` prints a fresh signing key (for .env); `python -m civic.checkpoints public-key`
prints the verifier key and fingerprint of the configured LEDGER_SIGNING_KEY, the ones the city publishes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from civic.merkle import HASH_BYTES, canonical_json

KEY_BYTES = 32
# The signed-note signature type of Ed25519 (c2sp.org/signed-note): part of the key ID and the verifier key.
ALG_ED25519 = b"\x01"
# One name for the city's checkpoint key across all polls, so one published verifier key checks every poll.
KEY_NAME = "seoul-civic/polls"
# Go's note.Open refuses more; we never write more than one.
MAX_SIGNATURES = 100
# One spelling per instant (UTC, whole seconds, "Z"), so equal checkpoints sign equal bytes.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SIZE = re.compile(r"0|[1-9][0-9]*")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_SIGNATURE_PREFIX = "— "  # em dash, space


class NoteError(ValueError):
    """A note or checkpoint that is malformed or not signed by the trusted key; the message says which."""


def checkpoint_timestamp(moment: datetime | None = None) -> str:
    """`moment` (default: now) as a checkpoint timestamp: ISO 8601 UTC in whole seconds, e.g. 2026-05-01T09:30:00Z."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("checkpoint times must be timezone-aware")
    return moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def _check_timestamp(timestamp: object) -> None:
    if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError("timestamp must look like 2026-05-01T09:30:00Z")
    datetime.strptime(timestamp, _TIMESTAMP_FORMAT)  # rejects 2026-02-30 and 25:00:00


# Keys ------------------------------------------------------------------------------------------------


def key_id(name: str, public_key: bytes) -> int:
    """The signed-note key ID: the first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || public key)."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public_key).digest()[:4], "big")


def valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode spaces, no "+" (Go's isValidName)."""
    return bool(name) and "+" not in name and not any(character.isspace() for character in name)


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key as signed notes identify it: by name and 4-byte key ID."""

    name: str
    public_key: bytes  # raw 32 bytes

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw 32-byte public key, hex: short enough to print on a poster or read aloud."""
        return hashlib.sha256(self.public_key).hexdigest()

    def __str__(self) -> str:
        """The verifier key string: <name>+<hex key ID>+<base64(0x01 || public key)>, as Go's note package writes it."""
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(ALG_ED25519 + self.public_key).decode()}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def verifier_key(private_key: Ed25519PrivateKey, name: str = KEY_NAME) -> VerifierKey:
    if not valid_key_name(name):
        raise ValueError(f"{name!r} is not a valid key name")
    return VerifierKey(name, private_key.public_key().public_bytes_raw())


def parse_verifier_key(text: str) -> VerifierKey:
    """A verifier key string, checked like Go's note.NewVerifier: name, matching key ID, Ed25519, 32 bytes."""
    name, _, rest = text.strip().partition("+")
    id_hex, _, key_b64 = rest.partition("+")
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not _KEY_ID.fullmatch(id_hex) or not valid_key_name(name) or not key:
        raise ValueError("not a verifier key: expected <name>+<8 hex digits>+<base64 key>")
    if int(id_hex, 16) != int.from_bytes(hashlib.sha256(name.encode() + b"\n" + key).digest()[:4], "big"):
        raise ValueError("not a verifier key: the key ID does not match the name and key")
    if key[:1] != ALG_ED25519 or len(key) != 1 + KEY_BYTES:
        raise ValueError("not a verifier key: only Ed25519 keys (type 0x01, 32 bytes) are supported")
    return VerifierKey(name, key[1:])


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        # No chained cause: the message must never carry key material into logs.
        raise ValueError(f"{what} must be base64 of {KEY_BYTES} bytes") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{what} must be base64 of {KEY_BYTES} bytes")
    return raw


def load_private_key(text: str) -> Ed25519PrivateKey:
    """The signing key from its setting: base64 of the 32-byte raw Ed25519 seed."""
    return Ed25519PrivateKey.from_private_bytes(_decode_key(text, "the checkpoint signing key"))


def generate_private_key_b64() -> str:
    """A fresh signing key in the setting's format (base64 of the 32-byte seed)."""
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


# Signed notes ----------------------------------------------------------------------------------------


def sign_note(text: str, private_key: Ed25519PrivateKey, name: str = KEY_NAME) -> str:
    """`text` (ending in a newline) with one Ed25519 signature line, byte for byte as Go's note.Sign writes it."""
    _check_note_text(text)
    if not text.endswith("\n"):
        raise ValueError("a note's text ends with a newline")
    key = verifier_key(private_key, name)
    signature = key.key_id.to_bytes(4, "big") + private_key.sign(text.encode())
    return f"{text}\n{_SIGNATURE_PREFIX}{name} {base64.b64encode(signature).decode()}\n"


def _check_note_text(note: str) -> None:
    if any(ord(character) < 0x20 and character != "\n" for character in note):
        raise NoteError("malformed note: control characters")


def open_note(note: str, key: VerifierKey) -> str:
    """The text of `note` if `key` signed it; NoteError otherwise. Other keys' signatures are ignored (signed-note)."""
    if not isinstance(note, str):
        raise NoteError("malformed note: not text")
    _check_note_text(note)
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("malformed note: no signature block")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed note: too many signatures")
    others, verified = [], False
    for line in lines:
        name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if not line.startswith(_SIGNATURE_PREFIX) or not valid_key_name(name) or len(signature) < 5:
            raise NoteError("malformed note: bad signature line")
        signer = int.from_bytes(signature[:4], "big")
        if (name, signer) != (key.name, key.key_id):
            others.append(f"{name}+{signer:08x}")
            continue
        if not key.verify(signature[4:], text.encode()):
            raise NoteError(f"bad signature by {key.name}+{key.key_id:08x}")
        verified = True
    if not verified:
        signed_by = ", ".join(others) or "nobody"
        raise NoteError(f"not signed by the city's key {key.name}+{key.key_id:08x} (signed by {signed_by})")
    return text


# Checkpoints -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tree head of log `origin`: `size` leaves with root `root_hash`, for the poll statement `statement_hash`."""

    origin: str
    size: int
    root_hash: bytes
    statement_hash: bytes
    timestamp: str
    final: bool = False

    def text(self) -> str:
        """The note text: origin, size, base64 root, then our extension lines; each line ends in a newline."""
        if not isinstance(self.origin, str) or not valid_key_name(self.origin):
            raise ValueError("origin must be non-empty, without spaces or '+'")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ValueError("size must be a non-negative integer")
        for value, what in ((self.root_hash, "root_hash"), (self.statement_hash, "statement_hash")):
            if not isinstance(value, bytes) or len(value) != HASH_BYTES:
                raise ValueError(f"{what} must be {HASH_BYTES} bytes")
        _check_timestamp(self.timestamp)
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode(),
            f"statement {self.statement_hash.hex()}",
            f"time {self.timestamp}",
        ]
        if self.final:
            lines.append("final")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary of the fields for pages and receipts (the signed note is what proves them)."""
        return {
            "origin": self.origin,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "statement": self.statement_hash.hex(),
            "timestamp": self.timestamp,
            "final": self.final,
        }


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint a note text states; NoteError unless it is exactly the form `Checkpoint.text` writes."""
    lines = text.split("\n")
    if len(lines) < 6 or lines[-1] != "":
        raise NoteError("malformed checkpoint: expected origin, size, root, statement and time lines")
    origin, size, root, statement, time, *rest = lines[:-1]
    try:
        root_hash = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        root_hash = b""
    statement_hex = statement.removeprefix("statement ")
    timestamp = time.removeprefix("time ")
    if not _SIZE.fullmatch(size) or len(root_hash) != HASH_BYTES:
        raise NoteError("malformed checkpoint: bad tree size or root hash")
    if not statement.startswith("statement ") or not _HEX_HASH.fullmatch(statement_hex):
        raise NoteError("malformed checkpoint: no statement line")
    if not time.startswith("time ") or rest not in ([], ["final"]):
        raise NoteError("malformed checkpoint: bad extension lines")
    try:
        statement_bytes = bytes.fromhex(statement_hex)
        checkpoint = Checkpoint(origin, int(size), root_hash, statement_bytes, timestamp, rest == ["final"])
        canonical = checkpoint.text()
    except ValueError as error:
        raise NoteError(f"malformed checkpoint: {error}") from None
    if canonical != text:  # one spelling per checkpoint (e.g. no non-canonical base64)
        raise NoteError("malformed checkpoint: not in canonical form")
    return checkpoint


def sign_checkpoint(private_key: Ed25519PrivateKey, checkpoint: Checkpoint, name: str = KEY_NAME) -> str:
    """The signed note of `checkpoint`."""
    return sign_note(checkpoint.text(), private_key, name)


def open_checkpoint(note: str, key: VerifierKey) -> Checkpoint:
    """The checkpoint in `note` if `key` signed it; NoteError (with the reason) otherwise."""
    return parse_checkpoint(open_note(note, key))


def note_text(note: str) -> str:
    """The text of a note, unverified: for showing a checkpoint we signed ourselves, never for trusting one."""
    return note[: note.rfind("\n\n") + 1]


def note_signature(note: str) -> bytes:
    """The raw Ed25519 signature of a note `sign_note` wrote (what the database keeps beside the note)."""
    return base64.b64decode(note.rstrip("\n").rpartition(" ")[2])[4:]


def legacy_checkpoint_body(log_id: str, size: int, root_hash: bytes, timestamp: str) -> bytes:
    """What checkpoints signed before the signed-note format: canonical JSON, kept to check old rows once."""
    return canonical_json({"log_id": log_id, "size": size, "root_hash": root_hash.hex(), "timestamp": timestamp})


def statement_hash(statement: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(statement)).digest()


def main(argv: list[str]) -> int:
    if not argv:
        # A fresh signing key, for setup scripts that write .env.
        print(generate_private_key_b64())
        return 0
    if argv == ["public-key"]:
        from civic.settings import get_settings  # only here: verifiers import this module without settings

        key = verifier_key(load_private_key(get_settings().ledger_signing_key))
        print(json.dumps({"verifier_key": str(key), "fingerprint": key.fingerprint}, indent=2))
        return 0
    print("usage: python -m civic.checkpoints [public-key]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
