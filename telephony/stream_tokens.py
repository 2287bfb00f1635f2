"""Single-use tokens in each turn's media-stream URL: signed for one call and turn, expiring, spent on use.

Twilio signs a stream's upgrade over its URL only, so with one fixed URL the signature was one fixed value per
deployment and a captured upgrade could be replayed at will. Each <Stream> now gets its own URL,
`.../telephony/stream/<token>`, with the token

    <CallSid>.<turn>.<expires, unix seconds>.<nonce, 16 random bytes>.<HMAC-SHA256 of the rest>

in the path (Twilio's <Stream> URLs take no query string; a path is signed like the rest of the URL). The
HMAC key is derived from SECRET_KEY for this purpose only. A token opens one stream: its nonce is recorded in
`spent_stream_tokens` when the stream is accepted, so a replay on any web worker is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import SpentStreamToken
from civic.settings import Settings

PURPOSE = b"twilio-media-stream-token"
NONCE_BYTES = 16
PURGE_BATCH = 100
_TOKEN = re.compile(r"^(CA[0-9a-f]{32})\.(\d{1,6})\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class StreamGrant:
    """What a valid token allows: one stream of `turn` of the call `call_sid`, opened before `expires_at`."""

    call_sid: str
    turn: int
    expires_at: datetime
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(body: str, settings: Settings) -> str:
    key = hmac.new(settings.secret_key.encode(), PURPOSE, hashlib.sha256).digest()
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def issue(call_sid: str, turn: int, settings: Settings, *, now: datetime | None = None) -> str:
    """A fresh token for the stream of `turn` of `call_sid`, valid for PHONE_STREAM_TOKEN_SECONDS."""
    expires = int((now or utcnow()).timestamp()) + settings.phone_stream_token_seconds
    body = f"{call_sid}.{turn}.{expires}.{_b64(secrets.token_bytes(NONCE_BYTES))}"
    return f"{body}.{_mac(body, settings)}"


def verify(token: str, settings: Settings, *, now: datetime | None = None) -> StreamGrant | None:
    """The grant of a well-formed, authentic, unexpired token; None otherwise (spent or not: see `spend`)."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    body, mac = token.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(body, settings)):
        return None
    call_sid, turn, expires, nonce = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    expires_at = datetime.fromtimestamp(expires, UTC)
    if (now or utcnow()) >= expires_at:
        return None
    return StreamGrant(call_sid, turn, expires_at, nonce)


def spend(session: Session, grant: StreamGrant, *, now: datetime | None = None) -> bool:
    """Records the token as used; False if it was used before (here or on another worker)."""
    now = now or utcnow()
    # Expired rows are no longer needed (an expired token fails `verify` first). A few at a time, and rows another
    # worker is deleting are skipped rather than waited for (SQLite has one writer and ignores SKIP LOCKED).
    expired = (
        select(SpentStreamToken.nonce)
        .where(SpentStreamToken.expires_at < now)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(SpentStreamToken).where(SpentStreamToken.nonce.in_(expired)))
    try:
        with session.begin_nested():
            session.add(
                SpentStreamToken(nonce=grant.nonce, call_sid=grant.call_sid, expires_at=grant.expires_at, spent_at=now)
            )
    except IntegrityError:
        return False
    return True
