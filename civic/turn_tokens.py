"""The gateway's signed statement of who is talking in a turn, and its check by the action server.

Rasa hands the actions whatever metadata came with the user's message, and anything that reaches Rasa's
REST channel can set that metadata. So the gateway signs the server-side facts of a turn (channel, external
id, conversation, coordinates, photo ids, time) into one token; actions believe only what the token says.
The token is `base64url(claims JSON) "." base64url(HMAC-SHA256)`: the exact bytes signed travel as they
are, so no JSON re-encoding on the way through Rasa can break a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

# The metadata field that carries the token.
TOKEN_FIELD = "turn_token"
# Domain separation: a MAC made for a turn can never be mistaken for another use of the same key.
_CONTEXT = b"civic-turn-v1."
# A clock between gateway and action server a little behind is tolerated, a token from the future is not.
_CLOCK_SKEW_SECONDS = 30


class UnverifiedTurn(Exception):
    """The turn's metadata carries no valid, fresh token for this conversation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, payload: str) -> bytes:
    return hmac.new(key.encode(), _CONTEXT + payload.encode("ascii"), hashlib.sha256).digest()


def sign_turn(claims: dict[str, Any], *, sender: str, key: str, now: float | None = None) -> str:
    """A token for `claims`, bound to Rasa's `sender` id and to the time it was issued."""
    body = {**claims, "sender": sender, "iat": int(now if now is not None else time.time())}
    payload = _b64encode(json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64encode(_mac(key, payload))}"


def verify_turn(
    token: object, *, sender: str, key: str, max_age_seconds: float, now: float | None = None
) -> dict[str, Any]:
    """The claims of a token the gateway issued for `sender` within `max_age_seconds`; else UnverifiedTurn."""
    if not isinstance(token, str) or not token:
        raise UnverifiedTurn("unsigned")
    payload, _, signature = token.partition(".")
    try:
        given = _b64decode(signature)
    except (binascii.Error, ValueError):
        raise UnverifiedTurn("bad signature") from None
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise UnverifiedTurn("bad signature")
    try:
        claims = json.loads(_b64decode(payload))
    except (binascii.Error, ValueError):
        raise UnverifiedTurn("bad claims") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("iat"), int):
        raise UnverifiedTurn("bad claims")
    if claims.get("sender") != sender:
        raise UnverifiedTurn("issued for another conversation")
    age = (now if now is not None else time.time()) - claims["iat"]
    if age > max_age_seconds:
        raise UnverifiedTurn("stale")
    if age < -_CLOCK_SKEW_SECONDS:
        raise UnverifiedTurn("issued in the future")
    return claims
