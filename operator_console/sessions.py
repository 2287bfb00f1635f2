"""Console sessions: the cookie's token, its server-side row, idle and absolute expiry, and the CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from civic import console_accounts as accounts
from civic.console_accounts import ConsoleIdentity
from civic.db import utcnow
from civic.models import ConsoleSession, ConsoleUser, Department
from civic.settings import get_settings

# last_seen_at is written at most this often: idle expiry needs minutes, not a write on every request.
TOUCH_EVERY = timedelta(minutes=1)
MAX_TOKEN_CHARS = 128
USER_AGENT_CHARS = 256
CSRF_PURPOSE = "console-csrf"  # not the polls' or the web chat's purpose: their tokens never pass here


@dataclass(frozen=True)
class SessionIdentity(ConsoleIdentity):
    """Who a console request comes from, with the session's CSRF token that every unsafe request must send back."""

    csrf_token: str


@dataclass(frozen=True)
class LoginOutcome:
    """The result of a login: an identity and the new cookie token, or nothing, or the seconds to wait."""

    identity: SessionIdentity | None = None
    token: str | None = None
    retry_after: int = 0

    @property
    def ok(self) -> bool:
        return self.identity is not None

    @property
    def throttled(self) -> bool:
        return self.retry_after > 0


def session_id_of(token: str) -> str:
    """The stored id of a session: SHA-256 of its cookie token, so a read of the table logs nobody in."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(csrf_secret: str) -> str:
    """The session's CSRF token: an HMAC of its secret, so a leaked table alone forges no token."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{CSRF_PURPOSE}:{csrf_secret}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(identity: SessionIdentity, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(str(given), identity.csrf_token)


def _identity(session: Session, user: ConsoleUser, row: ConsoleSession) -> SessionIdentity:
    department = session.get(Department, user.department_id) if user.department_id else None
    return SessionIdentity(
        user_id=user.id,
        email=user.email,
        role=user.role,
        department_id=user.department_id,
        department_code=department.code if department else None,
        session_id=row.id,
        csrf_token=csrf_token_for(row.csrf_secret),
    )


def _idle_limit() -> timedelta:
    return timedelta(minutes=get_settings().console_idle_minutes)


def _absolute_limit() -> timedelta:
    return timedelta(hours=get_settings().console_absolute_hours)


def session_expired(row: ConsoleSession, now: datetime) -> bool:
    return now - row.last_seen_at > _idle_limit() or now - row.created_at > _absolute_limit()


def purge_expired_sessions(session: Session, now: datetime | None = None) -> int:
    """Deletes sessions past their idle or absolute limit (they are refused anyway; this keeps the table small)."""
    now = now or utcnow()
    expired = or_(
        ConsoleSession.last_seen_at < now - _idle_limit(), ConsoleSession.created_at < now - _absolute_limit()
    )
    return accounts.delete_rows(session, delete(ConsoleSession).where(expired))


def _start_session(
    session: Session, user: ConsoleUser, *, ip: str, user_agent: str, now: datetime
) -> tuple[str, ConsoleSession]:
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=session_id_of(token),
        user_id=user.id,
        csrf_secret=secrets.token_hex(32),
        created_at=now,
        last_seen_at=now,
        ip=ip[:45],
        user_agent=user_agent[:USER_AGENT_CHARS] or None,
    )
    session.add(row)
    return token, row


def _end_session(session: Session, token: str | None) -> ConsoleSession | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    row = session.get(ConsoleSession, session_id_of(token))
    if row is not None:
        session.delete(row)
        session.flush()  # gone now, not at commit: a lookup later in this transaction must miss it
    return row


def log_in(
    session: Session,
    *,
    email: str,
    password: str,
    ip: str,
    address_key: str | None = None,
    user_agent: str = "",
    previous_token: str | None = None,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> LoginOutcome:
    """Checks a password (civic.console_accounts.authenticate: back-off, counting, audit) and opens a new session.

    The token is new at every login and the browser's previous session is ended, so a session id planted or
    seen before login is worth nothing after it.
    """
    now = now or utcnow()
    ip = ip[:45]
    checked = accounts.authenticate(
        session, email=email, password=password, ip=ip, address_key=address_key, now=now, hasher=hasher
    )
    if checked.user is None:
        return LoginOutcome(retry_after=checked.retry_after)
    _end_session(session, previous_token)
    purge_expired_sessions(session, now)
    token, row = _start_session(session, checked.user, ip=ip, user_agent=user_agent, now=now)
    session.flush()
    identity = _identity(session, checked.user, row)
    accounts.record(session, "login", by=identity, ip=ip, now=now)
    return LoginOutcome(identity=identity, token=token)


def resolve_session(
    session: Session, token: str | None, *, now: datetime | None = None, touch: bool = True
) -> SessionIdentity | None:
    """The identity behind a cookie token, or None when unknown, expired (then deleted) or the user is inactive.

    `touch=False` checks without counting as use (an open event stream must not keep an idle session alive).
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    now = now or utcnow()
    row = session.get(ConsoleSession, session_id_of(token))
    if row is None:
        return None
    user = session.get(ConsoleUser, row.user_id)
    if user is None or not user.active or session_expired(row, now):
        session.delete(row)
        session.flush()
        return None
    if touch and now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return _identity(session, user, row)


def log_out(session: Session, token: str | None, *, ip: str | None = None, now: datetime | None = None) -> bool:
    """Ends the session of `token`; True when there was one."""
    row = _end_session(session, token)
    if row is None:
        return False
    user = session.get(ConsoleUser, row.user_id)
    accounts.record(session, "logout", actor=user.email if user else "anonymous", user_id=row.user_id, ip=ip, now=now)
    return True
