"""Signed checkpoints of a Merkle log: tree size, root hash and time under an Ed25519 signature."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from civic.merkle import HASH_BYTES, canonical_json

KEY_BYTES = 32
# One spelling per instant (UTC, whole seconds, "Z"), so equal checkpoints sign equal bytes.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log `log_id` had `size` leaves with root `root_hash` at `timestamp`."""

    log_id: str
    size: int
    root_hash: bytes
    timestamp: str
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for exports: bytes as lowercase hex."""
        return {
            "log_id": self.log_id,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """The checkpoint `to_dict` wrote; raises ValueError on a missing or mistyped field."""
        try:
            log_id, size, timestamp = data["log_id"], data["size"], data["timestamp"]
            root_hash, signature = bytes.fromhex(data["root_hash"]), bytes.fromhex(data["signature"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a checkpoint: {exc!r}") from None
        if not isinstance(log_id, str) or not isinstance(timestamp, str):
            raise ValueError("not a checkpoint: log_id and timestamp must be strings")
        if not isinstance(size, int) or isinstance(size, bool):
            raise ValueError("not a checkpoint: size must be an integer")
        return cls(log_id, size, root_hash, timestamp, signature)


def checkpoint_timestamp(moment: datetime | None = None) -> str:
    """`moment` (default: now) as a checkpoint timestamp: ISO 8601 UTC in whole seconds, e.g. 2026-05-01T09:30:00Z."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("checkpoint times must be timezone-aware")
    return moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def checkpoint_body(log_id: str, size: int, root_hash: bytes, timestamp: str) -> bytes:
    """The exact bytes that are signed: canonical JSON of log_id, size, root_hash (hex) and timestamp."""
    if not isinstance(log_id, str) or not log_id:
        raise ValueError("log_id must be a non-empty string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("size must be a non-negative integer")
    if not isinstance(root_hash, bytes) or len(root_hash) != HASH_BYTES:
        raise ValueError(f"root_hash must be {HASH_BYTES} bytes")
    if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError("timestamp must look like 2026-05-01T09:30:00Z")
    datetime.strptime(timestamp, _TIMESTAMP_FORMAT)  # rejects 2026-02-30 and 25:00:00
    return canonical_json({"log_id": log_id, "size": size, "root_hash": root_hash.hex(), "timestamp": timestamp})


def sign_checkpoint(
    private_key: Ed25519PrivateKey, log_id: str, size: int, root_hash: bytes, timestamp: str
) -> Checkpoint:
    """A checkpoint of the tree head, signed over `checkpoint_body`."""
    signature = private_key.sign(checkpoint_body(log_id, size, root_hash, timestamp))
    return Checkpoint(log_id, size, root_hash, timestamp, signature)


def verify_checkpoint(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """Whether `public_key` signed exactly this checkpoint; False, never an exception, otherwise."""
    try:
        body = checkpoint_body(checkpoint.log_id, checkpoint.size, checkpoint.root_hash, checkpoint.timestamp)
        public_key.verify(checkpoint.signature, body)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


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


def load_public_key(text: str) -> Ed25519PublicKey:
    """A verification key as `public_key_b64` publishes it, for offline verifiers."""
    return Ed25519PublicKey.from_public_bytes(_decode_key(text, "the checkpoint public key"))


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    """Base64 of the raw 32-byte public key: what citizens and auditors verify checkpoints with."""
    return base64.b64encode(private_key.public_key().public_bytes_raw()).decode()


def generate_private_key_b64() -> str:
    """A fresh signing key in the setting's format (base64 of the 32-byte seed)."""
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


if __name__ == "__main__":
    # `python -m civic.checkpoints` prints a fresh signing key, for setup scripts that write .env.
    print(generate_private_key_b64())
