"""Open311 API keys: created (shown once), stored as SHA-256, verified, rate limited, revoked, audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from civic.console_accounts import ConsoleIdentity, can, record
from civic.console_cases import ActionRefused, PermissionDenied
from civic.db import utcnow
from civic.models import ApiKey
from civic.rate_limits import RateDecision, allow
from civic.settings import get_settings

KEY_PREFIX = "o311_"
MAX_NAME_CHARS = 128
MAX_RATE_PER_MINUTE = 100_000
RATE_BUCKET = "open311:key"


# Built once: a key is checked on every POST, and building the statements cost more than running them.
_LIVE = select(ApiKey.id, ApiKey.name, ApiKey.key_hash, ApiKey.rate_limit_per_minute, ApiKey.last_used_at).where(
    ApiKey.key_hash == bindparam("b_digest"), ApiKey.revoked_at.is_(None)
)
_STAMP = update(ApiKey).where(ApiKey.id == bindparam("b_id")).values(last_used_at=bindparam("b_now"))
_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit TO OFF")


@dataclass(frozen=True)
class LiveKey:
    """A verified, unrevoked key: what filing needs of it."""

    id: int
    name: str
    rate_limit_per_minute: int


@dataclass(frozen=True)
class NewKey:
    """A key just created: `secret` is the only copy of the key there will ever be."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """SHA-256 hex of the key: enough for 256 random bits, which no dictionary can guess (no slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_admin(by: ConsoleIdentity | None) -> None:
    # None is the shell (operator_console.api_keys), whose user already holds the database's credentials.
    if by is not None and not can(by, "manage_api_keys"):
        raise PermissionDenied(f"{by.email} may not manage_api_keys")


def _rate(value: int | str | None) -> int:
    if value in (None, ""):
        return get_settings().open311_key_rate_per_minute
    try:
        rate = int(value)
    except ValueError:
        raise ActionRefused("bad_rate") from None
    if not 1 <= rate <= MAX_RATE_PER_MINUTE:
        raise ActionRefused("bad_rate")
    return rate


def create_key(
    session: Session,
    *,
    name: str,
    by: ConsoleIdentity | None = None,
    rate_limit_per_minute: int | str | None = None,
    ip: str | None = None,
) -> NewKey:
    """A new key for the client `name`; the caller shows `secret` once, the database keeps only its hash."""
    _check_admin(by)
    name = name.strip()
    if not name:
        raise ActionRefused("name_required")
    if len(name) > MAX_NAME_CHARS:
        raise ActionRefused("name_too_long")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        key_hash=hash_key(secret),
        prefix=secret[:12],
        rate_limit_per_minute=_rate(rate_limit_per_minute),
        created_at=utcnow(),
        created_by=by.email if by else "cli",
    )
    session.add(key)
    session.flush()
    details = {"name": name, "prefix": key.prefix, "rate_limit_per_minute": key.rate_limit_per_minute}
    record(session, "api_key.created", by=by, actor="cli", target=f"api_key:{key.id}", details=details, ip=ip)
    return NewKey(key=key, secret=secret)


def list_keys(session: Session, *, by: ConsoleIdentity | None = None) -> list[ApiKey]:
    """Every key, revoked ones too, newest first (no secrets: there are none to show)."""
    _check_admin(by)
    return list(session.execute(select(ApiKey).order_by(ApiKey.id.desc())).scalars())


def revoke_key(session: Session, *, key_id: int, by: ConsoleIdentity | None = None, ip: str | None = None) -> ApiKey:
    """Stops the key at once; the row stays, with its history, for the audit log's targets."""
    _check_admin(by)
    key = session.get(ApiKey, key_id)
    if key is None:
        raise ActionRefused("unknown_key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        details = {"name": key.name, "prefix": key.prefix}
        record(session, "api_key.revoked", by=by, actor="cli", target=f"api_key:{key.id}", details=details, ip=ip)
    return key


def verify_key(session: Session, *, secret: str) -> LiveKey | None:
    """The live key whose hash matches `secret`, its last use stamped; None for unknown or revoked keys."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 100:
        return None
    digest = hash_key(secret)
    connection = session.connection()  # Core: the ORM's per-statement work buys nothing here
    row = connection.execute(_LIVE, {"b_digest": digest}).one_or_none()
    # The lookup is by the hash's value; the constant-time compare is a belt to its braces.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    now = utcnow()
    # Stamped at most once a minute: a busy client's every write would otherwise queue on this one row.
    if row.last_used_at is None or now - row.last_used_at > timedelta(seconds=60):
        connection.execute(_STAMP, {"b_id": row.id, "b_now": now})
    return LiveKey(id=row.id, name=row.name, rate_limit_per_minute=row.rate_limit_per_minute)


def take_write(session: Session, *, key: LiveKey) -> RateDecision:
    """Counts one write of `key` against its own per-minute limit (shared by every worker).

    Call it in its own short transaction: on PostgreSQL that transaction does not wait for its WAL flush, since
    a count lost in a crash costs nothing, while waiting would hold the key's counter row locked for a disk
    flush and queue every concurrent write of that key behind it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NO_FLUSH_WAIT)
    return allow(session, bucket=RATE_BUCKET, key=str(key.id), limit=key.rate_limit_per_minute, per_seconds=60)
